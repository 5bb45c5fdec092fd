//! Palisade assembled: the configuration ([`config`]), the application built from it
//! ([`app`]), the key files of development ([`key_files`]) and the JSON logs
//! ([`telemetry`]). The `palisade` binary is a command line over this; the tests build
//! the same application.

pub mod app;
pub mod config;
pub mod key_files;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

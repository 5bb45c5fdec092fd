//! End to end: the real `palisade` binary on a loopback port, attacked from the outside
//! as a client (or an attacker) would, on SQLite and on PostgreSQL + Redis; and, where a
//! test needs routes of its own, the same application built in-process.
//!
//! - [`harness`]: starting the binary, running its commands, a TCP proxy that fails;
//! - [`api`]: a typed client of the HTTP API, and an independent TOTP;
//! - [`backends`]: a server on either database, with the keys it signs with;
//! - one module per area: [`http`], [`errors`], [`connections`], [`edge`], [`config`],
//!   [`identity`], [`migrate`], [`postgres`].

/// One test per scenario and backend: `scenario(Env)` runs on SQLite and on
/// PostgreSQL with Redis.
macro_rules! on_both {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(crate::backends::start(false).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(crate::backends::start(true).await).await;
                }
            )*
        }
    };
}

/// Like `on_both!`, for scenarios that start servers of their own settings:
/// `async fn(postgres: bool)`.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(false).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(true).await;
                }
            )*
        }
    };
}

mod api;
mod backends;
mod business;
mod config;
mod connections;
mod edge;
mod errors;
mod harness;
mod http;
mod identity;
mod loadtest;
mod migrate;
mod peers;
mod postgres;

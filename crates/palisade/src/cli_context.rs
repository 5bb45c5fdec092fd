//! What the administrative subcommands (`user`, `audit`) share: the validated
//! configuration, a runtime, and the application's services.

use std::path::Path;
use std::process::ExitCode;

use palisade::app::{self, Services};
use palisade::config;

use crate::EXIT_CONFIG;

pub struct CliContext {
    pub runtime: tokio::runtime::Runtime,
    pub services: Services,
    /// `PALISADE_ENV=production`.
    pub production: bool,
}

/// Builds the context, or says why not and returns the exit code.
pub fn open(config_file: Option<&Path>) -> Result<CliContext, ExitCode> {
    let config = match config::load(config_file).into_result() {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            return Err(ExitCode::from(EXIT_CONFIG));
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })?;
    match runtime.block_on(app::services(&config)) {
        Ok(services) => Ok(CliContext {
            runtime,
            services,
            production: config.env == config::Environment::Production,
        }),
        Err(e) => {
            eprintln!("error: {e:#}");
            Err(ExitCode::FAILURE)
        }
    }
}

//! What the administrative subcommands (`user`, `audit`) share: the validated
//! configuration, a runtime, and the identity service over the database with this
//! build's migrations applied.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use palisade_service::identity::Identity;
use palisade_store::{Db, redact_url};

use crate::config::{self, Config};
use crate::{EXIT_CONFIG, serve};

pub struct CliContext {
    pub runtime: tokio::runtime::Runtime,
    pub identity: Identity,
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
    let opened = runtime.block_on(connect(&config));
    match opened {
        Ok(identity) => Ok(CliContext { runtime, identity }),
        Err(e) => {
            eprintln!("error: {e:#}");
            Err(ExitCode::FAILURE)
        }
    }
}

async fn connect(config: &Config) -> anyhow::Result<Identity> {
    let db = Db::connect(&config.store)
        .await
        .with_context(|| format!("cannot open the database {}", redact_url(&config.store.url)))?;
    if config.migrate_on_start {
        serve::migrate_on_start(&db).await?;
    }
    let (identity, _) = serve::identity(config, &db)?;
    Ok(identity)
}

//! `palisade serve`: builds the application, serves until SIGTERM/SIGINT, drains, stops
//! the background tasks and closes the pools.

use std::time::Duration;

use anyhow::Context;
use palisade::app;
use palisade::config::Config;
use palisade_http::server;
use tokio::net::TcpListener;

/// Longest wait for the pools to close, and for a background task's run to finish,
/// once the drain is over.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn run(config: Config) -> anyhow::Result<()> {
    let app = app::build(&config).await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let bound = listener.local_addr().context("listener has no address")?;
    tracing::info!(addr = %bound, env = ?config.env, "listening");

    let drain = server::serve(
        listener,
        app.http,
        &config.http,
        app.health,
        server::shutdown_signal(),
    )
    .await;
    app.tasks.stop(CLOSE_TIMEOUT).await;
    if tokio::time::timeout(CLOSE_TIMEOUT, app.services.db.close())
        .await
        .is_err()
    {
        tracing::warn!("database pools did not close in time");
    }
    tracing::info!(?drain, "stopped");
    Ok(())
}

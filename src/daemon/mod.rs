//! The sidecar: a long-running process beside PostgreSQL (same pod, same
//! volumes) that pushes WAL before PostgreSQL asks, takes scheduled base
//! backups, runs retention, and serves Prometheus metrics and health checks.
//!
//! | module       | owns                                                     |
//! |--------------|----------------------------------------------------------|
//! | [`archiver`] | watching `archive_status`, parallel pushes, markers      |
//! | [`schedule`] | cron-scheduled backups, periodic retention               |
//! | [`http`]     | `/metrics`, `/healthz`, `/readyz`                        |
//! | [`metrics`]  | the counters and gauges                                  |
//!
//! Eviction-safe by construction: a marker is written only after the store
//! accepted the object, PostgreSQL keeps every file until `archive_command`
//! (walpush) answers, and walpush pushes by itself whatever has no marker. A
//! SIGKILL at any moment therefore loses nothing; SIGTERM stops scheduling
//! new work and lets pushes in flight finish for up to 10 s.

pub mod archiver;
pub mod http;
pub mod metrics;
pub mod schedule;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::backup::take::BackupOptions;
use crate::error::Error;
use archiver::ArchiverConfig;
use metrics::Metrics;
use schedule::RetentionJob;

/// Everything the sidecar runs.
pub struct SidecarConfig {
    pub archiver: ArchiverConfig,
    pub listen: Option<SocketAddr>,
    /// The restore spool whose hits `/metrics` reports.
    pub spool_dir: Option<PathBuf>,
    pub backups: Option<(cron::Schedule, BackupOptions)>,
    pub retention: Option<(Duration, RetentionJob)>,
}

/// Resolves on SIGTERM or SIGINT.
async fn termination() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

/// Runs the sidecar until SIGTERM/SIGINT.
pub async fn run(config: SidecarConfig) -> Result<(), Error> {
    let metrics = Metrics::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();

    if let Some(addr) = config.listen {
        let listener = http::bind(addr)
            .await
            .map_err(|e| Error::Usage(format!("cannot listen on {addr}: {e}")))?;
        let state = Arc::new(http::HttpState {
            metrics: metrics.clone(),
            spool_dir: config.spool_dir.clone(),
        });
        tasks.spawn(http::serve(listener, state, stop_rx.clone()));
        tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    }
    if let Some((schedule, opts)) = config.backups {
        let a = &config.archiver;
        tasks.spawn(schedule::backups(
            schedule,
            a.store.clone(),
            a.prefix.clone(),
            opts,
            metrics.clone(),
            stop_rx.clone(),
        ));
    }
    if let Some((interval, job)) = config.retention {
        tasks.spawn(schedule::retention(
            interval,
            job,
            metrics.clone(),
            stop_rx.clone(),
        ));
    }
    tasks.spawn(archiver::run(config.archiver, metrics.clone(), stop_rx));
    tracing::info!("sidecar started");

    termination().await;
    tracing::info!("stopping");
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(Duration::from_secs(15), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tasks.abort_all();
    }
    Ok(())
}

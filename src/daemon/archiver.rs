//! The sidecar's archiver: it watches `pg_wal/archive_status/*.ready`
//! (inotify, with a polling fallback) and pushes ready files before
//! PostgreSQL asks — history files first, then oldest first, up to N at once —
//! recording each one in `pg_wal/barnacle_pushed/` once the store accepted it,
//! so that `walpush` as `archive_command` answers at once. It never renames
//! `.ready` to `.done`: PostgreSQL does, after `archive_command`.
//!
//! Failures are retried with exponential backoff (0.5 s doubling to 30 s);
//! nothing is lost meanwhile, since PostgreSQL keeps the files and walpush
//! can always push them itself. Markers of files PostgreSQL has since removed
//! or recycled are forgotten every 30 s.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::metrics::Metrics;
use crate::archive::pushed::{FileIdentity, PushedRecord};
use crate::archive::{PushOptions, PushOutcome, Staging, push_ahead, ready_files};
use crate::error::Error;
use crate::layout::ServerPrefix;
use crate::storage::Store;

/// What the archiver needs.
#[derive(Clone)]
pub struct ArchiverConfig {
    pub store: Store,
    pub prefix: ServerPrefix,
    /// `URL SERVER`, as walpush names the destination in its markers.
    pub destination: String,
    pub pgdata: PathBuf,
    pub max_parallel: usize,
    pub push: PushOptions,
    /// How often `archive_status` is scanned even without inotify events.
    pub poll_interval: Duration,
}

/// inotify events on `archive_status`, when they can be had.
struct Watcher {
    dir: PathBuf,
    stream: Option<inotify::EventStream<Vec<u8>>>,
}

impl Watcher {
    fn new(dir: &Path) -> Watcher {
        let mut w = Watcher {
            dir: dir.to_path_buf(),
            stream: None,
        };
        w.arm();
        w
    }

    /// (Re)creates the inotify watch; polling covers the time without one.
    fn arm(&mut self) {
        if self.stream.is_some() || !self.dir.is_dir() {
            return;
        }
        let stream = inotify::Inotify::init().and_then(|ino| {
            ino.watches().add(
                &self.dir,
                inotify::WatchMask::CREATE
                    | inotify::WatchMask::MOVED_TO
                    | inotify::WatchMask::CLOSE_WRITE,
            )?;
            ino.into_event_stream(vec![0u8; 4096])
        });
        match stream {
            Ok(s) => self.stream = Some(s),
            Err(e) => tracing::info!(error = %e, "no inotify on archive_status; polling"),
        }
    }

    /// Resolves on the next event (never, without a watch).
    async fn changed(&mut self) {
        match &mut self.stream {
            Some(s) => {
                if s.next().await.is_none() {
                    self.stream = None;
                }
            }
            None => std::future::pending().await,
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The backoff after `failures` consecutive failures.
fn backoff(failures: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << failures.min(6))).min(Duration::from_secs(30))
}

type Done = (String, Result<PushOutcome, Error>, Duration);

/// How often the markers of departed WAL, and what killed pushers left, are removed.
const CLEANUP_EVERY: Duration = Duration::from_secs(30);

/// Runs until `shutdown` turns true; then waits (up to 10 s) for pushes in flight.
pub async fn run(
    mut cfg: ArchiverConfig,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let pg_wal = cfg.pgdata.join("pg_wal");
    let status_dir = pg_wal.join("archive_status");
    let record = PushedRecord::of_pgdata(&cfg.pgdata);
    // Workers side by side stage their compressed copies beside the markers
    // and send them one at a time: memory is one copy, not one per worker.
    if cfg.max_parallel > 1 {
        cfg.push.staging = Some(Staging::new(record.dir()));
    }
    let mut watcher = Watcher::new(&status_dir);
    let mut tasks: JoinSet<Done> = JoinSet::new();
    let mut in_flight: HashSet<String> = HashSet::new();
    let mut failures: HashMap<String, (u32, Instant)> = HashMap::new();
    // Due at once (what a killed predecessor left), then every 30 s.
    let mut last_cleanup = Instant::now() - CLEANUP_EVERY;
    let mut last_check = Instant::now() - Duration::from_secs(3600);

    loop {
        watcher.arm();
        let ready = ready_files(&status_dir);
        metrics.wal_ready.set(ready.len() as i64);
        for name in &ready {
            if tasks.len() >= cfg.max_parallel.max(1) {
                break;
            }
            if in_flight.contains(name)
                || failures
                    .get(name)
                    .is_some_and(|(_, at)| *at > Instant::now())
            {
                continue;
            }
            let path = pg_wal.join(name);
            if FileIdentity::of(&path).is_ok_and(|id| record.is_pushed(name, &id, &cfg.destination))
            {
                continue;
            }
            in_flight.insert(name.clone());
            let (cfg, record, name) = (cfg.clone(), record.clone(), name.clone());
            tasks.spawn(async move {
                let started = Instant::now();
                let result = push_ahead(
                    &cfg.store,
                    &cfg.prefix,
                    &path,
                    &cfg.push,
                    &record,
                    &cfg.destination,
                )
                .await;
                (name, result, started.elapsed())
            });
        }
        metrics.wal_in_flight.set(tasks.len() as i64);

        // A quiet period with the store unanswered: check it, so readiness recovers.
        if tasks.is_empty() && last_check.elapsed() > Duration::from_secs(10) {
            last_check = Instant::now();
            metrics.set_reachable(cfg.store.check_bucket().await.is_ok());
        }
        if last_cleanup.elapsed() >= CLEANUP_EVERY {
            last_cleanup = Instant::now();
            record.forget_departed(&pg_wal);
            failures.retain(|name, _| pg_wal.join(name).exists());
        }

        tokio::select! {
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok((name, result, elapsed)) = joined {
                    in_flight.remove(&name);
                    finish(&metrics, &mut failures, name, result, elapsed);
                }
            }
            () = watcher.changed() => {}
            () = tokio::time::sleep(cfg.poll_interval) => {}
            _ = shutdown.changed() => break,
        }
    }

    // Let pushes in flight finish, briefly: a push cut short is simply redone
    // by walpush, since no marker was written for it.
    let deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(deadline);
    while !tasks.is_empty() {
        tokio::select! {
            Some(joined) = tasks.join_next() => {
                if let Ok((name, result, elapsed)) = joined {
                    finish(&metrics, &mut failures, name, result, elapsed);
                }
            }
            () = &mut deadline => break,
        }
    }
}

fn finish(
    metrics: &Metrics,
    failures: &mut HashMap<String, (u32, Instant)>,
    name: String,
    result: Result<PushOutcome, Error>,
    elapsed: Duration,
) {
    match result {
        Ok(outcome) => {
            failures.remove(&name);
            metrics.set_reachable(true);
            metrics.wal_pushed.inc();
            metrics.wal_push_seconds.observe(elapsed.as_secs_f64());
            if let PushOutcome::Uploaded { size, .. } = outcome {
                metrics.wal_pushed_bytes.inc_by(size);
            }
            let now = now_secs();
            metrics
                .last_push
                .store(now, std::sync::atomic::Ordering::Relaxed);
            metrics.last_push_timestamp.set(now as i64);
            tracing::info!(wal = %name, elapsed_ms = elapsed.as_millis() as u64, "pushed ahead");
        }
        Err(e) => {
            metrics.wal_push_failures.inc();
            if matches!(e, Error::Storage(_)) {
                metrics.set_reachable(false);
            }
            let count = failures.get(&name).map_or(0, |(n, _)| *n) + 1;
            let wait = backoff(count);
            failures.insert(name.clone(), (count, Instant::now() + wait));
            tracing::warn!(wal = %name, attempt = count, retry_in_ms = wait.as_millis() as u64, error = %e, "push failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_thirty_seconds() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(20), Duration::from_secs(30));
    }
}

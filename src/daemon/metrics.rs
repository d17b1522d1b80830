//! The sidecar's Prometheus metrics (OpenMetrics text at `/metrics`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Everything the sidecar counts.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub wal_pushed: Counter,
    pub wal_push_failures: Counter,
    pub wal_pushed_bytes: Counter,
    pub wal_push_seconds: Histogram,
    pub wal_ready: Gauge,
    pub wal_in_flight: Gauge,
    pub last_push_timestamp: Gauge,
    pub store_reachable: Gauge,
    pub backups: Counter,
    pub backup_failures: Counter,
    pub last_backup_timestamp: Gauge,
    pub retention_runs: Counter,
    pub retention_failures: Counter,
    pub retention_deleted_backups: Counter,
    pub retention_deleted_wal: Counter,
    pub restore_spool_hits: Gauge,
    /// Whether the store answered the last request (push or check).
    pub reachable: AtomicBool,
    /// Seconds since the epoch of the last successful push.
    pub last_push: AtomicU64,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let m = Metrics {
            registry: Mutex::new(Registry::with_prefix("barnacle")),
            wal_pushed: Counter::default(),
            wal_push_failures: Counter::default(),
            wal_pushed_bytes: Counter::default(),
            wal_push_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            wal_ready: Gauge::default(),
            wal_in_flight: Gauge::default(),
            last_push_timestamp: Gauge::default(),
            store_reachable: Gauge::default(),
            backups: Counter::default(),
            backup_failures: Counter::default(),
            last_backup_timestamp: Gauge::default(),
            retention_runs: Counter::default(),
            retention_failures: Counter::default(),
            retention_deleted_backups: Counter::default(),
            retention_deleted_wal: Counter::default(),
            restore_spool_hits: Gauge::default(),
            reachable: AtomicBool::new(false),
            last_push: AtomicU64::new(0),
        };
        if let Ok(mut r) = m.registry.lock() {
            r.register(
                "wal_pushed",
                "WAL files pushed to the store",
                m.wal_pushed.clone(),
            );
            r.register(
                "wal_push_failures",
                "Failed WAL pushes (retried)",
                m.wal_push_failures.clone(),
            );
            r.register(
                "wal_pushed_bytes",
                "Uncompressed bytes of WAL pushed",
                m.wal_pushed_bytes.clone(),
            );
            r.register(
                "wal_push_seconds",
                "Time to push one WAL file",
                m.wal_push_seconds.clone(),
            );
            r.register(
                "wal_ready",
                "WAL files PostgreSQL has marked ready and not yet done",
                m.wal_ready.clone(),
            );
            r.register(
                "wal_in_flight",
                "WAL pushes in progress",
                m.wal_in_flight.clone(),
            );
            r.register(
                "last_push_timestamp_seconds",
                "Unix time of the last successful push",
                m.last_push_timestamp.clone(),
            );
            r.register(
                "store_reachable",
                "1 when the store answered the last request",
                m.store_reachable.clone(),
            );
            r.register("backups", "Base backups completed", m.backups.clone());
            r.register(
                "backup_failures",
                "Base backups failed",
                m.backup_failures.clone(),
            );
            r.register(
                "last_backup_timestamp_seconds",
                "Unix time of the last successful base backup",
                m.last_backup_timestamp.clone(),
            );
            r.register(
                "retention_runs",
                "Retention runs completed",
                m.retention_runs.clone(),
            );
            r.register(
                "retention_failures",
                "Retention runs failed",
                m.retention_failures.clone(),
            );
            r.register(
                "retention_deleted_backups",
                "Backups deleted by retention",
                m.retention_deleted_backups.clone(),
            );
            r.register(
                "retention_deleted_wal",
                "WAL objects deleted by retention",
                m.retention_deleted_wal.clone(),
            );
            r.register(
                "restore_spool_hits",
                "restore_command calls answered from the prefetch spool",
                m.restore_spool_hits.clone(),
            );
        }
        Arc::new(m)
    }

    /// Records whether the store answered.
    pub fn set_reachable(&self, up: bool) {
        self.reachable.store(up, Ordering::Relaxed);
        self.store_reachable.set(i64::from(up));
    }

    pub fn is_reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Ok(r) = self.registry.lock() {
            let _ = encode(&mut out, &r);
        }
        out
    }
}

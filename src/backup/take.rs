//! Taking an online base backup, exactly in `barman-cloud-backup`'s sequence
//! (spec §4), streamed: directory walk → tar → compression → multipart
//! upload, with no temporary files and bounded memory.
//!
//! 1. connect, read the server's facts, make the id (local time);
//! 2. `pg_backup_start`, then `backup.info` with status STARTED, at once;
//! 3. each tablespace into `<OID>.tar…`, then PGDATA into `data.tar…`
//!    (Barman's exclusions, `global/pg_control` after the data, the
//!    configuration files that live outside PGDATA), parts cut on
//!    compressed size;
//! 4. `pg_backup_stop` once the data is written (it waits for the WAL to be
//!    archived), `pg_switch_wal`, the restore point `barman_<ID>`;
//! 5. `backup_label` appended as the last member of the last data part,
//!    every upload completed;
//! 6. `backup.info` with status DONE (and the name), last.
//!
//! Any failure, cancellation (SIGTERM) included, aborts the uploads in
//! flight and writes `backup.info` with status FAILED and Barman's error
//! text `failure uploading data (<first line>)`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use super::upload_parts::{UploadParts, Uploads};
use super::{
    EncodedParts, ExtraFile, PgdataTar, TablespaceRef, TarArchive, append_backup_label,
    write_pgdata_tar, write_tablespace_tar,
};
use crate::codec::Compression;
use crate::codec::stream::StreamOptions;
use crate::layout::ServerPrefix;
use crate::layout::backup_id::BackupId;
use crate::layout::backup_info::{BackupInfo, BackupStatus, Tablespace, parse_py_datetime};
use crate::layout::pyliteral::PyValue;
use crate::pg::session::{ConnectArgs, ServerFacts, Session, SessionError};
use crate::storage::upload::UploadOptions;
use crate::storage::{PutAttrs, StorageError, Store};

/// How to take the backup.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    pub connect: ConnectArgs,
    /// gzip, bzip2, lz4 or snappy; `None` for plain tars.
    pub compression: Option<Compression>,
    pub immediate_checkpoint: bool,
    /// Parts uploaded at once (`-J`).
    pub jobs: usize,
    /// Compressed size after which a new part is started (`-S`).
    pub max_archive_size: u64,
    /// Size of the first upload parts (`--min-chunk-size`, at least 5 MiB).
    pub min_chunk_size: usize,
    /// Compression threads.
    pub threads: usize,
    pub name: Option<String>,
    pub tags: Vec<(String, String)>,
    /// Set to stop the backup (SIGTERM): it then fails cleanly.
    pub cancel: Arc<AtomicBool>,
}

/// Why a backup failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Could not start: nothing was written to the store.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// Failed after `backup.info` STARTED was written; it now says FAILED.
    #[error("backup {backup_id} failed: {reason}")]
    Failed { backup_id: String, reason: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A finished backup.
#[derive(Debug, Clone)]
pub struct BackupDone {
    pub backup_id: String,
    pub info: BackupInfo,
    pub bytes_stored: u64,
}

fn tar_suffix(compression: Option<Compression>) -> String {
    match compression {
        None => ".tar".into(),
        Some(c) => format!(".tar{}", c.suffix()),
    }
}

/// The server major version as Barman prints it: `15`, or `9.6`.
fn pg_major(version_num: i64) -> String {
    if version_num >= 100000 {
        (version_num / 10000).to_string()
    } else {
        format!("{}.{}", version_num / 10000, (version_num / 100) % 100)
    }
}

fn time(text: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    parse_py_datetime(text).ok()
}

/// `backup.info` fields known before the copy starts.
fn initial_info(facts: &ServerFacts) -> BackupInfo {
    let tablespaces: Vec<Tablespace> = facts
        .tablespaces
        .iter()
        .map(|(name, oid, location)| Tablespace {
            name: name.clone(),
            oid: *oid,
            location: location.clone(),
        })
        .collect();
    BackupInfo {
        server_name: Some("cloud".into()),
        systemid: facts.systemid.clone(),
        pgdata: Some(facts.data_directory.clone()),
        version: Some(facts.version_num),
        xlog_segment_size: Some(facts.wal_segment_size as i64),
        config_file: facts.config_file.clone(),
        hba_file: facts.hba_file.clone(),
        ident_file: facts.ident_file.clone(),
        included_files: (!facts.included_files.is_empty()).then(|| {
            PyValue::List(
                facts
                    .included_files
                    .iter()
                    .map(|f| PyValue::Str(f.clone()))
                    .collect(),
            )
        }),
        tablespaces: (!tablespaces.is_empty()).then_some(tablespaces),
        data_checksums: facts.data_checksums.clone(),
        summarize_wal: facts.summarize_wal.clone(),
        cluster_size: facts.cluster_size,
        ..BackupInfo::default()
    }
}

/// The configuration files stored at the tar root: those outside PGDATA.
fn outside_config_files(facts: &ServerFacts) -> Vec<ExtraFile> {
    let pgdata = Path::new(&facts.data_directory);
    [
        (&facts.config_file, false),
        (&facts.hba_file, false),
        (&facts.ident_file, true),
    ]
    .into_iter()
    .filter_map(|(file, optional)| {
        let path = PathBuf::from(file.as_ref()?);
        (!path.starts_with(pgdata)).then_some(ExtraFile { path, optional })
    })
    .collect()
}

async fn put_info(
    store: &Store,
    prefix: &ServerPrefix,
    id: &str,
    info: &BackupInfo,
) -> Result<(), StorageError> {
    store
        .put(
            &prefix.backup_info_key(id),
            Bytes::from(info.to_text()),
            &PutAttrs::default(),
        )
        .await
}

/// Takes a base backup of the server `opts.connect` reaches into `prefix`.
pub async fn take_backup(
    store: &Store,
    prefix: &ServerPrefix,
    opts: &BackupOptions,
) -> Result<BackupDone, BackupError> {
    let session = Session::connect(&opts.connect).await?;
    let facts = session.facts().await?;
    let id = BackupId::now().as_str().to_string();
    let mut info = initial_info(&facts);
    let copy_started = Instant::now();
    let start = session
        .start_backup(
            &format!("Barman backup cloud {id}"),
            opts.immediate_checkpoint,
        )
        .await?;
    let segment_size = facts.wal_segment_size;
    info.status = Some(BackupStatus::Started);
    info.begin_time = time(&start.time);
    info.begin_xlog = Some(start.lsn.to_string());
    info.timeline = Some(i64::from(start.timeline));
    info.begin_wal = Some(start.lsn.segment_name(start.timeline, segment_size));
    info.begin_offset = Some(start.lsn.segment_offset(segment_size) as i64);
    put_info(store, prefix, &id, &info).await?;
    tracing::info!(backup_id = %id, begin_wal = ?info.begin_wal, "backup started");

    let result = copy_and_stop(store, prefix, &id, &session, &facts, &mut info, opts).await;
    if let Some(name) = &opts.name {
        info.backup_name = Some(name.clone());
    }
    match result {
        Ok(bytes_stored) => {
            let elapsed = copy_started.elapsed().as_secs_f64();
            info.copy_stats = Some(copy_stats(elapsed, opts.jobs));
            info.status = Some(BackupStatus::Done);
            put_info(store, prefix, &id, &info).await?;
            Ok(BackupDone {
                backup_id: id,
                info,
                bytes_stored,
            })
        }
        Err(reason) => {
            let first_line = reason.lines().next().unwrap_or("unknown error").to_string();
            info.status = Some(BackupStatus::Failed);
            info.error = Some(format!("failure uploading data ({first_line})"));
            put_info(store, prefix, &id, &info).await?;
            Err(BackupError::Failed {
                backup_id: id,
                reason: first_line,
            })
        }
    }
}

/// Barman's `copy_stats` dict (seconds).
fn copy_stats(elapsed: f64, workers: usize) -> PyValue {
    let s = |k: &str| PyValue::Str(k.to_string());
    let secs = (elapsed * 1e6).round() / 1e6;
    PyValue::Dict(vec![
        (s("total_time"), PyValue::Float(secs)),
        (s("number_of_workers"), PyValue::Int(workers as i64)),
        (s("analysis_time"), PyValue::Int(0)),
        (s("copy_time"), PyValue::Float(secs)),
        (s("serialized_copy_time"), PyValue::Float(secs)),
    ])
}

/// The copy and the stop; returns the bytes stored or a failure reason.
async fn copy_and_stop(
    store: &Store,
    prefix: &ServerPrefix,
    id: &str,
    session: &Session,
    facts: &ServerFacts,
    info: &mut BackupInfo,
    opts: &BackupOptions,
) -> Result<u64, String> {
    let (data_written_tx, data_written_rx) = oneshot::channel::<()>();
    let (label_tx, label_rx) = oneshot::channel::<String>();
    let uploads: Arc<Mutex<Uploads>> = Arc::default();
    let plan = CopyPlan {
        handle: Handle::current(),
        store: store.clone(),
        dir: prefix.backup_dir(id),
        facts: facts.clone(),
        opts: opts.clone(),
        uploads: uploads.clone(),
        bar: crate::progress::bytes_bar(facts.cluster_size.unwrap_or(0).max(0) as u64, "backup"),
    };
    let bar = plan.bar.clone();
    let copier = tokio::task::spawn_blocking(move || plan.run(data_written_tx, label_rx));

    // Stop the backup once the data is written, then hand over the label.
    // A failed copy drops `data_written`; a failed stop drops `label_tx`,
    // which fails the copier: either way every writer is dropped and its
    // upload aborts itself.
    let stopped = async {
        if data_written_rx.await.is_err() {
            return Err("the copy ended before the data was written".to_string());
        }
        let stop = tokio::select! {
            stop = session.stop_backup() => stop.map_err(|e| e.to_string())?,
            () = cancelled(&opts.cancel) => return Err("KeyboardInterrupt".to_string()),
        };
        session.after_backup(id).await.map_err(|e| e.to_string())?;
        let _ = label_tx.send(stop.label.clone());
        Ok(stop)
    };
    let (stop, copy) = tokio::join!(stopped, copier);
    bar.finish_and_clear();

    // Wait for every upload, finished or aborting.
    let started: Uploads = uploads
        .lock()
        .map(|mut u| std::mem::take(&mut *u))
        .unwrap_or_default();
    let mut stored = 0u64;
    // An upload that failed on its own (a store error) is the cause: the copy then fails
    // writing into it, and the other uploads are interrupted (they abort themselves).
    let mut upload_error = None;
    let mut interrupted = None;
    for (key, task) in started {
        match task.await {
            Ok(Ok(done)) => stored += done.bytes,
            Ok(Err(e @ StorageError::Request { op: "UPLOAD", .. })) => {
                interrupted.get_or_insert(format!("{key}: {e}"));
            }
            Ok(Err(e)) => {
                upload_error.get_or_insert(format!("{key}: {e}"));
            }
            Err(e) => {
                upload_error.get_or_insert(format!("{key}: {e}"));
            }
        }
    }
    if opts.cancel.load(Ordering::Relaxed) {
        return Err("KeyboardInterrupt".to_string());
    }
    if let Some(e) = upload_error {
        return Err(e);
    }
    copy.map_err(|e| format!("copy task failed: {e}"))??;
    if let Some(e) = interrupted {
        return Err(e);
    }
    let stop = stop?;
    let segment_size = facts.wal_segment_size;
    info.end_time = time(&stop.time);
    info.end_xlog = Some(stop.lsn.to_string());
    info.end_wal = Some(stop.lsn.segment_name(stop.timeline, segment_size));
    info.end_offset = Some(stop.lsn.segment_offset(segment_size) as i64);
    info.backup_label = Some(PyValue::Str(stop.label));
    Ok(stored)
}

async fn cancelled(flag: &AtomicBool) {
    while !flag.load(Ordering::Relaxed) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A sink that advances the progress bar by the bytes written into the tar.
struct Counted<S> {
    inner: S,
    bar: indicatif::ProgressBar,
}

impl<S: std::io::Write> std::io::Write for Counted<S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<S: super::PartSink> super::PartSink for Counted<S> {
    fn compressed_len(&self) -> u64 {
        self.inner.compressed_len()
    }

    fn next_part(&mut self) -> std::io::Result<()> {
        self.inner.next_part()
    }
}

/// What the blocking copier needs.
struct CopyPlan {
    handle: Handle,
    store: Store,
    /// `P/base/<ID>/`.
    dir: String,
    facts: ServerFacts,
    opts: BackupOptions,
    uploads: Arc<Mutex<Uploads>>,
    bar: indicatif::ProgressBar,
}

impl CopyPlan {
    fn parts(&self, base: &str) -> UploadParts {
        let attrs = PutAttrs {
            digest: None,
            tags: self.opts.tags.clone(),
        };
        let options = UploadOptions {
            base_part_size: self.opts.min_chunk_size,
            jobs: self.opts.jobs,
        };
        UploadParts {
            handle: self.handle.clone(),
            store: self.store.clone(),
            base: format!("{}{base}", self.dir),
            suffix: tar_suffix(self.opts.compression),
            attrs,
            options,
            cancel: self.opts.cancel.clone(),
            uploads: self.uploads.clone(),
        }
    }

    fn sink(&self, base: &str) -> std::io::Result<Counted<EncodedParts<UploadParts>>> {
        let inner = EncodedParts::new(
            self.parts(base),
            self.opts.compression,
            StreamOptions::new(self.opts.threads),
        )?;
        Ok(Counted {
            inner,
            bar: self.bar.clone(),
        })
    }

    /// Writes every archive. On failure the archives are dropped unfinished,
    /// so their uploads abort.
    fn run(
        self,
        data_written: oneshot::Sender<()>,
        label: oneshot::Receiver<String>,
    ) -> Result<(), String> {
        let major = pg_major(self.facts.version_num);
        for (_, oid, location) in &self.facts.tablespaces {
            let mut tar = TarArchive::new(
                self.sink(&oid.to_string()).map_err(|e| e.to_string())?,
                self.opts.max_archive_size,
            );
            write_tablespace_tar(Path::new(location), &major, &mut tar)
                .map_err(|e| format!("tablespace {oid} at {location}: {e}"))?;
            tar.finish()
                .and_then(|c| c.inner.finish())
                .map_err(|e| format!("tablespace {oid}: {e}"))?;
        }
        let spec = PgdataTar {
            pgdata: PathBuf::from(&self.facts.data_directory),
            tablespaces: self
                .facts
                .tablespaces
                .iter()
                .map(|(_, oid, location)| TablespaceRef {
                    oid: *oid as u32,
                    location: PathBuf::from(location),
                })
                .collect(),
            extra_root_files: outside_config_files(&self.facts),
        };
        let gid = std::fs::metadata(&spec.pgdata)
            .map(|m| m.gid())
            .unwrap_or(0);
        let mut tar = TarArchive::new(
            self.sink("data").map_err(|e| e.to_string())?,
            self.opts.max_archive_size,
        );
        write_pgdata_tar(&spec, &mut tar).map_err(|e| format!("{}: {e}", spec.pgdata.display()))?;
        let _ = data_written.send(());
        let label = label
            .blocking_recv()
            .map_err(|_| "pg_backup_stop failed".to_string())?;
        append_backup_label(tar, &label, gid)
            .and_then(|c| c.inner.finish())
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

//! Pushing one WAL file: `archive_command`.
//!
//! The file is read once, a block at a time; its BLAKE3 digest and its
//! compressed form are computed as it is read (gzip itself spreads over the
//! cores) while a listing of the WAL's key stem looks for copies already
//! archived under any compression suffix. Then:
//!
//! * a copy exists: its content digest (metadata, or download and decode for
//!   objects Barman pushed) must equal ours — success without upload — or the
//!   push fails with [`Error::Conflict`], leaving the archive alone. A copy an
//!   earlier build recorded with SHA-256 is compared with the file hashed
//!   again with SHA-256 (a second read, on this rare path only);
//! * no copy: one `PutObject` with `If-None-Match: *` (a lost race turns into
//!   the comparison above). On stores that reject conditional writes the
//!   listing has already shown the key free, so a plain `PutObject` follows.
//!
//! `.history` files are never overwritten by construction. Memory: the
//! compressed copy (one conditional `PutObject` needs the whole body) and a
//! few 256 KiB blocks in flight; the file itself is read a block at a time.
//! Pushes side by side stage their compressed copies on disk and send them
//! one at a time ([`Staging`]).

use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::archived_digest;
use super::staging::{CompressedCopy, Staging};
use crate::codec::{self, Compression, ContentDigest, DigestAlgorithm, HashingWriter};
use crate::error::{Error, Result};
use crate::layout::ServerPrefix;
use crate::pg::WalName;
use crate::storage::{PutAttrs, PutOutcome, StorageError, Store};

/// How to push.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// `None` stores the file as is.
    pub compression: Option<Compression>,
    /// A resolved level (see [`Compression::resolve_level`]).
    pub level: i32,
    /// Tags for every object.
    pub tags: Vec<(String, String)>,
    /// Tags for `.history` files instead of `tags`, when not empty.
    pub history_tags: Vec<(String, String)>,
    /// Threads for compression.
    pub threads: usize,
    /// Where the compressed copy waits for its upload, for pushes that run
    /// side by side; `None`: in memory.
    pub staging: Option<Staging>,
}

impl PushOutcome {
    /// The digest of the WAL's content, as the archive records it.
    pub fn digest(&self) -> &ContentDigest {
        match self {
            PushOutcome::Uploaded { digest, .. } | PushOutcome::AlreadyArchived { digest, .. } => {
                digest
            }
        }
    }
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The object was stored.
    Uploaded {
        key: String,
        size: u64,
        stored_size: u64,
        digest: ContentDigest,
    },
    /// The same content was already archived (under `key`); nothing was sent.
    AlreadyArchived { key: String, digest: ContentDigest },
}

/// A WAL file read, hashed and compressed, ready to upload.
struct Prepared {
    digest: ContentDigest,
    body: CompressedCopy,
    size: u64,
}

/// A reader that remembers whether reading failed, to tell a read error
/// from a compression error once both come out of the same pipeline.
struct Watched<R> {
    inner: R,
    failed: bool,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf);
        self.failed |= read
            .as_ref()
            .is_err_and(|e| e.kind() != ErrorKind::Interrupted);
        read
    }
}

/// Reads, hashes and compresses the WAL file at `path` in one pass, a block
/// at a time (gzip over `opts.threads` threads): memory is a few blocks and
/// the compressed copy, never the whole file.
fn prepare(path: &Path, opts: &PushOptions) -> Result<Prepared> {
    let read_failed = |source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_failed)?;
    let size = file.metadata().map_err(read_failed)?.len();
    let mut input = Watched {
        inner: file,
        failed: false,
    };
    let mut hasher = DigestAlgorithm::RECORDED.hasher();
    let mut body = opts
        .staging
        .as_ref()
        .map_or_else(CompressedCopy::in_memory, Staging::body);
    let compressed = codec::compress_stream(
        &mut input,
        opts.compression,
        opts.level,
        opts.threads,
        size,
        &mut |block| hasher.update(block),
        &mut body,
    );
    match compressed {
        Ok(()) => {}
        // A read error, or a file that changed size while it was read.
        Err(source) if input.failed || source.kind() == ErrorKind::UnexpectedEof => {
            return Err(read_failed(source));
        }
        Err(source) => {
            return Err(Error::Compress {
                path: path.to_path_buf(),
                compression: opts.compression.map_or("none", Compression::name),
                source,
            });
        }
    };
    Ok(Prepared {
        digest: hasher.finish(),
        body,
        size,
    })
}

/// The digest in `algorithm` of the file at `path`, whose digest in
/// [`DigestAlgorithm::RECORDED`] is `recorded`: that one, or the file hashed
/// again (for a copy an earlier build recorded with SHA-256).
async fn local_digest(
    path: &Path,
    recorded: &ContentDigest,
    algorithm: DigestAlgorithm,
) -> Result<ContentDigest> {
    if recorded.algorithm == algorithm {
        return Ok(recorded.clone());
    }
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(&path).map_err(|source| Error::ReadFile {
            path: path.clone(),
            source,
        })?;
        let mut hashing = HashingWriter::new(std::io::sink(), Some(algorithm));
        std::io::copy(&mut file, &mut hashing).map_err(|source| Error::ReadFile {
            path: path.clone(),
            source,
        })?;
        let (_, digest, _) = hashing.finish();
        digest.ok_or_else(|| Error::Internal("hashed without a digest".into()))
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
}

/// Fails with [`Error::Conflict`] unless the object at `key` holds the
/// content of the file at `path` (digest `recorded`).
async fn ensure_same_content(
    store: &Store,
    wal: &WalName,
    key: &str,
    path: &Path,
    recorded: &ContentDigest,
) -> Result<()> {
    let archived = archived_digest(store, key).await?;
    let local = local_digest(path, recorded, archived.algorithm).await?;
    if archived == local {
        Ok(())
    } else {
        Err(Error::Conflict {
            wal: wal.to_string(),
            key: key.to_string(),
            archived,
            local,
        })
    }
}

/// Pushes the WAL file at `path` into the archive of `prefix`.
pub async fn push_wal(
    store: &Store,
    prefix: &ServerPrefix,
    path: &Path,
    opts: &PushOptions,
) -> Result<PushOutcome> {
    let started = Instant::now();
    let wal = WalName::parse(&path.to_string_lossy())?;
    let key = prefix.wal_key(&wal, opts.compression);
    let stem = prefix.wal_key_stem(&wal);

    let path_owned: PathBuf = path.to_path_buf();
    let opts_owned = opts.clone();
    let prepared = tokio::task::spawn_blocking(move || prepare(&path_owned, &opts_owned));
    let (prepared, listing) = tokio::join!(prepared, store.list(&stem));
    let prepared = prepared.map_err(|e| Error::Internal(e.to_string()))??;
    let listing = listing?;

    // Copies of this very WAL, under any compression suffix.
    let copies: Vec<&str> = listing
        .iter()
        .map(|o| o.key.as_str())
        .filter(|k| Compression::from_key(k).1 == stem)
        .collect();
    if let Some(first) = copies.first() {
        for copy in &copies {
            ensure_same_content(store, &wal, copy, path, &prepared.digest).await?;
        }
        tracing::info!(wal = %wal, key = %first, "already archived with the same content");
        return Ok(PushOutcome::AlreadyArchived {
            key: first.to_string(),
            digest: prepared.digest,
        });
    }

    let tags = if wal.is_history() && !opts.history_tags.is_empty() {
        opts.history_tags.clone()
    } else {
        opts.tags.clone()
    };
    let attrs = PutAttrs {
        digest: Some(prepared.digest.clone()),
        tags,
    };
    let turn = match &opts.staging {
        Some(staging) => staging.turn_to_send().await,
        None => None,
    };
    // Only a staging file can fail to map.
    let body = prepared
        .body
        .into_payload()
        .map_err(|source| Error::ReadFile {
            path: opts
                .staging
                .as_ref()
                .map_or_else(PathBuf::new, |s| s.dir().to_path_buf()),
            source,
        })?;
    let stored_size = body.content_length() as u64;
    let outcome = match store.put_if_absent(&key, body.clone(), &attrs).await {
        Ok(outcome) => outcome,
        Err(StorageError::ConditionalUnsupported { .. }) => {
            tracing::info!(key = %key, "the store has no conditional writes; the listing showed the key free, writing");
            store.put(&key, body, &attrs).await?;
            PutOutcome::Created
        }
        Err(e) => return Err(e.into()),
    };
    drop(turn);
    if outcome == PutOutcome::AlreadyExists {
        ensure_same_content(store, &wal, &key, path, &prepared.digest).await?;
        tracing::info!(wal = %wal, key = %key, "archived concurrently with the same content");
        return Ok(PushOutcome::AlreadyArchived {
            key,
            digest: prepared.digest,
        });
    }
    tracing::info!(
        wal = %wal,
        key = %key,
        bytes = prepared.size,
        stored_bytes = stored_size,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "pushed"
    );
    Ok(PushOutcome::Uploaded {
        key,
        size: prepared.size,
        stored_size,
        digest: prepared.digest,
    })
}

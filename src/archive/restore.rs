//! Restoring one WAL file: `restore_command`, Barman's search included.
//!
//! 1. A file already in the spool is moved to the destination; done.
//! 2. List `wals/HASH/NAME` (the whole hash directory with `-p N`, N > 1,
//!    except for history files).
//! 3. In key order, a key is the request if its basename minus one compression
//!    suffix is `NAME` or `NAME.partial`; with `-p N` the following keys are
//!    taken too while fewer than N are chosen. Invalid names and `.backup` files
//!    are skipped (and `.partial` ones with `--no-partial`).
//! 4. Nothing matched: [`RestoreOutcome::NotFound`] (exit 1).
//! 5. The first match is downloaded, decoded by its suffix, checked against the
//!    content digest recorded at push time (if any), and installed at the
//!    destination whole (renamed from a temp file, not fsynced: PostgreSQL asks
//!    again after a crash; see `Durability::Refetched`). The others are fetched
//!    concurrently into the spool (errors only logged), and synced.
//!
//! Unlike Barman, a second copy of the requested WAL under another suffix is
//! not spooled (it would only shadow a later request for the same name).

use std::path::{Path, PathBuf};

use futures::future::join_all;

use super::files::Durability;
use super::{DecodeFailure, Download, files, spool};
use crate::codec::Compression;
use crate::error::{Error, Result};
use crate::layout::{ServerPrefix, basename};
use crate::pg::WalName;
use crate::storage::Store;

/// How to restore.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub no_partial: bool,
    /// Fetch up to this many files per call (the request included); 0 or 1: just the request.
    pub parallel: usize,
    pub spool_dir: PathBuf,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreOutcome {
    /// Served from the spool without touching the store.
    FromSpool,
    /// Downloaded from `key`; `prefetched` more files went to the spool.
    Restored { key: String, prefetched: usize },
    /// No such WAL in the archive.
    NotFound,
}

/// Barman's `_validate_wal_path`: which listed files may be restored.
fn restorable(name: &str, no_partial: bool) -> bool {
    match WalName::parse(name) {
        Ok(w) => !(w.is_backup_history() || no_partial && w.is_partial()),
        Err(_) => {
            tracing::warn!(file = name, "unknown file in the WAL archive");
            false
        }
    }
}

/// The keys to fetch, the request first; empty when the request is absent.
fn select(
    listing: &[String],
    wal: &WalName,
    requested_key: &str,
    parallel: usize,
    no_partial: bool,
) -> Vec<String> {
    let name = wal.as_str();
    let partial = format!("{name}.partial");
    let mut chosen: Vec<String> = Vec::new();
    let mut found = false;
    for key in listing {
        let (_, plain) = Compression::from_key(basename(key));
        let is_request = plain == name || plain == partial;
        if !(is_request || (key.as_str() > requested_key && chosen.len() < parallel)) {
            continue;
        }
        if !restorable(plain, no_partial) {
            continue;
        }
        if is_request && found {
            continue; // another copy of the request: not worth spooling
        }
        found |= is_request;
        chosen.push(key.clone());
    }
    if found && chosen.first().is_some_and(|k| basename(k).contains(name)) {
        chosen
    } else {
        Vec::new()
    }
}

/// Downloads `key` and installs it at `dest` via `tmp` (as `durability`
/// says), verifying its checksum; the object is decoded as it arrives
/// (bounded memory).
async fn fetch_to(
    store: &Store,
    key: &str,
    dest: &Path,
    tmp: &Path,
    durability: Durability,
) -> Result<u64> {
    let download = Download::start(store, key).await?;
    let (key, dest, tmp) = (key.to_string(), dest.to_path_buf(), tmp.to_path_buf());
    tokio::task::spawn_blocking(move || {
        let mut failure = None;
        // Hashed only when there is a digest to check (not for Barman's objects).
        let expected = download.digest.clone();
        let algorithm = expected.as_ref().map(|d| d.algorithm);
        let installed = files::install(&dest, &tmp, durability, |file| {
            // Written as decoded, a decode buffer at a time: no second buffer.
            let (actual, len) = match download.decode_into(file, algorithm) {
                Ok(decoded) => decoded,
                Err(DecodeFailure::Write(e)) => return Err(e),
                Err(DecodeFailure::Decode(e)) => {
                    failure = Some(e);
                    return Err(std::io::Error::other("decode failed"));
                }
            };
            if let (Some(expected), Some(actual)) = (expected, actual)
                && expected != actual
            {
                failure = Some(Error::ChecksumMismatch {
                    key: key.clone(),
                    expected,
                    actual,
                });
                return Err(std::io::Error::other("checksum mismatch"));
            }
            Ok(len)
        });
        match (installed, failure) {
            (Ok(len), _) => Ok(len),
            (Err(_), Some(e)) => Err(e),
            (Err(source), None) => Err(Error::WriteFile { path: dest, source }),
        }
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
}

/// Restores WAL `wal` to `dest`.
pub async fn restore_wal(
    store: &Store,
    prefix: &ServerPrefix,
    wal: &WalName,
    dest: &Path,
    opts: &RestoreOptions,
) -> Result<RestoreOutcome> {
    let source = format!("{}/{}", store.location(), prefix.as_str());
    files::remove_stale_temps(dest);
    if spool::take(&opts.spool_dir, wal.as_str(), dest, &source)? {
        tracing::info!(wal = %wal, "served from the spool");
        return Ok(RestoreOutcome::FromSpool);
    }
    let dir = prefix.wal_dir(wal);
    let requested_key = format!("{dir}{}", wal.as_str());
    let parallel = if wal.is_history() { 0 } else { opts.parallel };
    let list_prefix = if parallel > 1 {
        dir.as_str()
    } else {
        requested_key.as_str()
    };
    let listing: Vec<String> = store
        .list(list_prefix)
        .await?
        .into_iter()
        .map(|o| o.key)
        .collect();
    let chosen = select(&listing, wal, &requested_key, parallel, opts.no_partial);
    let Some((first, rest)) = chosen.split_first() else {
        return Ok(RestoreOutcome::NotFound);
    };
    if !rest.is_empty() {
        spool::ensure_dir(&opts.spool_dir)?;
        spool::claim(&opts.spool_dir, &source)?;
    }

    let dest_tmp = files::temp_path_for(dest);
    // PostgreSQL's file: see `Durability::Refetched`. Spooled ones are served
    // by a later run as they are, so they are synced.
    let main = fetch_to(store, first, dest, &dest_tmp, Durability::Refetched);
    let prefetches = join_all(rest.iter().map(|key| async move {
        let (_, plain) = Compression::from_key(basename(key));
        let name = plain.strip_suffix(".partial").unwrap_or(plain);
        let (target, tmp) = spool::paths(&opts.spool_dir, name);
        let result = fetch_to(store, key, &target, &tmp, Durability::Synced).await;
        if let Err(e) = &result {
            tracing::warn!(key = %key, error = %e, "prefetch failed");
        }
        result.is_ok()
    }));
    let (main, prefetched) = tokio::join!(main, prefetches);
    let bytes = main?;
    let prefetched = prefetched.into_iter().filter(|ok| *ok).count();
    tracing::info!(wal = %wal, key = %first, bytes, prefetched, "restored");
    Ok(RestoreOutcome::Restored {
        key: first.clone(),
        prefetched,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(listing: &[&str], name: &str, parallel: usize, no_partial: bool) -> Vec<String> {
        let wal = WalName::parse(name).unwrap();
        let dir = "p/wals/0000000100000000/";
        let listing: Vec<String> = listing.iter().map(|k| format!("{dir}{k}")).collect();
        select(
            &listing,
            &wal,
            &format!("{dir}{name}"),
            parallel,
            no_partial,
        )
        .into_iter()
        .map(|k| basename(&k).to_string())
        .collect()
    }

    const SEG: &str = "000000010000000000000004";

    #[test]
    fn finds_the_request_under_any_suffix() {
        assert_eq!(
            pick(&["000000010000000000000004.zst"], SEG, 0, false),
            ["000000010000000000000004.zst"]
        );
        assert!(pick(&["000000010000000000000005.gz"], SEG, 0, false).is_empty());
    }

    #[test]
    fn a_partial_answers_for_the_segment_unless_refused() {
        let listing = ["000000010000000000000004.partial.gz"];
        assert_eq!(
            pick(&listing, SEG, 0, false),
            ["000000010000000000000004.partial.gz"]
        );
        assert!(pick(&listing, SEG, 0, true).is_empty());
    }

    #[test]
    fn prefetch_takes_the_following_restorable_files_up_to_n() {
        let listing = [
            "000000010000000000000003.gz",
            "000000010000000000000004.gz",
            "000000010000000000000004.00000028.backup.gz",
            "000000010000000000000005.gz",
            "junk.txt",
            "000000010000000000000006.gz",
            "000000010000000000000007.gz",
        ];
        assert_eq!(
            pick(&listing, SEG, 3, false),
            [
                "000000010000000000000004.gz",
                "000000010000000000000005.gz",
                "000000010000000000000006.gz"
            ]
        );
    }

    #[test]
    fn the_uncompressed_copy_wins_and_other_copies_are_not_spooled() {
        let listing = ["000000010000000000000004", "000000010000000000000004.gz"];
        assert_eq!(pick(&listing, SEG, 0, false), ["000000010000000000000004"]);
    }
}

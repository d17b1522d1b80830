//! Staging the compressed output of pushes that run side by side.
//!
//! A push needs its whole compressed body before its one conditional
//! `PutObject` can go out. A push alone keeps it in memory. Pushes running
//! side by side (the sidecar's workers, a look-ahead `walpush`) would each
//! hold theirs for as long as they compress, so the sidecar's peak memory
//! grew by a compressed segment per worker. They write it instead, block by
//! block as it is produced, into an unnamed file (`O_TMPFILE`) in
//! `pg_wal/barnacle_pushed/`, on the WAL's own volume. Then, one push at a
//! time, the file is mapped and sent. Memory is one body being sent plus a
//! few blocks per push, whatever the number of pushes. Sending takes a small
//! part of a push (a 16 MiB segment takes 20 to 350 ms of a core to
//! compress, its compressed form a few to a few tens to reach a nearby
//! store), so pushes seldom wait for each other.
//!
//! The file has no name, so a crash or SIGKILL at any moment leaves nothing
//! behind. Where the file system lacks `O_TMPFILE`, `tempfile` unlinks its
//! file right after creating it.
//!
//! A staging file that cannot be created or written never fails the push.
//! A full volume is exactly when archiving must go on, to free it. What is
//! not on disk stays in memory.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use object_store::PutPayload;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::codec::ChunkSink;

/// Where pushes side by side stage their output, and their turn to send it.
#[derive(Debug, Clone)]
pub struct Staging {
    dir: PathBuf,
    sends: Arc<Semaphore>,
}

impl Staging {
    /// Stages in `dir` (created when missing); one push sends at a time.
    pub fn new(dir: impl Into<PathBuf>) -> Staging {
        Staging {
            dir: dir.into(),
            sends: Arc::new(Semaphore::new(1)),
        }
    }

    /// The directory staging files are created in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new, empty body. Without a staging file (the directory cannot be
    /// created or written) it keeps everything in memory.
    pub(super) fn body(&self) -> CompressedCopy {
        let file = std::fs::create_dir_all(&self.dir)
            .and_then(|()| tempfile::tempfile_in(&self.dir))
            .map_err(|e| {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot stage the compressed WAL on disk; keeping it in memory");
            })
            .ok();
        CompressedCopy {
            file,
            ..CompressedCopy::in_memory()
        }
    }

    /// Waits for this push's turn to send; held until its upload ends.
    pub(super) async fn turn_to_send(&self) -> Option<SemaphorePermit<'_>> {
        // The semaphore is never closed, so this only waits.
        self.sends.acquire().await.ok()
    }
}

/// A push's compressed output: its first `on_disk` bytes in the staging
/// file, the rest (after a failed write, or without a file: every push that
/// does not stage) in memory.
pub(super) struct CompressedCopy {
    file: Option<File>,
    on_disk: usize,
    in_memory: Vec<Bytes>,
}

impl ChunkSink for CompressedCopy {
    fn put(&mut self, chunk: Vec<u8>) -> io::Result<()> {
        if let (Some(file), true) = (&mut self.file, self.in_memory.is_empty()) {
            match file.write_all(&chunk) {
                Ok(()) => {
                    self.on_disk += chunk.len();
                    return Ok(());
                }
                // Part of the chunk may be in the file, past `on_disk`: the
                // mapping stops at `on_disk`, the whole chunk goes to memory,
                // and so does everything after it.
                Err(e) => {
                    tracing::warn!(error = %e, "writing the staging file failed; keeping the rest of the compressed WAL in memory");
                }
            }
        }
        self.in_memory.put(chunk)
    }
}

impl CompressedCopy {
    /// A body kept wholly in memory, for a push that does not stage.
    pub(super) fn in_memory() -> CompressedCopy {
        CompressedCopy {
            file: None,
            on_disk: 0,
            in_memory: Vec::new(),
        }
    }

    /// The body to send: the staging file, mapped, then what is in memory.
    pub(super) fn into_payload(self) -> io::Result<PutPayload> {
        let on_disk = self.on_disk;
        let staged = self
            .file
            .filter(|_| on_disk > 0)
            // SAFETY: the file has no name (or was unlinked at once) and only
            // this body holds its descriptor, which the mapping keeps: nothing
            // writes or truncates it while it is mapped, and its `on_disk`
            // first bytes were written.
            .map(|file| unsafe { memmap2::MmapOptions::new().len(on_disk).map(&file) })
            .transpose()?;
        Ok(staged
            .map(Bytes::from_owner)
            .into_iter()
            .chain(self.in_memory)
            .collect())
    }

    /// The body's length in bytes.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.on_disk + self.in_memory.iter().map(Bytes::len).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload_bytes(payload: &PutPayload) -> Vec<u8> {
        payload.iter().flat_map(|b| b.iter().copied()).collect()
    }

    #[test]
    fn a_staged_body_comes_back_whole_from_its_file() {
        let dir = std::env::temp_dir().join(format!("barnacle-staging-{}", std::process::id()));
        let staging = Staging::new(dir.join("nested"));
        let mut body = staging.body();
        assert!(body.file.is_some(), "the staging file was created");
        let chunks = [
            b"header".to_vec(),
            vec![7; 300_000],
            Vec::new(),
            b"trailer".to_vec(),
        ];
        for chunk in chunks.clone() {
            body.put(chunk).unwrap();
        }
        assert!(body.in_memory.is_empty(), "everything went to the file");
        assert_eq!(body.len(), chunks.iter().map(Vec::len).sum::<usize>());
        let payload = body.into_payload().unwrap();
        assert_eq!(payload_bytes(&payload), chunks.concat());
        // The file has no name: the directory stays empty.
        assert_eq!(std::fs::read_dir(staging.dir()).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_a_usable_directory_the_body_stays_in_memory() {
        // A regular file where the directory should be.
        let blocker =
            std::env::temp_dir().join(format!("barnacle-staging-file-{}", std::process::id()));
        std::fs::write(&blocker, b"x").unwrap();
        let mut body = Staging::new(blocker.join("dir")).body();
        assert!(body.file.is_none());
        body.put(b"abc".to_vec()).unwrap();
        body.put(b"def".to_vec()).unwrap();
        assert_eq!(payload_bytes(&body.into_payload().unwrap()), b"abcdef");
        std::fs::remove_file(&blocker).unwrap();
    }

    #[test]
    fn a_failed_write_keeps_the_file_prefix_and_the_rest_in_memory() {
        let dir = std::env::temp_dir().join(format!("barnacle-staging-ro-{}", std::process::id()));
        let mut body = Staging::new(&dir).body();
        body.put(b"on disk ".to_vec()).unwrap();
        // Writes to a read-only descriptor fail as a full volume would.
        let path = dir.join("ro");
        std::fs::write(&path, b"").unwrap();
        let on_disk = body.on_disk;
        let kept = body.file.replace(File::open(&path).unwrap()).unwrap();
        body.put(b"in memory ".to_vec()).unwrap();
        body.put(b"after".to_vec()).unwrap();
        assert_eq!(body.on_disk, on_disk);
        assert_eq!(
            body.in_memory.len(),
            2,
            "the failed chunk and every later one"
        );
        body.file = Some(kept);
        assert_eq!(
            payload_bytes(&body.into_payload().unwrap()),
            b"on disk in memory after"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn one_push_sends_at_a_time() {
        let staging = Staging::new(std::env::temp_dir());
        let first = staging.turn_to_send().await;
        assert!(first.is_some());
        let second =
            tokio::time::timeout(std::time::Duration::from_millis(50), staging.turn_to_send())
                .await;
        assert!(
            second.is_err(),
            "the second push waits while the first sends"
        );
        drop(first);
        assert!(staging.turn_to_send().await.is_some());
    }
}

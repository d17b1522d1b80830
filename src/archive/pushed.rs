//! The record of WAL files already pushed ahead of PostgreSQL's request, by
//! the sidecar or by a look-ahead `walpush --max-parallel N`.
//!
//! It lives in `pg_wal/barnacle_pushed/` (next to the WAL files, so that
//! `walpush pg_wal/…`, run by PostgreSQL with PGDATA as its working directory,
//! finds it with no option; PostgreSQL ignores directories in `pg_wal`, and
//! base backups leave `pg_wal`'s contents out). One small file per WAL:
//!
//! ```text
//! barnacle-pushed v1 <dev> <ino> <size> <mtime_ns> <digest> <destination>
//! ```
//!
//! `<digest>` is the 64 hex digits of the content digest recorded with the
//! object (BLAKE3; SHA-256 in markers of earlier builds, which stay valid).
//!
//! A marker is written only after the store accepted the object (temp file,
//! fsync, rename, fsync of the directory), so a crash or SIGKILL never leaves a
//! marker for an object that is not stored. `walpush` trusts a marker only if
//! the file it is asked to archive is the very file that was pushed (same
//! device, inode, size and modification time) to the same destination; then
//! it answers at once, without reading the file.
//!
//! While the sidecar (or a look-ahead `walpush`) pushes a file it holds a
//! *claim*: an exclusive `flock` on `.NAME.claim` in the same directory. A
//! `walpush` that finds no marker but a held claim waits (bounded) for the
//! claim to be released and looks for the marker again, instead of reading,
//! compressing and uploading the same segment a second time (the oldest ready
//! segment is the one both PostgreSQL's archiver and the sidecar take first).
//! The kernel releases a `flock` when its holder exits, even on SIGKILL, so a
//! dead pusher never keeps `walpush` waiting; a released claim without a
//! marker (the push failed) means `walpush` pushes the file itself.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::files::{self, Durability};

/// The directory name under `pg_wal`.
pub const DIR_NAME: &str = "barnacle_pushed";
const MAGIC: &str = "barnacle-pushed v1";
/// A claim on `NAME` is the hidden file `.NAME.claim`.
const CLAIM_SUFFIX: &str = ".claim";

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIdentity {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
}

impl FileIdentity {
    pub fn of(path: &Path) -> io::Result<FileIdentity> {
        let m = fs::metadata(path)?;
        Ok(FileIdentity {
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        })
    }
}

/// The pushed-files record of one `pg_wal` directory.
#[derive(Debug, Clone)]
pub struct PushedRecord {
    dir: PathBuf,
}

impl PushedRecord {
    pub fn new(dir: impl Into<PathBuf>) -> PushedRecord {
        PushedRecord { dir: dir.into() }
    }

    /// The record next to a WAL file (`pg_wal/barnacle_pushed` for `pg_wal/X`).
    pub fn beside(wal_path: &Path) -> PushedRecord {
        let parent = match wal_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        PushedRecord::new(parent.join(DIR_NAME))
    }

    /// The record of a data directory (`PGDATA/pg_wal/barnacle_pushed`).
    pub fn of_pgdata(pgdata: &Path) -> PushedRecord {
        PushedRecord::new(pgdata.join("pg_wal").join(DIR_NAME))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn line(identity: &FileIdentity, digest: &str, destination: &str) -> String {
        format!(
            "{MAGIC} {} {} {} {} {digest} {destination}\n",
            identity.dev, identity.ino, identity.size, identity.mtime_ns
        )
    }

    /// True when `name`, as it is now on disk (`identity`), was pushed to `destination`.
    pub fn is_pushed(&self, name: &str, identity: &FileIdentity, destination: &str) -> bool {
        let Ok(text) = fs::read_to_string(self.dir.join(name)) else {
            return false;
        };
        let Some(rest) = text.strip_prefix(MAGIC) else {
            return false;
        };
        let fields: Vec<&str> = rest.trim_end_matches('\n').splitn(7, ' ').collect();
        match fields.as_slice() {
            ["", dev, ino, size, mtime, digest, dest] => {
                digest.len() == 64
                    && *dest == destination
                    && dev.parse() == Ok(identity.dev)
                    && ino.parse() == Ok(identity.ino)
                    && size.parse() == Ok(identity.size)
                    && mtime.parse() == Ok(identity.mtime_ns)
            }
            _ => false,
        }
    }

    /// Records that `name` (`identity`, content `digest`) is stored at `destination`.
    /// Call only after the store accepted the object.
    pub fn record(
        &self,
        name: &str,
        identity: &FileIdentity,
        digest: &str,
        destination: &str,
    ) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let target = self.dir.join(name);
        let line = Self::line(identity, digest, destination);
        files::install(
            &target,
            &files::temp_path_for(&target),
            Durability::Synced,
            |f| f.write_all(line.as_bytes()),
        )
    }

    /// Forgets `name` (after PostgreSQL got its answer).
    pub fn forget(&self, name: &str) {
        let _ = fs::remove_file(self.dir.join(name));
    }

    /// Removes the markers of WAL files no longer in `pg_wal` (archived, then
    /// removed or recycled by PostgreSQL), and what killed pushers left:
    /// half-written markers of processes that are gone, and claims
    /// (`.NAME.claim`) on WAL files no longer in `pg_wal`.
    pub fn forget_departed(&self, pg_wal: &Path) {
        files::remove_stale_temps_in(&self.dir, None);
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(file) = entry.file_name().into_string() else {
                continue;
            };
            // A marker, or a claim; anything else hidden is not ours to judge.
            let wal = match file.strip_prefix('.') {
                None => Some(file.as_str()),
                Some(hidden) => hidden.strip_suffix(CLAIM_SUFFIX),
            };
            if wal.is_some_and(|wal| !pg_wal.join(wal).exists()) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    fn claim_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!(".{name}{CLAIM_SUFFIX}"))
    }

    /// Claims `name` for the duration of a push ahead of PostgreSQL; `None`
    /// when another pusher holds it. The claim ends when the [`Claim`] drops.
    pub fn claim(&self, name: &str) -> io::Result<Option<Claim>> {
        fs::create_dir_all(&self.dir)?;
        let path = self.claim_path(name);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        if flock(&file, libc::LOCK_EX | libc::LOCK_NB)? {
            Ok(Some(Claim { path, file }))
        } else {
            Ok(None)
        }
    }

    /// Waits, at most `limit`, while another process holds a claim on `name`.
    /// True if there was a held claim (now released, or the wait timed out):
    /// the caller should look for the marker again.
    pub fn wait_for_claim(&self, name: &str, limit: Duration) -> bool {
        let Ok(file) = File::open(self.claim_path(name)) else {
            return false; // no claim, or it just ended (marker written first)
        };
        let deadline = Instant::now() + limit;
        let mut held = false;
        loop {
            match flock(&file, libc::LOCK_SH | libc::LOCK_NB) {
                Ok(true) => return held,
                Ok(false) if Instant::now() < deadline => {
                    held = true;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok(false) | Err(_) => return true,
            }
        }
    }

    /// Names recorded (complete markers only).
    #[cfg(test)]
    fn names(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect()
    }
}

/// A held claim on one WAL file (see the module header). Dropping it removes
/// the claim file, then releases the lock.
#[derive(Debug)]
pub struct Claim {
    path: PathBuf,
    file: File,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
        let _ = flock(&self.file, libc::LOCK_UN);
    }
}

/// `flock(2)`: Ok(false) when a non-blocking request would block.
fn flock(file: &File, op: libc::c_int) -> io::Result<bool> {
    // SAFETY: a valid open file descriptor; flock does not touch memory.
    if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.kind() == io::ErrorKind::WouldBlock {
        Ok(false)
    } else {
        Err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "barnacle-pushed-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_marker_vouches_only_for_the_same_file_and_destination() {
        let dir = tmp();
        let wal = dir.join("000000010000000000000001");
        fs::write(&wal, b"segment").unwrap();
        let record = PushedRecord::beside(&wal);
        assert_eq!(record.dir(), dir.join(DIR_NAME));
        let id = FileIdentity::of(&wal).unwrap();
        let sha = "a".repeat(64);
        assert!(!record.is_pushed("000000010000000000000001", &id, "s3://b/p pg"));
        record
            .record("000000010000000000000001", &id, &sha, "s3://b/p pg")
            .unwrap();
        assert!(record.is_pushed("000000010000000000000001", &id, "s3://b/p pg"));
        assert!(!record.is_pushed("000000010000000000000001", &id, "s3://other pg"));
        // The file changed since: the marker no longer vouches for it.
        std::thread::sleep(std::time::Duration::from_millis(10));
        fs::write(&wal, b"segment, rewritten").unwrap();
        let changed = FileIdentity::of(&wal).unwrap();
        assert!(!record.is_pushed("000000010000000000000001", &changed, "s3://b/p pg"));
        assert_eq!(record.names(), ["000000010000000000000001"]);
        record.forget("000000010000000000000001");
        assert!(record.names().is_empty());
    }

    #[test]
    fn a_held_claim_makes_walpush_wait_until_it_is_released() {
        let dir = tmp();
        let record = PushedRecord::new(dir.join(DIR_NAME));
        let name = "000000010000000000000002";
        // No claim: nothing to wait for.
        assert!(!record.wait_for_claim(name, Duration::from_secs(5)));
        let claim = record.claim(name).unwrap().expect("free");
        // Held: a second claim is refused, and a waiter gives up at its limit.
        assert!(record.claim(name).unwrap().is_none());
        let started = Instant::now();
        assert!(record.wait_for_claim(name, Duration::from_millis(50)));
        assert!(started.elapsed() >= Duration::from_millis(50));
        // Released while waiting: the waiter returns soon after, and the
        // claim file is gone (claims never show up as markers).
        let waiter = {
            let record = record.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                (
                    record.wait_for_claim(name, Duration::from_secs(30)),
                    started.elapsed(),
                )
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        drop(claim);
        let (waited, took) = waiter.join().unwrap();
        assert!(waited);
        assert!(took < Duration::from_secs(10), "{took:?}");
        assert!(!record.wait_for_claim(name, Duration::from_secs(5)));
        assert!(record.names().is_empty());
        assert!(record.claim(name).unwrap().is_some());
    }

    #[test]
    fn what_killed_pushers_left_is_removed_with_departed_markers() {
        let dir = tmp();
        let pg_wal = dir.clone();
        let record = PushedRecord::beside(&pg_wal.join("x"));
        fs::create_dir_all(record.dir()).unwrap();
        let (here, gone) = ("000000010000000000000003", "000000010000000000000004");
        fs::write(pg_wal.join(here), b"segment").unwrap();
        // A pid no process has (above the kernel's pid_max limit of 2^22).
        let dead = 1 << 23;
        let me = std::process::id();
        let files = [
            (here.to_string(), true),                        // its WAL is still here
            (gone.to_string(), false),                       // departed marker
            (format!(".{here}.barnacle-tmp.{dead}"), false), // killed before its rename
            (format!(".{gone}.barnacle-tmp.{me}"), true),    // a live writer's
            (format!(".{here}.claim"), true),                // its WAL is still here
            (format!(".{gone}.claim"), false),               // nothing left to push
            (".unrelated".to_string(), true),
        ];
        for (name, _) in &files {
            fs::write(record.dir().join(name), b"").unwrap();
        }
        record.forget_departed(&pg_wal);
        for (name, kept) in &files {
            assert_eq!(record.dir().join(name).exists(), *kept, "{name}");
        }
    }

    #[test]
    fn garbage_markers_are_not_trusted() {
        let dir = tmp();
        let record = PushedRecord::new(dir.join(DIR_NAME));
        fs::create_dir_all(record.dir()).unwrap();
        fs::write(record.dir().join("x"), b"barnacle-pushed v1 1 2 3").unwrap();
        let id = FileIdentity {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns: 4,
        };
        assert!(!record.is_pushed("x", &id, "d"));
    }
}

//! The record of WAL files already pushed ahead of PostgreSQL's request, by
//! the sidecar or by a look-ahead `walpush --max-parallel N`.
//!
//! It lives in `pg_wal/barnacle_pushed/` (next to the WAL files, so that
//! `walpush pg_wal/…`, run by PostgreSQL with PGDATA as its working directory,
//! finds it with no option; PostgreSQL ignores directories in `pg_wal`, and
//! base backups leave `pg_wal`'s contents out). One small file per WAL:
//!
//! ```text
//! barnacle-pushed v1 <dev> <ino> <size> <mtime_ns> <sha256> <destination>
//! ```
//!
//! A marker is written only after the store accepted the object (temp file,
//! fsync, rename, fsync of the directory), so a crash or SIGKILL never leaves a
//! marker for an object that is not stored. `walpush` trusts a marker only if
//! the file it is asked to archive is the very file that was pushed (same
//! device, inode, size and modification time) to the same destination; then
//! it answers at once, without reading the file.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The directory name under `pg_wal`.
pub const DIR_NAME: &str = "barnacle_pushed";
const MAGIC: &str = "barnacle-pushed v1";

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

    fn line(identity: &FileIdentity, sha256: &str, destination: &str) -> String {
        format!(
            "{MAGIC} {} {} {} {} {sha256} {destination}\n",
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
            ["", dev, ino, size, mtime, sha, dest] => {
                sha.len() == 64
                    && *dest == destination
                    && dev.parse() == Ok(identity.dev)
                    && ino.parse() == Ok(identity.ino)
                    && size.parse() == Ok(identity.size)
                    && mtime.parse() == Ok(identity.mtime_ns)
            }
            _ => false,
        }
    }

    /// Records that `name` (`identity`, content `sha256`) is stored at `destination`.
    /// Call only after the store accepted the object.
    pub fn record(
        &self,
        name: &str,
        identity: &FileIdentity,
        sha256: &str,
        destination: &str,
    ) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let target = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.tmp.{}", std::process::id()));
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(Self::line(identity, sha256, destination).as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &target)?;
            File::open(&self.dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Forgets `name` (after PostgreSQL got its answer).
    pub fn forget(&self, name: &str) {
        let _ = fs::remove_file(self.dir.join(name));
    }

    /// Names recorded (complete markers only).
    pub fn names(&self) -> Vec<String> {
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

//! Barman's object key layout (spec §1): where each file lives under
//! `s3://BUCKET/PATH`.
//!
//! ```text
//! P = PATH/SERVER_NAME   (joined like Python's os.path.join)
//! P/wals/TTTTTTTTLLLLLLLL/<segment>[.partial|.OOOOOOOO.backup][.ext]
//! P/wals/TTTTTTTT.history[.ext]
//! P/base/<BACKUP_ID>/...
//! ```
//!
//! The hash directory is upper-case whatever the case of the name; history
//! files have none. No I/O here.

pub mod backup_id;
pub mod backup_info;
pub mod pyliteral;

use crate::codec::Compression;
use crate::pg::WalName;

/// The key prefix of one server's archive: `PATH/SERVER_NAME`, without a
/// trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerPrefix(String);

impl ServerPrefix {
    /// `bucket_path` is the URL path with its leading slashes removed (may be
    /// empty); joined with `server` as `os.path.join` joins: no doubled slash
    /// when `bucket_path` ends in `/`, doubled slashes inside it are kept.
    pub fn new(bucket_path: &str, server: &str) -> Self {
        let path = bucket_path.trim_start_matches('/');
        if path.is_empty() {
            ServerPrefix(server.to_string())
        } else if path.ends_with('/') {
            ServerPrefix(format!("{path}{server}"))
        } else {
            ServerPrefix(format!("{path}/{server}"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `P/wals/`: the root of the WAL archive.
    pub fn wals_root(&self) -> String {
        format!("{}/wals/", self.0)
    }

    /// The directory a WAL file lives in: `P/wals/HASH/`, or `P/wals/` for history files.
    pub fn wal_dir(&self, wal: &WalName) -> String {
        let hash = wal.hash_dir();
        if hash.is_empty() {
            self.wals_root()
        } else {
            format!("{}/wals/{hash}/", self.0)
        }
    }

    /// The key of a WAL file archived with `compression`.
    pub fn wal_key(&self, wal: &WalName, compression: Option<Compression>) -> String {
        let suffix = compression.map_or("", Compression::suffix);
        format!("{}{}{}", self.wal_dir(wal), wal.as_str(), suffix)
    }

    /// `P/base/`: the root of the base backups.
    pub fn base_root(&self) -> String {
        format!("{}/base/", self.0)
    }

    /// `P/base/<ID>/`: one backup's directory.
    pub fn backup_dir(&self, backup_id: &str) -> String {
        format!("{}/base/{backup_id}/", self.0)
    }

    /// `P/base/<ID>/backup.info`.
    pub fn backup_info_key(&self, backup_id: &str) -> String {
        format!("{}backup.info", self.backup_dir(backup_id))
    }

    /// `P/base/<ID>/annotations/keep`.
    pub fn keep_key(&self, backup_id: &str) -> String {
        format!("{}annotations/keep", self.backup_dir(backup_id))
    }

    /// The key without any compression suffix: every key that starts with
    /// this is the WAL itself, one of its compressed forms, its `.partial`, or
    /// a backup history file of the same segment.
    pub fn wal_key_stem(&self, wal: &WalName) -> String {
        self.wal_key(wal, None)
    }
}

/// The file name (last `/`-separated part) of a key.
pub fn basename(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal(name: &str) -> WalName {
        WalName::parse(name).unwrap()
    }

    #[test]
    fn prefix_joins_like_os_path_join() {
        assert_eq!(ServerPrefix::new("", "pg").as_str(), "pg");
        assert_eq!(ServerPrefix::new("/a/b", "pg").as_str(), "a/b/pg");
        assert_eq!(ServerPrefix::new("a/b/", "pg").as_str(), "a/b/pg");
        assert_eq!(ServerPrefix::new("a//b", "pg").as_str(), "a//b/pg");
    }

    #[test]
    fn wal_keys_follow_barman_layout() {
        let p = ServerPrefix::new("cluster-1", "pg");
        assert_eq!(
            p.wal_key(&wal("000000010000000000000004"), Some(Compression::Gzip)),
            "cluster-1/pg/wals/0000000100000000/000000010000000000000004.gz"
        );
        assert_eq!(
            p.wal_key(&wal("0000000a0000000b0000000c.partial"), None),
            "cluster-1/pg/wals/0000000A0000000B/0000000a0000000b0000000c.partial"
        );
        assert_eq!(
            p.wal_key(
                &wal("000000010000000000000004.00000028.backup"),
                Some(Compression::Bzip2)
            ),
            "cluster-1/pg/wals/0000000100000000/000000010000000000000004.00000028.backup.bz2"
        );
        assert_eq!(
            p.wal_key(&wal("00000002.history"), Some(Compression::Gzip)),
            "cluster-1/pg/wals/00000002.history.gz"
        );
    }

    #[test]
    fn basename_is_the_last_component() {
        assert_eq!(basename("a/b/c.gz"), "c.gz");
        assert_eq!(basename("c"), "c");
    }
}

//! The crate's error type and the one mapping from error to Barman's exit codes.
//!
//! | code | meaning                                                                 |
//! |------|-------------------------------------------------------------------------|
//! | 1    | the operation failed with working connectivity (see each command)       |
//! | 2    | spool directory problem (wal-restore); endpoint unreachable on `-t`     |
//! | 3    | bad command line: invalid WAL name, bad option value                    |
//! | 4    | anything else: missing file, store error, network error, corrupt object |
//!
//! "Not found" answers are outcomes, not errors; the binary maps those.

use std::io;
use std::path::PathBuf;

use crate::catalog::load::CatalogError;
use crate::codec::ContentDigest;
use crate::pg::WalNameError;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    InvalidWalName(#[from] WalNameError),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("cannot read {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {path}: {source}")]
    WriteFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("spool directory {path}: {source}")]
    Spool {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot compress {path} with {compression}: {source}")]
    Compress {
        path: PathBuf,
        compression: &'static str,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot decompress {key} ({compression}): the object is corrupt or truncated: {source}"
    )]
    Decompress {
        key: String,
        compression: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{key}: checksum mismatch: the content's {actual}, the archive recorded {expected}")]
    ChecksumMismatch {
        key: String,
        expected: ContentDigest,
        actual: ContentDigest,
    },
    #[error(
        "{wal} is already archived as {key} with different content \
         (archived {archived}, local {local}); the archived object was left alone"
    )]
    Conflict {
        wal: String,
        key: String,
        archived: ContentDigest,
        local: ContentDigest,
    },
    /// A base-backup archive that could not be restored: unreadable, corrupt, or its files
    /// could not be written.
    #[error("cannot restore {key}: {detail}")]
    Restore { key: String, detail: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Barman's exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::InvalidWalName(_) | Error::Usage(_) => 3,
            Error::Spool { .. } => 2,
            // "Unsupported field" in a backup.info stops Barman's tools with 1.
            Error::Catalog(CatalogError::Unreadable { .. }) => 1,
            Error::Catalog(CatalogError::Storage(_)) => 4,
            Error::Storage(_)
            | Error::ReadFile { .. }
            | Error::WriteFile { .. }
            | Error::Compress { .. }
            | Error::Decompress { .. }
            | Error::ChecksumMismatch { .. }
            | Error::Conflict { .. }
            | Error::Restore { .. }
            | Error::Internal(_) => 4,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_barman() {
        assert_eq!(Error::from(WalNameError("x".into())).exit_code(), 3);
        assert_eq!(Error::Usage("bad".into()).exit_code(), 3);
        let spool = Error::Spool {
            path: "/s".into(),
            source: io::Error::other("denied"),
        };
        assert_eq!(spool.exit_code(), 2);
        let storage = Error::Storage(StorageError::NotFound { key: "k".into() });
        assert_eq!(storage.exit_code(), 4);
    }
}

//! PostgreSQL knowledge that needs no server: WAL file names, LSNs, timelines
//! and segment arithmetic.
//!
//! Nothing here does I/O except [`session`], the tokio-postgres calls of a
//! base backup. The grammar of the names is PostgreSQL's
//! (`xlog_internal.h`), with Barman's leniency: hex digits in either case.

mod lsn;
pub mod session;
mod wal_name;

pub use lsn::{Lsn, LsnParseError};
pub use wal_name::{WalKind, WalName, WalNameError};

/// PostgreSQL's default `wal_segment_size` (16 MiB).
pub const DEFAULT_SEGMENT_SIZE: u64 = 16 * 1024 * 1024;

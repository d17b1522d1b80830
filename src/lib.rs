//! barnacle: a fast, safe WAL archiver and Barman-compatible backup tool for PostgreSQL.
//!
//! Module map (lower layers never import higher ones):
//!
//! | module     | owns                                                                 | I/O |
//! |------------|----------------------------------------------------------------------|-----|
//! | [`pg`]     | WAL file names, LSNs, timelines, segment arithmetic                  | no  |
//! | [`layout`] | Barman's object keys                                                 | no  |
//! | [`codec`]  | the six compressions by suffix, parallel single-member gzip          | no  |
//! | [`storage`]| the only code touching object stores: URL → store, conditional put, listing | yes |
//! | [`archive`]| WAL push and WAL restore, the spool                                   | yes |
//! | [`cli`]    | Barman-compatible argument shapes → validated configuration          | no  |
//!
//! Commands return outcomes and typed errors; the binary maps them to Barman's
//! exit codes ([`error::Error::exit_code`]) and logs them.

pub mod archive;
pub mod backup;
pub mod catalog;
pub mod cli;
pub mod codec;
pub mod commands;
pub mod daemon;
pub mod error;
pub mod layout;
pub mod logging;
pub mod memory;
pub mod pg;
pub mod progress;
pub mod retention;
pub mod storage;

pub use error::Error;

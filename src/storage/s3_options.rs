//! The S3 options every command takes, whether or not this build can reach
//! S3 (the `s3` cargo feature, on by default; see `storage::s3`).

use std::time::Duration;

/// `--addressing-style`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressingStyle {
    #[default]
    Auto,
    Virtual,
    Path,
}

/// `-e/--encryption` with `--sse-kms-key-id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encryption {
    Aes256,
    Kms { key_id: Option<String> },
}

/// S3 options common to every command.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    pub endpoint_url: Option<String>,
    pub profile: Option<String>,
    pub read_timeout: Option<Duration>,
    pub addressing_style: AddressingStyle,
    /// A PEM bundle of the roots to trust, in place of the system's.
    pub ca_bundle: Option<std::path::PathBuf>,
    pub encryption: Option<Encryption>,
}

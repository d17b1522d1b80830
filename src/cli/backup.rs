//! `barman-cloud-backup` and `barman-cloud-restore` argument shapes.

use std::path::PathBuf;

use clap::{ArgGroup, Parser};

use super::common::CommonArgs;
use super::tags::{check_tag, parse_csv_tag};
use crate::codec::Compression;
use crate::error::Error;
use crate::pg::session::ConnectArgs;

/// Parses Barman's size strings: `NNN[K|M|G|T|P…]B` in base 1024, the
/// `…iB` forms in base 1000 (Barman's quirk), a plain number of bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let err = || format!("'{text}' is not a valid size");
    let upper = text.trim().to_ascii_uppercase();
    let Some(body) = upper.strip_suffix('B') else {
        return upper.parse::<u64>().map_err(|_| err());
    };
    let (base, body): (f64, &str) = match body.strip_suffix('I') {
        Some(b) => (1000.0, b),
        None => (1024.0, body),
    };
    let (number, exponent) = match body.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let exp = "KMGTPEZY".find(c).ok_or_else(err)? + 1;
            (&body[..i], exp as i32)
        }
        _ => (body, 0),
    };
    let value: f64 = number.trim().parse().map_err(|_| err())?;
    if value.is_nan() || value < 0.0 {
        return Err(err());
    }
    Ok((value * base.powi(exponent)) as u64)
}

#[derive(Debug, Clone, Parser)]
#[command(version, disable_help_flag = true, disable_version_flag = true)]
#[command(group(ArgGroup::new("compression").multiple(false)))]
pub struct BackupArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// URL of the cloud destination, such as a bucket in AWS S3.
    pub destination_url: String,
    /// The name of the server as configured in Barman.
    pub server_name: String,
    /// gzip-compress the backup.
    #[arg(short = 'z', long = "gzip", group = "compression")]
    gzip: bool,
    /// bzip2-compress the backup.
    #[arg(short = 'j', long = "bzip2", group = "compression")]
    bzip2: bool,
    /// lz4-compress the backup.
    #[arg(long = "lz4", group = "compression")]
    lz4: bool,
    /// snappy-compress the backup.
    #[arg(long = "snappy", group = "compression")]
    snappy: bool,
    /// Plain tars (barnacle; the default under Barman's name).
    #[arg(long = "no-compression", group = "compression")]
    no_compression: bool,
    /// Host or Unix-domain socket directory of PostgreSQL.
    #[arg(short = 'h', long = "host")]
    pub host: Option<String>,
    /// Port of PostgreSQL.
    #[arg(short = 'p', long = "port")]
    pub port: Option<String>,
    /// User name of PostgreSQL.
    #[arg(short = 'U', long = "user")]
    pub user: Option<String>,
    /// Database name or conninfo string (default: postgres).
    #[arg(short = 'd', long = "dbname")]
    pub dbname: Option<String>,
    /// Force the checkpoint on the server to happen immediately.
    #[arg(long = "immediate-checkpoint")]
    pub immediate_checkpoint: bool,
    /// Number of parts uploaded in parallel (default 2).
    #[arg(short = 'J', long = "jobs", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: u32,
    /// Maximum size of an archive part before a new one starts (default 100GB).
    #[arg(short = 'S', long = "max-archive-size", default_value = "100GB", value_parser = parse_size)]
    pub max_archive_size: u64,
    /// Minimum size of an upload chunk (default 5MB).
    #[arg(long = "min-chunk-size", value_parser = parse_size)]
    pub min_chunk_size: Option<u64>,
    /// Bandwidth limit per archive (accepted; not enforced by barnacle).
    #[arg(long = "max-bandwidth", value_parser = parse_size)]
    pub max_bandwidth: Option<u64>,
    /// A name for the backup.
    #[arg(short = 'n', long = "name")]
    pub name: Option<String>,
    /// Tags for every uploaded object (K,V pairs).
    #[arg(long = "tags", num_args = 0.., value_parser = parse_csv_tag, conflicts_with = "tag")]
    tags: Option<Vec<(String, String)>>,
    /// A tag for every uploaded object (K,V; repeatable).
    #[arg(long = "tag", value_parser = check_tag)]
    tag: Vec<(String, String)>,
    /// Server-side encryption: AES256 or aws:kms.
    #[arg(short = 'e', long = "encryption", value_parser = ["AES256", "aws:kms"])]
    pub encryption: Option<String>,
    /// The AWS KMS key ID or ARN (requires -e aws:kms).
    #[arg(long = "sse-kms-key-id")]
    pub sse_kms_key_id: Option<String>,
    /// Compression threads (default: every core).
    #[arg(long = "threads", env = "BARNACLE_THREADS")]
    pub threads: Option<usize>,
    /// Snapshot backups are not supported by barnacle.
    #[arg(long = "snapshot-instance", hide = true)]
    pub snapshot_instance: Option<String>,
    #[arg(long = "snapshot-disk", hide = true)]
    pub snapshot_disk: Vec<String>,
}

impl BackupArgs {
    pub fn compression(&self, default_gzip: bool) -> Option<Compression> {
        if self.gzip
            || (default_gzip && !(self.bzip2 || self.lz4 || self.snappy || self.no_compression))
        {
            Some(Compression::Gzip)
        } else if self.bzip2 {
            Some(Compression::Bzip2)
        } else if self.lz4 {
            Some(Compression::Lz4)
        } else if self.snappy {
            Some(Compression::Snappy)
        } else {
            None
        }
    }

    pub fn connect_args(&self) -> ConnectArgs {
        ConnectArgs {
            host: self.host.clone(),
            port: self.port.clone(),
            user: self.user.clone(),
            dbname: self.dbname.clone(),
        }
    }

    pub fn tags(&self) -> Vec<(String, String)> {
        self.tags.clone().unwrap_or_else(|| self.tag.clone())
    }

    /// Checks what Barman checks before starting.
    pub fn validate(&self) -> Result<(), Error> {
        if self.snapshot_instance.is_some() || !self.snapshot_disk.is_empty() {
            return Err(Error::Usage(
                "snapshot backups are not supported by barnacle".into(),
            ));
        }
        if let Some(name) = &self.name {
            crate::layout::backup_id::check_backup_name(name)
                .map_err(|e| Error::Usage(e.to_string()))?;
        }
        let tags = self.tags();
        if tags.len() > 10 {
            return Err(Error::Usage("a maximum of 10 tags is allowed".into()));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Parser)]
#[command(version, disable_help_flag = true, disable_version_flag = true)]
#[command(group(ArgGroup::new("target").multiple(false)))]
pub struct RestoreArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// URL of the cloud source, such as a bucket in AWS S3.
    pub source_url: String,
    /// The name of the server as configured in Barman.
    pub server_name: String,
    /// The backup ID, a name, a shortcut (latest…) or auto.
    pub backup_id: String,
    /// The path to a directory for recovery.
    pub recovery_dir: PathBuf,
    /// Tablespace relocation rule NAME:LOCATION (repeatable).
    #[arg(long = "tablespace", value_parser = parse_tablespace_rule)]
    pub tablespace: Vec<(String, PathBuf)>,
    /// Target timeline: a number, current or latest.
    #[arg(long = "target-tli", value_parser = parse_tli)]
    pub target_tli: Option<String>,
    /// Target LSN.
    #[arg(long = "target-lsn", group = "target")]
    pub target_lsn: Option<String>,
    /// Target time.
    #[arg(long = "target-time", group = "target")]
    pub target_time: Option<String>,
    /// Also write the recovery settings (restore_command using barnacle,
    /// recovery targets, recovery.signal) so the directory recovers as it is.
    #[arg(long = "recovery-conf")]
    pub recovery_conf: bool,
    /// Parts downloaded and extracted in parallel (default 2).
    #[arg(short = 'J', long = "jobs", default_value_t = 2)]
    pub jobs: usize,
    /// Snapshot recovery is not supported by barnacle.
    #[arg(long = "snapshot-recovery-instance", hide = true)]
    pub snapshot_recovery_instance: Option<String>,
}

fn parse_tablespace_rule(rule: &str) -> Result<(String, PathBuf), String> {
    match rule.split_once(':') {
        Some((name, loc)) if !name.is_empty() && !loc.is_empty() => {
            Ok((name.to_string(), PathBuf::from(loc)))
        }
        _ => Err(format!("Invalid tablespace relocation rule '{rule}'")),
    }
}

fn parse_tli(text: &str) -> Result<String, String> {
    match text {
        "current" | "latest" => Ok(text.to_string()),
        n if n.parse::<u32>().is_ok_and(|n| n > 0) => Ok(text.to_string()),
        _ => Err(format!(
            "'{text}' is not a valid timeline (a positive number, current or latest)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_barman() {
        assert_eq!(parse_size("100GB"), Ok(100 * 1024 * 1024 * 1024));
        assert_eq!(parse_size("5MB"), Ok(5 * 1024 * 1024));
        assert_eq!(parse_size("5MiB"), Ok(5_000_000));
        assert_eq!(parse_size("1.5KB"), Ok(1536));
        assert_eq!(parse_size("12345"), Ok(12345));
        assert_eq!(parse_size("10b"), Ok(10));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5XB").is_err());
    }

    #[test]
    fn restore_rules_and_targets() {
        assert_eq!(
            parse_tablespace_rule("ts1:/new/loc"),
            Ok(("ts1".into(), PathBuf::from("/new/loc")))
        );
        assert!(parse_tablespace_rule("nocolon").is_err());
        assert!(parse_tli("latest").is_ok() && parse_tli("3").is_ok());
        assert!(parse_tli("0").is_err() && parse_tli("x").is_err());
    }
}

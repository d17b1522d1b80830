//! Options every barman-cloud command takes (spec §11), plus barnacle's own
//! `--ca-bundle` and `--log-format`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args};

use crate::error::Error;
use crate::logging::LogFormat;
use crate::storage::{AddressingStyle, Encryption, S3Options, StoreConfig, StoreUrl};

#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Show the version and exit.
    #[arg(short = 'V', long = "version", action = ArgAction::Version)]
    version: Option<bool>,
    /// Show this help message and exit.
    #[arg(long = "help", action = ArgAction::Help)]
    help: Option<bool>,
    /// Increase output verbosity (-vv is more than -v).
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Decrease output verbosity (-qq is less than -q).
    #[arg(short = 'q', long = "quiet", action = ArgAction::Count)]
    pub quiet: u8,
    /// Test cloud connectivity and exit.
    #[arg(short = 't', long = "test")]
    pub test: bool,
    /// The cloud provider to use as a storage backend (barnacle supports aws-s3).
    #[arg(long = "cloud-provider", default_value = "aws-s3",
          value_parser = ["aws-s3", "azure-blob-storage", "google-cloud-storage"])]
    pub cloud_provider: String,
    /// Override the default S3 endpoint URL (S3-compatible stores: Ceph RGW, MinIO…).
    #[arg(long = "endpoint-url")]
    pub endpoint_url: Option<String>,
    /// Profile name (an INI section of the AWS credentials file).
    #[arg(short = 'P', long = "aws-profile", visible_alias = "profile")]
    pub aws_profile: Option<String>,
    /// Seconds to wait for data from the store before giving up (default 60).
    #[arg(long = "read-timeout", env = "BARNACLE_READ_TIMEOUT")]
    pub read_timeout: Option<u64>,
    /// The addressing style of S3 requests.
    #[arg(long = "addressing-style", env = "BARNACLE_ADDRESSING_STYLE", value_parser = ["auto", "virtual", "path"])]
    pub addressing_style: Option<String>,
    /// Azure credential type (accepted for compatibility; Azure is not supported).
    #[arg(long = "azure-credential", visible_aliases = ["credential", "default"],
          value_parser = ["azure-cli", "managed-identity", "default"])]
    pub azure_credential: Option<String>,
    /// PEM file of the CA certificates to trust for HTTPS endpoints, instead of the system's (as boto3 reads AWS_CA_BUNDLE)
    #[arg(long = "ca-bundle", env = "AWS_CA_BUNDLE", value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,
    /// Log format on stderr: text (Barman's) or json (one object per line).
    #[arg(
        long = "log-format",
        env = "BARNACLE_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

impl CommonArgs {
    /// `-v` count minus `-q` count.
    pub fn verbosity(&self) -> i8 {
        self.verbose.min(10) as i8 - self.quiet.min(10) as i8
    }

    /// The store configuration for `url`.
    pub fn store_config(
        &self,
        url: &str,
        encryption: Option<Encryption>,
    ) -> Result<StoreConfig, Error> {
        if self.cloud_provider != "aws-s3" {
            return Err(Error::Usage(format!(
                "cloud provider {} is not supported by barnacle (use aws-s3: any S3-compatible store)",
                self.cloud_provider
            )));
        }
        let url = StoreUrl::parse(url)?;
        let addressing_style = match self.addressing_style.as_deref() {
            Some("virtual") => AddressingStyle::Virtual,
            Some("path") => AddressingStyle::Path,
            _ => AddressingStyle::Auto,
        };
        Ok(StoreConfig {
            url,
            s3: S3Options {
                endpoint_url: self.endpoint_url.clone(),
                profile: self.aws_profile.clone(),
                read_timeout: self.read_timeout.map(Duration::from_secs),
                addressing_style,
                ca_bundle: self.ca_bundle.clone(),
                encryption,
            },
        })
    }
}

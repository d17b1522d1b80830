//! Command lines: Barman-compatible argument shapes turned into validated
//! configuration, in one place (ripgrep's split between flags and policy).
//!
//! One binary answers to several names (argv[0]):
//!
//! | name                               | does                                   | defaults                 |
//! |------------------------------------|----------------------------------------|--------------------------|
//! | `barnacle SUBCOMMAND`              | everything                             | gzip for `wal-push`, `backup` |
//! | `walpush`                          | `barnacle wal-push`                    | gzip                     |
//! | `restore`                          | `barnacle wal-restore`                 |                          |
//! | `barman-cloud-wal-archive`         | `barnacle wal-push`, Barman's defaults | no flag = uncompressed   |
//! | `barman-cloud-wal-restore`         | `barnacle wal-restore`                 |                          |
//! | `barman-cloud-backup`              | `barnacle backup`, Barman's defaults   | no flag = uncompressed   |
//! | `barman-cloud-restore`             | `barnacle restore`                     |                          |
//! | `barman-cloud-backup-list`/`-show`/`-keep`, `barman-cloud-check-wal-archive` | `barnacle list`/`show`/`keep`/`check-wal-archive` | |
//!
//! Under a Barman name, `--version` prints Barman's version string
//! (`barman-cloud-wal-archive 3.19.1`): CloudNativePG parses it to learn which
//! options the tools accept.

mod backup;
mod catalog;
mod common;
mod delete;
mod sidecar;
mod tags;
mod wal;

use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

pub use backup::{BackupArgs, RestoreArgs, parse_size};
pub use catalog::{CheckWalArchiveArgs, KeepArgs, ListArgs, ShowArgs, StatusArgs};
pub use common::CommonArgs;
pub use delete::{DeleteArgs, PruneArgs};
pub use sidecar::SidecarArgs;
pub use wal::{WALPUSH_DEFAULT_GZIP_LEVEL, WalArchiveArgs, WalRestoreArgs};

/// The Barman release whose command lines barnacle accepts.
pub const BARMAN_VERSION: &str = "3.19.1";

/// Which program argv[0] asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    Barnacle,
    WalPush,
    Restore,
    BarmanWalArchive,
    BarmanWalRestore,
    BarmanBackup,
    BarmanRestore,
    BarmanList,
    BarmanShow,
    BarmanKeep,
    BarmanCheckWalArchive,
    BarmanDelete,
}

impl Program {
    /// Recognises a program from argv[0]'s file name; anything else is `barnacle`.
    pub fn from_argv0(argv0: &str) -> Program {
        let name = argv0.rsplit('/').next().unwrap_or(argv0);
        match name {
            "walpush" => Program::WalPush,
            "restore" => Program::Restore,
            "barman-cloud-wal-archive" => Program::BarmanWalArchive,
            "barman-cloud-wal-restore" => Program::BarmanWalRestore,
            "barman-cloud-backup" => Program::BarmanBackup,
            "barman-cloud-restore" => Program::BarmanRestore,
            "barman-cloud-backup-list" => Program::BarmanList,
            "barman-cloud-backup-show" => Program::BarmanShow,
            "barman-cloud-backup-keep" => Program::BarmanKeep,
            "barman-cloud-check-wal-archive" => Program::BarmanCheckWalArchive,
            "barman-cloud-backup-delete" => Program::BarmanDelete,
            _ => Program::Barnacle,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Program::Barnacle => "barnacle",
            Program::WalPush => "walpush",
            Program::Restore => "restore",
            Program::BarmanWalArchive => "barman-cloud-wal-archive",
            Program::BarmanWalRestore => "barman-cloud-wal-restore",
            Program::BarmanBackup => "barman-cloud-backup",
            Program::BarmanRestore => "barman-cloud-restore",
            Program::BarmanList => "barman-cloud-backup-list",
            Program::BarmanShow => "barman-cloud-backup-show",
            Program::BarmanKeep => "barman-cloud-backup-keep",
            Program::BarmanCheckWalArchive => "barman-cloud-check-wal-archive",
            Program::BarmanDelete => "barman-cloud-backup-delete",
        }
    }

    fn version(self) -> &'static str {
        match self {
            Program::Barnacle | Program::WalPush | Program::Restore => env!("CARGO_PKG_VERSION"),
            _ => BARMAN_VERSION,
        }
    }
}

/// `barnacle`'s subcommands.
#[derive(Debug, Parser)]
#[command(
    name = "barnacle",
    version,
    propagate_version = true,
    disable_help_subcommand = true
)]
struct BarnacleArgs {
    #[command(subcommand)]
    command: BarnacleCommand,
}

#[derive(Debug, Subcommand)]
enum BarnacleCommand {
    /// Push one WAL file to the archive (archive_command); gzip by default.
    WalPush(Box<WalArchiveArgs>),
    /// Restore one WAL file from the archive (restore_command).
    WalRestore(Box<WalRestoreArgs>),
    /// Take an online base backup (barman-cloud-backup); gzip by default.
    Backup(Box<BackupArgs>),
    /// Restore a base backup into an empty directory (barman-cloud-restore).
    Restore(Box<RestoreArgs>),
    /// List the backups of a server (barman-cloud-backup-list).
    List(Box<ListArgs>),
    /// Show one backup (barman-cloud-backup-show).
    Show(Box<ShowArgs>),
    /// Keep a backup, release it, or show its keep status (barman-cloud-backup-keep).
    Keep(Box<KeepArgs>),
    /// Check that a WAL archive is usable for a new cluster (barman-cloud-check-wal-archive).
    CheckWalArchive(Box<CheckWalArchiveArgs>),
    /// What CloudNativePG shows: first recoverability point, last successful backup.
    Status(Box<StatusArgs>),
    /// Delete one backup, or every backup a retention policy makes obsolete (barman-cloud-backup-delete).
    Delete(Box<DeleteArgs>),
    /// Apply a retention policy and print one summary line (for cron).
    Prune(Box<PruneArgs>),
    /// Run beside PostgreSQL: push WAL ahead, scheduled backups and retention, metrics.
    Sidecar(Box<SidecarArgs>),
}

/// A parsed command line.
#[derive(Debug)]
pub enum Invocation {
    /// Push a WAL; `default_gzip` is true under barnacle's own names.
    WalPush {
        args: Box<WalArchiveArgs>,
        default_gzip: bool,
    },
    WalRestore {
        args: Box<WalRestoreArgs>,
    },
    Backup {
        args: Box<BackupArgs>,
        default_gzip: bool,
    },
    Restore {
        args: Box<RestoreArgs>,
    },
    List {
        args: Box<ListArgs>,
    },
    Show {
        args: Box<ShowArgs>,
    },
    Keep {
        args: Box<KeepArgs>,
    },
    CheckWalArchive {
        args: Box<CheckWalArchiveArgs>,
    },
    Status {
        args: Box<StatusArgs>,
    },
    Sidecar {
        args: Box<SidecarArgs>,
    },
    Delete {
        args: Box<DeleteArgs>,
    },
    Prune {
        args: Box<PruneArgs>,
    },
}

impl Invocation {
    /// The options every command shares.
    pub fn common(&self) -> &CommonArgs {
        match self {
            Invocation::WalPush { args, .. } => &args.common,
            Invocation::WalRestore { args } => &args.common,
            Invocation::Backup { args, .. } => &args.common,
            Invocation::Restore { args } => &args.common,
            Invocation::List { args } => &args.common,
            Invocation::Show { args } => &args.common,
            Invocation::Keep { args } => &args.common,
            Invocation::CheckWalArchive { args } => &args.common,
            Invocation::Status { args } => &args.common,
            Invocation::Sidecar { args } => &args.common,
            Invocation::Delete { args } => &args.common,
            Invocation::Prune { args } => &args.common,
        }
    }
}

/// A command line that did not parse: `--help`/`--version` output (exit 0) or
/// a usage error (exit 3).
#[derive(Debug)]
pub struct ParseFailure {
    pub exit_code: u8,
    pub message: String,
}

fn parse_with<T: FromArgMatches + CommandFactory>(
    program: Program,
    args: impl IntoIterator<Item = OsString>,
) -> Result<T, ParseFailure> {
    let command = T::command()
        .name(program.name())
        .bin_name(program.name())
        .version(program.version());
    let failure = |e: clap::Error| match e.kind() {
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
            ParseFailure {
                exit_code: 0,
                message: e.to_string(),
            }
        }
        _ => {
            // One line: clap's first line, without its "error: " prefix.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            ParseFailure {
                exit_code: 3,
                message: first.trim_start_matches("error: ").to_string(),
            }
        }
    };
    let matches = command.try_get_matches_from(args).map_err(failure)?;
    T::from_arg_matches(&matches).map_err(failure)
}

/// Parses a whole command line, argv[0] included.
pub fn parse(argv: Vec<OsString>) -> Result<Invocation, ParseFailure> {
    let argv0 = argv
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    let program = Program::from_argv0(&argv0);
    match program {
        Program::WalPush => Ok(Invocation::WalPush {
            args: Box::new(parse_with(program, argv)?),
            default_gzip: true,
        }),
        Program::BarmanWalArchive => Ok(Invocation::WalPush {
            args: Box::new(parse_with(program, argv)?),
            default_gzip: false,
        }),
        Program::Restore | Program::BarmanWalRestore => Ok(Invocation::WalRestore {
            args: Box::new(parse_with(program, argv)?),
        }),
        Program::BarmanBackup => Ok(Invocation::Backup {
            args: Box::new(parse_with(program, argv)?),
            default_gzip: false,
        }),
        Program::BarmanRestore => Ok(Invocation::Restore {
            args: Box::new(parse_with(program, argv)?),
        }),
        Program::BarmanDelete => Ok(Invocation::Delete {
            args: Box::new(parse_with(program, argv)?),
        }),
        Program::BarmanList => Ok(Invocation::List {
            args: Box::new(parse_with(program, argv)?),
        }),
        Program::BarmanShow => Ok(Invocation::Show {
            args: Box::new(parse_with(program, argv)?),
        }),
        Program::BarmanKeep => Ok(Invocation::Keep {
            args: Box::new(parse_with(program, argv)?),
        }),
        Program::BarmanCheckWalArchive => Ok(Invocation::CheckWalArchive {
            args: Box::new(parse_with(program, argv)?),
        }),
        Program::Barnacle => {
            let parsed: BarnacleArgs = parse_with(program, argv)?;
            Ok(match parsed.command {
                BarnacleCommand::WalPush(args) => Invocation::WalPush {
                    args,
                    default_gzip: true,
                },
                BarnacleCommand::WalRestore(args) => Invocation::WalRestore { args },
                BarnacleCommand::Backup(args) => Invocation::Backup {
                    args,
                    default_gzip: true,
                },
                BarnacleCommand::Restore(args) => Invocation::Restore { args },
                BarnacleCommand::List(args) => Invocation::List { args },
                BarnacleCommand::Show(args) => Invocation::Show { args },
                BarnacleCommand::Keep(args) => Invocation::Keep { args },
                BarnacleCommand::CheckWalArchive(args) => Invocation::CheckWalArchive { args },
                BarnacleCommand::Status(args) => Invocation::Status { args },
                BarnacleCommand::Sidecar(args) => Invocation::Sidecar { args },
                BarnacleCommand::Delete(args) => Invocation::Delete { args },
                BarnacleCommand::Prune(args) => Invocation::Prune { args },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<OsString> {
        line.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn every_command_line_definition_is_consistent() {
        BarnacleArgs::command().debug_assert();
        WalArchiveArgs::command().debug_assert();
        WalRestoreArgs::command().debug_assert();
        BackupArgs::command().debug_assert();
        RestoreArgs::command().debug_assert();
    }

    #[test]
    fn every_subcommand_parses() {
        for line in [
            "barnacle wal-push s3://b srv f",
            "barnacle wal-restore s3://b srv 000000010000000000000001 /d",
            "barnacle backup --gzip s3://b srv",
            "barnacle restore --recovery-conf s3://b srv auto /d",
            "barnacle list s3://b srv",
            "barnacle show s3://b srv latest",
            "barnacle keep -s s3://b srv latest",
            "barnacle check-wal-archive --timeline 2 s3://b srv",
            "barnacle status --format json s3://b srv",
            "barnacle sidecar --pgdata /pg --backup-compression lz4 s3://b srv",
            "barnacle delete -r 30d --dry-run s3://b srv",
            "barnacle prune -r 4w s3://b srv",
            "barman-cloud-backup-delete -b latest -m 1 s3://b srv",
        ] {
            assert!(parse(argv(line)).is_ok(), "{line}");
        }
    }

    #[test]
    fn argv0_selects_the_program() {
        assert_eq!(Program::from_argv0("/usr/bin/walpush"), Program::WalPush);
        assert_eq!(
            Program::from_argv0("barman-cloud-wal-restore"),
            Program::BarmanWalRestore
        );
        assert_eq!(Program::from_argv0("/x/barnacle"), Program::Barnacle);
    }

    #[test]
    fn barman_name_means_no_compression_by_default() {
        let inv = parse(argv(
            "barman-cloud-wal-archive s3://b/p srv /pg_wal/000000010000000000000001",
        ))
        .unwrap();
        assert!(matches!(
            inv,
            Invocation::WalPush {
                default_gzip: false,
                ..
            }
        ));
        let inv = parse(argv(
            "walpush s3://b/p srv /pg_wal/000000010000000000000001",
        ))
        .unwrap();
        assert!(matches!(
            inv,
            Invocation::WalPush {
                default_gzip: true,
                ..
            }
        ));
        let inv = parse(argv("barnacle wal-push s3://b/p srv x")).unwrap();
        assert!(matches!(
            inv,
            Invocation::WalPush {
                default_gzip: true,
                ..
            }
        ));
    }

    #[test]
    fn usage_errors_exit_3_on_one_line() {
        for line in [
            "barman-cloud-wal-archive",
            "barman-cloud-wal-archive -z -j s3://b srv f",
            "barman-cloud-wal-archive --bogus s3://b srv f",
            "barman-cloud-wal-restore s3://b srv f",
            "barman-cloud-wal-archive -v -q s3://b srv f",
            "barman-cloud-wal-archive --compression-level fast -z s3://b srv f",
            "barman-cloud-wal-archive --tag noval s3://b srv f",
        ] {
            let err = parse(argv(line)).unwrap_err();
            assert_eq!(err.exit_code, 3, "{line}: {}", err.message);
            assert!(!err.message.contains('\n'), "{line}: {}", err.message);
        }
    }

    #[test]
    fn version_answers_like_barman_under_barman_names() {
        let out = parse(argv("barman-cloud-wal-archive --version")).unwrap_err();
        assert_eq!(
            (out.exit_code, out.message.trim()),
            (0, "barman-cloud-wal-archive 3.19.1")
        );
        let out = parse(argv("barman-cloud-wal-restore -V")).unwrap_err();
        assert_eq!(out.message.trim(), "barman-cloud-wal-restore 3.19.1");
    }
}

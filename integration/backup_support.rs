//! Helpers for the base-backup tests: a cluster archiving through walpush,
//! backups by either tool, restores by either tool, and a recovered cluster.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::harness::{self, PgCluster};
use crate::support::{Archive, run};

/// A primary archiving its WAL into `archive` with walpush, with a
/// tablespace `ts1` holding the table `in_ts1` (50 000 rows).
pub struct Primary {
    pub pg: PgCluster,
}

pub fn primary(archive: &Archive, name: &str, scale: u32) -> Primary {
    let dir = harness::scratch(name);
    let pg = archive.archiving_cluster(&dir.join("pg"));
    let tablespace = dir.join("ts1");
    fs::create_dir(&tablespace).expect("create tablespace dir");
    harness::chown_postgres(&tablespace);
    pg.psql(&format!(
        "create tablespace ts1 location '{}'",
        tablespace.display()
    ));
    pg.pgbench(&["-i", "-s", &scale.to_string(), "-q"]);
    pg.psql("create table in_ts1 tablespace ts1 as select generate_series(1, 50000) as i");
    Primary { pg }
}

/// The connection options for a backup of `pg`.
pub fn connection(pg: &PgCluster) -> Vec<String> {
    vec![
        "--immediate-checkpoint".into(),
        "-h".into(),
        pg.run_dir().display().to_string(),
        "-p".into(),
        pg.port().to_string(),
        "-U".into(),
        "postgres".into(),
    ]
}

/// `tool` (barnacle's or Barman's `barman-cloud-backup`) with `flags`.
pub fn backup_command(
    archive: &Archive,
    barnacle: bool,
    pg: &PgCluster,
    flags: &[&str],
) -> Command {
    let conn = connection(pg);
    let mut args: Vec<&str> = conn.iter().map(String::as_str).collect();
    args.extend_from_slice(flags);
    if barnacle {
        archive.barnacle("barman-cloud-backup", &args)
    } else {
        archive.barman("barman-cloud-backup", &args)
    }
}

/// The id of the newest backup (from barnacle's JSON list).
pub fn newest_backup_id(archive: &Archive) -> String {
    let out =
        run(&mut archive.barnacle("barman-cloud-backup-list", &["--format", "json"])).ok("list");
    let ids: Vec<String> = out
        .stdout
        .split("\"backup_id\": \"")
        .skip(1)
        .filter_map(|s| s.split('"').next().map(str::to_string))
        .collect();
    ids.into_iter().max().expect("a backup in the list")
}

/// Records a committed row, then a recovery target time strictly after it,
/// then a second committed row after that time.
pub fn two_transactions_around_a_target(pg: &PgCluster) -> String {
    pg.psql("create table pitr_marker (x int)");
    pg.psql("insert into pitr_marker values (1)");
    std::thread::sleep(Duration::from_millis(1100));
    let target = pg.psql("select now()::text");
    std::thread::sleep(Duration::from_millis(1100));
    pg.psql("insert into pitr_marker values (2)");
    let last = pg.switch_wal();
    pg.wait_archived(&last, Duration::from_secs(90));
    target
}

/// Starts a restored data directory in recovery to `target` (already
/// configured when `restore_command` is `None`) and checks that exactly the
/// first transaction is there.
pub fn recover_and_check(
    archive: &Archive,
    data: &Path,
    tablespace: Option<&Path>,
    restore_command: Option<String>,
    target: Option<&str>,
) -> PgCluster {
    if let Some(ts) = tablespace {
        harness::run_ok(
            Command::new("chown")
                .arg("-R")
                .arg("postgres:postgres")
                .arg(ts),
        );
    }
    if restore_command.is_some() {
        fs::write(data.join("recovery.signal"), b"").expect("recovery.signal");
    }
    let pg = PgCluster::from_data_dir(data, |c| {
        c.set("archive_mode", "off").envs(archive.s3.barman_env());
        if let Some(cmd) = &restore_command {
            c.set("restore_command", cmd);
        }
        if let (Some(t), Some(_)) = (target, &restore_command) {
            c.set("recovery_target_time", t)
                .set("recovery_target_action", "promote");
        }
    });
    let promoted = harness::poll(Duration::from_secs(120), Duration::from_millis(200), || {
        (pg.try_psql("select pg_is_in_recovery()").ok()? == "f").then_some(())
    });
    assert!(
        promoted.is_some(),
        "recovery did not finish\n{}",
        harness::log_tail(&pg.log_file(), 40)
    );
    pg
}

/// `barman-cloud-wal-restore` as a restore_command line.
pub fn barman_restore_command(archive: &Archive) -> String {
    format!(
        "{} --endpoint-url {} {} {} %f %p",
        harness::venv_dir()
            .join("bin/barman-cloud-wal-restore")
            .display(),
        archive.s3.endpoint(),
        archive.url(),
        archive.server
    )
}

//! Point-in-time recovery both ways: a backup taken under pgbench load by one
//! tool, restored by the other, and recovered by the other's
//! `restore_command` to a time between two committed transactions: the first
//! transaction's row is there, the second's is not.

use std::process::Stdio;

use crate::backup_support::*;
use crate::harness::{self, S3Kind};
use crate::support::{Archive, run, same_output};

#[test]
fn barnacle_backup_restored_and_recovered_by_barman() {
    let archive = Archive::new(S3Kind::SeaweedHttps, "pitrbarnacle");
    let primary = primary(&archive, "pitr-a", 3);
    let mut load = primary
        .pg
        .pg_command("pgbench")
        .args(["-c", "2", "-T", "8", "postgres"])
        .stdout(Stdio::null())
        .spawn()
        .expect("start pgbench");
    // gzip, a tablespace, and parts of at most 1 MB.
    run(&mut backup_command(
        &archive,
        true,
        &primary.pg,
        &["--gzip", "-S", "1MB", "-n", "under-load"],
    ))
    .ok("barnacle backup");
    assert!(load.wait().expect("pgbench").success());
    let id = newest_backup_id(&archive);
    let keys = archive.keys();
    let parts = keys
        .iter()
        .filter(|k| k.contains(&format!("base/{id}/data_")))
        .count();
    assert!(parts >= 2, "no split parts: {keys:?}");
    assert!(
        keys.iter()
            .any(|k| k.ends_with(".tar.gz") && !k.contains("/data")),
        "no tablespace archive: {keys:?}"
    );

    // Barman sees it exactly as barnacle shows it.
    for format in ["console", "json"] {
        same_output(
            &archive,
            "barman-cloud-backup-list",
            &["--format", format],
            &[],
            0,
        );
        same_output(
            &archive,
            "barman-cloud-backup-show",
            &["--format", format],
            &["under-load"],
            0,
        );
    }

    let target = two_transactions_around_a_target(&primary.pg);
    let dest = harness::scratch("pitr-a-restore");
    let data = dest.join("data");
    let ts = dest.join("ts1-moved");
    run(archive
        .barman(
            "barman-cloud-restore",
            &["--tablespace", &format!("ts1:{}", ts.display())],
        )
        .arg(&id)
        .arg(&data))
    .ok("barman-cloud-restore");
    let pg = recover_and_check(
        &archive,
        &data,
        Some(&ts),
        Some(barman_restore_command(&archive)),
        Some(&target),
    );
    assert_eq!(
        pg.psql("select array_agg(x order by x) from pitr_marker"),
        "{1}"
    );
    assert_eq!(pg.psql("select count(*) from in_ts1"), "50000");
}

#[test]
fn barman_backup_restored_and_recovered_by_barnacle() {
    let archive = Archive::new(S3Kind::CephHttps, "pitrbarman");
    let primary = primary(&archive, "pitr-b", 3);
    let mut load = primary
        .pg
        .pg_command("pgbench")
        .args(["-c", "2", "-T", "8", "postgres"])
        .stdout(Stdio::null())
        .spawn()
        .expect("start pgbench");
    run(&mut backup_command(
        &archive,
        false,
        &primary.pg,
        &["--gzip", "-S", "1MB"],
    ))
    .ok("barman-cloud-backup");
    assert!(load.wait().expect("pgbench").success());
    let target = two_transactions_around_a_target(&primary.pg);

    // barnacle restore picks the backup itself (auto, before the target) and
    // writes the recovery settings with its own restore_command.
    let dest = harness::scratch("pitr-b-restore");
    let data = dest.join("data");
    let ts = dest.join("ts1-moved");
    run(archive
        .barnacle(
            "barman-cloud-restore",
            &[
                "--recovery-conf",
                "--target-time",
                &target,
                "--tablespace",
                &format!("ts1:{}", ts.display()),
            ],
        )
        .arg("auto")
        .arg(&data))
    .ok("barnacle restore");
    let conf = std::fs::read_to_string(data.join("postgresql.auto.conf")).expect("auto.conf");
    assert!(
        conf.contains("restore_command = ") && conf.contains("wal-restore"),
        "{conf}"
    );
    let pg = recover_and_check(&archive, &data, Some(&ts), None, None);
    assert_eq!(
        pg.psql("select array_agg(x order by x) from pitr_marker"),
        "{1}"
    );
    assert_eq!(pg.psql("select count(*) from in_ts1"), "50000");
}

//! Retention never deletes what a recovery inside the window needs. One
//! archive holds the synthetic 100-day history (timelines 1 to 3, WAL below
//! log 0x20) and, above it, a real PostgreSQL 15 cluster archiving with
//! walpush whose WAL starts at `000000010000002000000000` (`pg_resetwal -l`
//! before its first start), with two real `barnacle backup`s and two
//! transactions around a target time. Both tools' dry runs agree on it; then
//! barnacle deletes by `RECOVERY WINDOW OF 30 DAYS`, Barman's and barnacle's
//! lists agree, Barman finds nothing more to delete, and the oldest real
//! backup, restored and recovered to the target on its own timeline
//! (`recovery_target_timeline = 'current'`: the synthetic `.history` files of
//! timelines 2 and 3 are not its own), has the first transaction's row and
//! not the second's.

use std::time::Duration;

use chrono::Local;

use crate::backup_support::{backup_command, newest_backup_id, two_transactions_around_a_target};
use crate::harness::{self, PgCluster, S3Kind};
use crate::retention_support::*;
use crate::support::{Archive, run, same_output};

#[test]
fn delete_by_window_keeps_what_a_point_in_time_recovery_needs() {
    let archive = Archive::new(S3Kind::SeaweedHttp, "retention-pitr");
    let now = Local::now();
    let dir = harness::scratch("retention-pitr");
    let archive_command = format!(
        "{} {} {} %p",
        archive.command_line("walpush", ""),
        archive.url(),
        archive.server
    );
    let (synthetic, pg) = std::thread::scope(|s| {
        let seeding = s.spawn(|| seed(&archive, now, 42));
        let pg = cluster_starting_at(&dir.join("pg"), "000000010000002000000000", |c| {
            c.set("archive_mode", "on")
                .set("archive_command", &archive_command)
                .envs(archive.s3.env());
        });
        (seeding.join().expect("seeding thread"), pg)
    });
    let first = pg.psql("select pg_walfile_name(pg_current_wal_lsn())");
    assert!(
        first.starts_with("0000000100000020"),
        "the real WAL does not start above the synthetic one: {first}"
    );

    // Two real backups, then the transactions around the target.
    pg.pgbench(&["-i", "-s", "1", "-q"]);
    run(&mut backup_command(&archive, true, &pg, &[])).ok("first barnacle backup");
    let oldest_real = newest_backup_id(&archive);
    assert!(
        synthetic.backups.iter().all(|b| b.id < oldest_real),
        "the real backup {oldest_real} sorts before a synthetic one"
    );
    std::thread::sleep(Duration::from_millis(1100));
    pg.pgbench(&["-c", "1", "-T", "1"]);
    run(&mut backup_command(&archive, true, &pg, &[])).ok("second barnacle backup");
    let target = two_transactions_around_a_target(&pg);

    // Both tools plan the same deletions on the mixed archive.
    let runs = same_deletes(
        &archive,
        &[
            (vec!["--dry-run", "-r", WINDOW], 0),
            (vec!["--dry-run", "-r", "REDUNDANCY 2"], 0),
        ],
        2,
    );
    let planned = dry_run_ids(&runs[0].stdout);
    assert!(planned.len() >= 20, "{}", runs[0].stdout);
    assert!(planned.iter().all(|id| *id < oldest_real));

    // The real delete, then both lists agree and nothing is left to delete.
    run(&mut archive.barnacle("barman-cloud-backup-delete", &["-r", WINDOW])).ok("delete");
    let keys = archive.keys();
    for id in &planned {
        assert!(
            !keys
                .iter()
                .any(|k| k.contains(&format!("/base/{id}/")) && !k.ends_with("/annotations/keep")),
            "{id} is still there"
        );
    }
    for format in ["console", "json"] {
        same_output(
            &archive,
            "barman-cloud-backup-list",
            &["--format", format],
            &[],
            0,
        );
    }
    let again = same_delete(&archive, &["--dry-run", "-r", WINDOW], 0);
    assert_eq!(again.stdout, "", "a second delete would delete more");

    // The oldest real backup, recovered to the target.
    let dest = harness::scratch("retention-pitr-restore").join("data");
    run(archive
        .barnacle("barman-cloud-restore", &[])
        .arg(&oldest_real)
        .arg(&dest))
    .ok("barnacle restore");
    std::fs::write(dest.join("recovery.signal"), b"").expect("recovery.signal");
    let restore_command = format!(
        "{} {} {} %f %p",
        archive.command_line("barman-cloud-wal-restore", ""),
        archive.url(),
        archive.server
    );
    drop(pg);
    let recovered = PgCluster::from_data_dir(&dest, |c| {
        c.set("archive_mode", "off")
            .set("restore_command", &restore_command)
            .set("recovery_target_time", &target)
            .set("recovery_target_timeline", "current")
            .set("recovery_target_action", "promote")
            .envs(archive.s3.env());
    });
    let promoted = harness::poll(Duration::from_secs(120), Duration::from_millis(200), || {
        (recovered.try_psql("select pg_is_in_recovery()").ok()? == "f").then_some(())
    });
    assert!(
        promoted.is_some(),
        "recovery did not finish\n{}",
        harness::log_tail(&recovered.log_file(), 40)
    );
    assert_eq!(
        recovered.psql("select array_agg(x order by x) from pitr_marker"),
        "{1}",
        "{}",
        harness::log_tail(&recovered.log_file(), 40)
    );
    // Promoted past the synthetic timelines 2 and 3.
    let wal = recovered.psql("select pg_walfile_name(pg_current_wal_lsn())");
    assert!(
        wal.starts_with("00000004"),
        "{wal}\n{}",
        harness::log_tail(&recovered.log_file(), 40)
    );
}

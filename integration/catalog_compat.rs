//! The catalogue commands against Barman's own, on the same bucket: backups
//! taken by `barman-cloud-backup` from a real PostgreSQL 15, then `list` and
//! `show` (console and JSON) must print exactly what Barman prints, `keep`
//! set by either tool must be seen by the other, and `check-wal-archive`
//! (with and without `--timeline`) must return Barman's exit codes.

use std::time::Duration;

use crate::harness::{self, S3Kind};
use crate::support::{Archive, run, same_output};

#[test]
fn list_show_keep_and_check_agree_with_barman() {
    let archive = Archive::new(S3Kind::SeaweedHttp, "catalog");
    let dir = harness::scratch("catalog");

    // An empty archive passes the check in both tools.
    same_output(&archive, "barman-cloud-check-wal-archive", &[], &[], 0);

    let pg = archive.archiving_cluster(&dir.join("pg"));
    pg.pgbench(&["-i", "-s", "1", "-q"]);
    let backup = |name: Option<&str>| {
        let mut cmd = archive.barman(
            "barman-cloud-backup",
            &[
                "--gzip",
                "--immediate-checkpoint",
                "-h",
                &pg.run_dir().display().to_string(),
                "-p",
                &pg.port().to_string(),
                "-U",
                "postgres",
            ],
        );
        if let Some(n) = name {
            cmd.args(["-n", n]);
        }
        harness::as_postgres(&mut cmd);
        cmd.env("HOME", pg.run_dir());
        run(&mut cmd).ok("barman-cloud-backup");
    };
    backup(Some("first-backup"));
    // Backup ids are the client's local time to the second.
    std::thread::sleep(Duration::from_millis(1100));
    pg.pgbench(&["-c", "1", "-T", "1"]);
    backup(None);
    let last = pg.switch_wal();
    pg.wait_archived(&last, Duration::from_secs(60));

    for format in [&["--format", "console"][..], &["--format", "json"][..]] {
        same_output(&archive, "barman-cloud-backup-list", format, &[], 0);
        for id in ["first-backup", "latest", "oldest", "first", "last"] {
            same_output(&archive, "barman-cloud-backup-show", format, &[id], 0);
        }
    }
    // Unknown backups: the same exit code (4) and nothing on stdout.
    same_output(
        &archive,
        "barman-cloud-backup-show",
        &[],
        &["no-such-name"],
        4,
    );

    // Keep, set by one tool, seen by the other.
    run(archive
        .barnacle("barman-cloud-backup-keep", &["--target", "standalone"])
        .arg("first-backup"))
    .ok("keep");
    same_output(
        &archive,
        "barman-cloud-backup-keep",
        &["-s"],
        &["first-backup"],
        0,
    );
    run(archive
        .barman("barman-cloud-backup-keep", &["--target", "full"])
        .arg("latest"))
    .ok("barman keep");
    same_output(
        &archive,
        "barman-cloud-backup-keep",
        &["-s"],
        &["latest"],
        0,
    );
    same_output(&archive, "barman-cloud-backup-list", &[], &[], 0);
    run(archive
        .barnacle("barman-cloud-backup-keep", &["-r"])
        .arg("latest"))
    .ok("release");
    same_output(
        &archive,
        "barman-cloud-backup-keep",
        &["-s"],
        &["latest"],
        0,
    );

    // check-wal-archive now that WAL of timeline 1 is there.
    same_output(&archive, "barman-cloud-check-wal-archive", &[], &[], 1);
    same_output(
        &archive,
        "barman-cloud-check-wal-archive",
        &["--timeline", "1"],
        &[],
        1,
    );
    same_output(
        &archive,
        "barman-cloud-check-wal-archive",
        &["--timeline", "2"],
        &[],
        0,
    );
    same_output(&archive, "barman-cloud-check-wal-archive", &["-t"], &[], 0);
}

#[test]
fn check_wal_archive_creates_a_missing_bucket_like_barman() {
    for kind in [S3Kind::CephHttp, S3Kind::SeaweedHttps] {
        let s3 = harness::s3(kind);
        for barnacle in [true, false] {
            let bucket = harness::unique_bucket("created");
            let url = format!("s3://{bucket}/cluster");
            let mut cmd = if barnacle {
                let mut c = harness::barnacle("barman-cloud-check-wal-archive");
                c.envs(s3.env());
                c
            } else {
                let mut c = harness::barman("barman-cloud-check-wal-archive");
                c.envs(s3.barman_env());
                c
            };
            cmd.args(["--endpoint-url", &s3.endpoint(), &url, "pg"]);
            run(&mut cmd).ok("check-wal-archive on a missing bucket");
            // The bucket now exists and is empty.
            assert!(s3.list_keys(&bucket, "").is_empty());
        }
    }
}

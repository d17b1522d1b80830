//! PostgreSQL 15 archiving through `walpush` (gzip, the default) for real: a
//! pgbench run, a base backup (its `.backup` history file), a standby promoted
//! after its primary stops (the `.history` file of timeline 2 and the
//! `.partial` last segment of timeline 1). Every file PostgreSQL archived must
//! be in the store under Barman's key and come back byte-identical through
//! Barman's own `barman-cloud-wal-restore`. Against SeaweedFS and Ceph RGW,
//! each over HTTP and HTTPS.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use crate::harness::{self, PgCluster, S3Kind};
use crate::support::{Archive, file_name, run};

fn archived_files(keep: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(keep)
        .expect("list kept WAL")
        .map(|e| file_name(&e.expect("entry").path()))
        .collect();
    names.sort();
    names
}

fn postgres_archives_every_file(kind: S3Kind) {
    let archive = Archive::new(kind, "pgarchive");
    let dir = harness::scratch("pg-archive");
    let keep = dir.join("keep");
    fs::create_dir(&keep).expect("create keep dir");
    harness::chown_postgres(&keep);
    // Keep a copy of what PostgreSQL handed over, once walpush has succeeded.
    let archive_command = format!(
        "{} {} {} %p && cp %p {}/%f",
        archive.command_line("walpush", ""),
        archive.url(),
        archive.server,
        keep.display()
    );
    let configure = |c: &mut harness::PgConf| {
        c.set("archive_mode", "on")
            .set("archive_command", &archive_command)
            .envs(archive.s3.env());
    };
    let mut primary = PgCluster::new(&dir.join("primary"), configure);
    primary.pgbench(&["-i", "-s", "2", "-q"]);
    primary.pgbench(&["-c", "2", "-T", "2"]);

    let standby_dir = dir.join("standby");
    harness::run_ok(
        primary
            .pg_command("pg_basebackup")
            .arg("-D")
            .arg(&standby_dir)
            .args(["-X", "stream", "-R", "-c", "fast"]),
    );
    let standby = PgCluster::from_data_dir(&standby_dir, configure);
    primary.pgbench(&["-c", "2", "-T", "2"]);
    let last = primary.switch_wal();
    primary.wait_archived(&last, Duration::from_secs(90));
    let lsn = primary.psql("select pg_current_wal_lsn()");
    let caught_up = harness::poll(Duration::from_secs(60), Duration::from_millis(100), || {
        (standby.psql(&format!(
            "select pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"
        )) == "t")
            .then_some(())
    });
    assert!(caught_up.is_some(), "standby did not catch up");
    primary.stop();

    standby.promote();
    standby.psql("create table after_promotion as select generate_series(1, 1000) as i");
    let last = standby.switch_wal();
    standby.wait_archived(&last, Duration::from_secs(90));

    let files = archived_files(&keep);
    let segments = files.iter().filter(|f| f.len() == 24).count();
    assert!(
        segments >= 5,
        "only {segments} segments archived: {files:?}"
    );
    assert!(
        files.iter().any(|f| f == "00000002.history"),
        "no history file: {files:?}"
    );
    assert!(
        files.iter().any(|f| f.ends_with(".backup")),
        "no backup file: {files:?}"
    );

    // The store holds exactly these files, gzip-compressed, under Barman's keys.
    let expected: BTreeSet<String> = files.iter().map(|f| archive.wal_key(f, ".gz")).collect();
    let stored: BTreeSet<String> = archive.keys().into_iter().collect();
    assert_eq!(stored, expected);

    let out = harness::scratch("pg-archive-restored");
    for name in &files {
        let original = fs::read(keep.join(name)).expect("read kept file");
        let restored = if name.ends_with(".backup") {
            // barman-cloud-wal-restore never serves backup history files:
            // read the object and gunzip it as Barman's reader would.
            let object = archive
                .s3
                .get_object(&archive.bucket, &archive.wal_key(name, ".gz"));
            let mut plain = Vec::new();
            flate2::read::MultiGzDecoder::new(&object[..])
                .read_to_end(&mut plain)
                .expect("gunzip");
            plain
        } else {
            let dest = out.join(name);
            run(archive
                .barman("barman-cloud-wal-restore", &[])
                .arg(name)
                .arg(&dest))
            .ok(&format!("barman-cloud-wal-restore {name}"));
            fs::read(&dest).expect("read restored file")
        };
        assert!(
            restored == original,
            "{name}: restored content differs from what PostgreSQL archived"
        );
    }
}

#[test]
fn postgres_archives_to_seaweedfs_over_http() {
    postgres_archives_every_file(S3Kind::SeaweedHttp);
}

#[test]
fn postgres_archives_to_seaweedfs_over_https() {
    postgres_archives_every_file(S3Kind::SeaweedHttps);
}

#[test]
fn postgres_archives_to_ceph_rgw_over_http() {
    postgres_archives_every_file(S3Kind::CephHttp);
}

#[test]
fn postgres_archives_to_ceph_rgw_over_https() {
    postgres_archives_every_file(S3Kind::CephHttps);
}

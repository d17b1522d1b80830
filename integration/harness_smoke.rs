//! Proves each piece of the harness works: the S3 servers with the reference client and
//! Barman, PostgreSQL archiving and recovery, and the programs being runnable by `postgres`.

use std::fs;
use std::process::Command;
use std::time::Duration;

use crate::harness::{self, BARNACLE_NAMES, PgCluster, S3Kind};

/// Reference client round trip, then Barman uploading a WAL file with `barman_env()`.
fn s3_round_trip(kind: S3Kind) {
    let s3 = harness::s3(kind);
    assert_eq!(s3.kind(), kind);
    let bucket = harness::unique_bucket(&format!("smoke-{kind:?}"));
    s3.create_bucket(&bucket);

    let body: Vec<u8> = (0..3 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    s3.put_object_with_metadata(&bucket, "dir/blob", &body, &[("wal-sha256", "abc123")]);
    s3.put_object(&bucket, "dir/empty", b"");
    assert_eq!(s3.get_object(&bucket, "dir/blob"), body);
    assert_eq!(s3.get_object(&bucket, "dir/empty"), b"");
    assert_eq!(s3.list_keys(&bucket, "dir/"), ["dir/blob", "dir/empty"]);
    assert_eq!(
        s3.head_metadata(&bucket, "dir/blob")
            .get("wal-sha256")
            .map(String::as_str),
        Some("abc123")
    );
    s3.delete_object(&bucket, "dir/empty");
    assert_eq!(s3.list_keys(&bucket, ""), ["dir/blob"]);

    let wal_dir = harness::scratch("smoke-wal");
    let wal = wal_dir.join("000000010000000000000001");
    fs::write(&wal, vec![7u8; 16 << 20]).unwrap();
    let out = harness::barman("barman-cloud-wal-archive")
        .envs(s3.barman_env())
        .args([
            "--endpoint-url",
            &s3.endpoint(),
            &format!("s3://{bucket}/"),
            "pg",
        ])
        .arg(&wal)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "barman-cloud-wal-archive: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = "pg/wals/0000000100000000/000000010000000000000001";
    assert_eq!(s3.list_keys(&bucket, "pg/wals/"), [key]);
    assert_eq!(s3.get_object(&bucket, key).len(), 16 << 20);
}

/// The HTTPS endpoint is trusted through the CA file, and only through it.
fn https_needs_the_ca(kind: S3Kind) {
    let s3 = harness::s3(kind);
    let ca = s3.ca_file().expect("an https endpoint has a CA");
    let curl = |url: &str, extra: &[&str]| {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-o", "/dev/null", "-m", "10"])
            .args(extra)
            .arg(url);
        cmd.status().unwrap().code()
    };
    let ca = ca.to_str().unwrap();
    let by_name = s3.endpoint().replace("127.0.0.1", "localhost");
    for url in [s3.endpoint(), by_name] {
        assert_eq!(
            curl(&url, &["--cacert", ca]),
            Some(0),
            "curl with the CA fails on {url}"
        );
        assert_eq!(curl(&url, &[]), Some(60), "{url} is trusted without the CA");
    }
}

#[test]
fn seaweedfs_http_serves_reference_client_and_barman() {
    s3_round_trip(S3Kind::SeaweedHttp);
    assert!(harness::s3(S3Kind::SeaweedHttp).ca_file().is_none());
}

#[test]
fn seaweedfs_https_serves_reference_client_and_barman() {
    s3_round_trip(S3Kind::SeaweedHttps);
    https_needs_the_ca(S3Kind::SeaweedHttps);
}

#[test]
fn ceph_http_serves_reference_client_and_barman() {
    s3_round_trip(S3Kind::CephHttp);
}

#[test]
fn ceph_https_serves_reference_client_and_barman() {
    s3_round_trip(S3Kind::CephHttps);
    https_needs_the_ca(S3Kind::CephHttps);
}

#[test]
fn s3_env_has_credentials_region_and_ca() {
    let s3 = harness::s3(S3Kind::SeaweedHttps);
    let env = s3.barman_env();
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("AWS_ACCESS_KEY_ID"), Some(s3.access_key()));
    assert_eq!(get("AWS_SECRET_ACCESS_KEY"), Some(s3.secret_key()));
    assert_eq!(get("AWS_REGION"), Some("us-east-1"));
    assert_eq!(get("AWS_CA_BUNDLE"), s3.ca_file().and_then(|p| p.to_str()));
    assert_eq!(
        get("AWS_REQUEST_CHECKSUM_CALCULATION"),
        Some("when_required")
    );
    let bucket = harness::unique_bucket("Weird__Prefix.Name!");
    assert!(bucket.starts_with("weird-prefix-name-"), "{bucket}");
    assert!(
        bucket.len() <= 63
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    );
}

#[test]
fn postgres_archives_with_cp_and_a_standby_replays_the_archive() {
    let archive = harness::scratch("archive");
    let pg = PgCluster::new(&harness::scratch("primary"), |conf| {
        conf.set("archive_mode", "on")
            .set("archive_command", format!("cp %p {}/%f", archive.display()));
    });
    assert_eq!(pg.psql("select 1"), "1");
    let wal = pg.switch_wal();
    pg.wait_archived(&wal, Duration::from_secs(60));
    assert_eq!(fs::metadata(archive.join(&wal)).unwrap().len(), 16 << 20);

    pg.pgbench(&["-i", "-s", "1", "-q"]);
    pg.psql("create table t as select generate_series(1, 1000) as i");
    let backup = harness::scratch("basebackup").join("data");
    harness::run_ok(
        pg.pg_command("pg_basebackup")
            .args(["-X", "none", "-c", "fast", "-D"])
            .arg(&backup),
    );
    pg.psql("insert into t select generate_series(1001, 2000)");
    let last = pg.switch_wal();
    pg.wait_archived(&last, Duration::from_secs(60));

    fs::write(backup.join("standby.signal"), "").unwrap();
    let standby = PgCluster::from_data_dir(&backup, |conf| {
        conf.set("restore_command", format!("cp {}/%f %p", archive.display()))
            .set("archive_mode", "off");
    });
    assert_ne!(standby.port(), pg.port());
    let replayed = harness::poll(Duration::from_secs(60), Duration::from_millis(100), || {
        (standby.try_psql("select count(*) from t").ok()? == "2000").then_some(())
    });
    assert!(
        replayed.is_some(),
        "standby did not replay the archive\n{}",
        harness::log_tail(&standby.log_file(), 40)
    );
    assert_eq!(standby.psql("select pg_is_in_recovery()"), "t");
    assert_eq!(
        standby.psql("select count(*) from pgbench_accounts"),
        "100000"
    );
    standby.promote();
    standby.psql("insert into t values (0)");
}

#[test]
fn postgres_runs_barman_as_archive_command() {
    let s3 = harness::s3(S3Kind::SeaweedHttps);
    let bucket = harness::unique_bucket("smoke-pg-barman");
    s3.create_bucket(&bucket);
    let tool = harness::venv_dir().join("bin/barman-cloud-wal-archive");
    let command = format!(
        "{} --endpoint-url {} s3://{bucket}/ pg %p",
        tool.display(),
        s3.endpoint()
    );
    let mut pg = PgCluster::new(&harness::scratch("pg-barman"), |conf| {
        conf.set("archive_mode", "on")
            .set("archive_command", command)
            .envs(s3.barman_env());
    });
    let wal = pg.switch_wal();
    pg.wait_archived(&wal, Duration::from_secs(60));
    let key = format!("pg/wals/{}/{wal}", &wal[..16]);
    assert!(
        s3.list_keys(&bucket, "pg/wals/").contains(&key),
        "{key} not in the bucket"
    );
    pg.stop();
    pg.stop();
}

#[test]
fn barman_runs_as_postgres() {
    let tool = harness::venv_dir().join("bin/barman-cloud-wal-archive");
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(&tool)
        .arg("--version")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("3.19.1"),
        "{tool:?} --version as postgres: {text}"
    );
    let out = harness::barman("barman-cloud-backup")
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("3.19.1"));
}

#[test]
fn bin_dir_programs_are_executable_by_postgres() {
    let dir = harness::bin_dir();
    for name in BARNACLE_NAMES.iter().chain(&["barnacle"]) {
        let path = dir.join(name);
        let status = Command::new("runuser")
            .args(["-u", "postgres", "--", "test", "-x"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "{} is not executable by postgres",
            path.display()
        );
        assert_eq!(harness::barnacle(name).get_program(), path.as_os_str());
    }
}

#[test]
fn scratch_dirs_are_fresh_and_writable_by_postgres() {
    let (a, b) = (harness::scratch("same"), harness::scratch("same"));
    assert_ne!(a, b);
    assert!(a.starts_with(harness::root()));
    let probe = a.join("probe");
    let status = Command::new("runuser")
        .args(["-u", "postgres", "--", "touch"])
        .arg(&probe)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "postgres cannot write into {}",
        a.display()
    );
}

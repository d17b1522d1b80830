//! The sidecar beside a real PostgreSQL 15 under pgbench load (1 MiB WAL
//! segments, so hundreds of them in seconds): it keeps up, survives SIGKILLs
//! at random moments, rides out a store outage, takes a backup on a cron
//! schedule, and its metrics parse as Prometheus text; a new cluster recovers
//! with `restore -p 4`, served from the prefetch spool.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{Timelike, Utc};

use crate::harness::{self, PgCluster, S3Kind, Service};
use crate::proxy::Proxy;
use crate::support::{Archive, file_name, run};

/// A deterministic pseudo-random sequence (seeded: a failure can be replayed).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::Write;
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    crate::support::http_response(&mut s)
}

/// Scrapes `/metrics` and parses it with a Prometheus text-format parser.
fn metrics(port: u16) -> BTreeMap<String, f64> {
    let (status, body) = http_get(port, "/metrics");
    assert_eq!(status, 200, "/metrics answered {status}");
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
    scrape
        .samples
        .into_iter()
        .filter_map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => {
                Some((s.metric, v))
            }
            prometheus_parse::Value::Untyped(v) => Some((s.metric, v)),
            _ => None,
        })
        .collect()
}

struct Setup {
    archive: Archive,
    pg: PgCluster,
    keep: PathBuf,
    endpoint: String,
}

/// A 1 MiB-segment cluster archiving through walpush at `endpoint` (kept
/// copies of every archived file in `keep`).
fn setup(name: &str, endpoint: Option<String>) -> Setup {
    let archive = Archive::new(S3Kind::SeaweedHttp, name);
    let endpoint = endpoint.unwrap_or_else(|| archive.s3.endpoint());
    let dir = harness::scratch(name);
    let keep = dir.join("keep");
    fs::create_dir(&keep).expect("keep dir");
    harness::chown_postgres(&keep);
    let archive_command = format!(
        "{} --endpoint-url {endpoint} {} {} %p && cp %p {}/%f",
        harness::bin_dir().join("walpush").display(),
        archive.url(),
        archive.server,
        keep.display()
    );
    let pg = PgCluster::new_with_initdb(&dir.join("pg"), &["--wal-segsize=1"], |c| {
        c.set("archive_mode", "on")
            .set("archive_command", &archive_command)
            .set("max_wal_size", "64MB")
            .set("min_wal_size", "8MB")
            .envs(archive.s3.env());
    });
    Setup {
        archive,
        pg,
        keep,
        endpoint,
    }
}

fn start_sidecar(s: &Setup, port: u16, extra: &[&str], spool: &Path, log: &Path) -> Service {
    let mut cmd = harness::barnacle("barnacle");
    harness::as_postgres(&mut cmd);
    cmd.envs(s.archive.s3.env())
        .env("HOME", s.pg.run_dir())
        .env("BARNACLE_LOG", "info")
        .args(["sidecar", "--endpoint-url", &s.endpoint])
        .arg("--pgdata")
        .arg(s.pg.data_dir())
        .args([
            "--max-parallel",
            "2",
            "--poll-interval-ms",
            "200",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .arg("--spool-dir")
        .arg(spool)
        .args(extra)
        .arg(s.archive.url())
        .arg(&s.archive.server);
    let service = Service::start("sidecar", cmd, log);
    let up = harness::poll(Duration::from_secs(30), Duration::from_millis(50), || {
        (http_get(port, "/healthz").0 == 200).then_some(())
    });
    assert!(
        up.is_some(),
        "sidecar did not start\n{}",
        harness::log_tail(log, 30)
    );
    service
}

/// Every file PostgreSQL archived is in the store with its BLAKE3; every
/// pushed marker names a stored object.
fn check_nothing_lost(s: &Setup) {
    let keys: HashSet<String> = s.archive.keys().into_iter().collect();
    let kept: Vec<PathBuf> = fs::read_dir(&s.keep)
        .expect("keep")
        .map(|e| e.expect("entry").path())
        .collect();
    assert!(!kept.is_empty());
    for path in &kept {
        let name = file_name(path);
        let key = s.archive.wal_key(&name, ".gz");
        assert!(
            keys.contains(&key),
            "{name} archived by PostgreSQL but not in the store"
        );
        let meta = s.archive.s3.head_metadata(&s.archive.bucket, &key);
        let digest = barnacle::codec::blake3_hex(&fs::read(path).expect("kept file"));
        assert_eq!(
            meta.get("barnacle-blake3"),
            Some(&digest),
            "{name}: stored content differs"
        );
    }
    let markers = s.pg.data_dir().join("pg_wal/barnacle_pushed");
    for entry in fs::read_dir(&markers).into_iter().flatten().flatten() {
        let name = file_name(&entry.path());
        // Claims (`.NAME.claim`) and markers only: staging files have no
        // name, so SIGKILLed pushes leave none.
        if name.starts_with('.') {
            assert!(
                name.ends_with(".claim"),
                "{name} left in {}",
                markers.display()
            );
            continue;
        }
        assert!(
            keys.contains(&s.archive.wal_key(&name, ".gz")),
            "marker for {name}, which is not in the store"
        );
    }
}

fn ready_count(pg: &PgCluster) -> usize {
    fs::read_dir(pg.data_dir().join("pg_wal/archive_status"))
        .map(|d| {
            d.flatten()
                .filter(|e| file_name(&e.path()).ends_with(".ready"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn sidecar_keeps_up_survives_kills_backs_up_on_schedule_and_serves_recovery() {
    let seed = 0x5eed_2026_u64;
    let mut rng = Rng(seed);
    let s = setup("sidecar", None);
    let dir = harness::scratch("sidecar-run");
    let (port, spool, log) = (
        harness::free_port(),
        dir.join("spool"),
        dir.join("sidecar.log"),
    );
    // A backup a few seconds from now, on a 6-field cron expression (UTC).
    let at = Utc::now() + chrono::Duration::seconds(6);
    let cron = format!("{} {} {} * * *", at.second(), at.minute(), at.hour());
    let conn = ["--backup-schedule", &cron, "--pghost"];
    let run_dir = s.pg.run_dir().display().to_string();
    let port_s = s.pg.port().to_string();
    let extra = [
        conn[0],
        conn[1],
        conn[2],
        &run_dir,
        "--pgport",
        &port_s,
        "--pguser",
        "postgres",
        "--retention-policy",
        "RECOVERY WINDOW OF 30 DAYS",
        "--retention-interval",
        "3",
    ];
    let mut sidecar = start_sidecar(&s, port, &extra, &spool, &log);
    s.pg.pgbench(&["-i", "-s", "4", "-q"]);
    let backed_up = harness::poll(Duration::from_secs(60), Duration::from_millis(250), || {
        (metrics(port)
            .get("barnacle_backups_total")
            .copied()
            .unwrap_or(0.0)
            >= 1.0)
            .then_some(())
    });
    assert!(
        backed_up.is_some(),
        "no scheduled backup\n{}",
        harness::log_tail(&log, 40)
    );

    // Load with SIGKILLs of the sidecar at random moments.
    let pgbench = |args: &[&str]| {
        s.pg.pg_command("pgbench")
            .args(args)
            .arg("postgres")
            .stdout(Stdio::null())
            .spawn()
            .expect("pgbench")
    };
    let mut load = pgbench(&["-c", "2", "-T", "20"]);
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(200 + rng.below(600)));
        sidecar.stop(libc::SIGKILL, Duration::from_secs(5));
        sidecar = start_sidecar(&s, port, &extra[2..], &spool, &log);
    }
    assert!(load.wait().expect("pgbench").success());
    // A loaded machine writes fewer segments in those 20 s: more load, still
    // beside the sidecar, until the WAL reaches 205 segments (the archive
    // count below wants 200).
    let segment_now = || {
        let name = s.pg.psql("select pg_walfile_name(pg_current_wal_lsn())");
        let hex = |r: std::ops::Range<usize>| u64::from_str_radix(&name[r], 16).expect("WAL name");
        hex(8..16) * 0x100 + hex(16..24)
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while segment_now() < 205 && Instant::now() < deadline {
        assert!(
            pgbench(&["-c", "2", "-T", "5"])
                .wait()
                .expect("pgbench")
                .success()
        );
    }
    // Then steady, at a sustained rate (this machine is shared with the rest
    // of the suite): once the sidecar has caught up, few files wait.
    let caught_up = harness::poll(Duration::from_secs(60), Duration::from_millis(100), || {
        (ready_count(&s.pg) <= 2).then_some(())
    });
    assert!(
        caught_up.is_some(),
        "the sidecar never caught up\n{}",
        harness::log_tail(&log, 30)
    );
    let mut steady = pgbench(&["-c", "1", "--rate", "150", "-T", "8"]);
    let mut most_ready = 0;
    while steady.try_wait().expect("pgbench").is_none() {
        most_ready = most_ready.max(ready_count(&s.pg));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(steady.wait().expect("pgbench").success());
    let last = s.pg.switch_wal();
    s.pg.wait_archived(&last, Duration::from_secs(120));
    let archived =
        s.pg.psql("select archived_count || ' ' || failed_count from pg_stat_archiver");
    let (count, failed) = archived.split_once(' ').expect("two numbers");
    assert!(
        count.parse::<u64>().expect("count") >= 200,
        "only {count} segments archived (seed {seed:#x})"
    );
    assert_eq!(failed, "0", "archive_command failed (seed {seed:#x})");
    assert!(
        most_ready <= 2 + 6,
        "{most_ready} files waited in pg_wal with the sidecar running (seed {seed:#x})"
    );
    check_nothing_lost(&s);
    let m = metrics(port);
    assert!(
        m.get("barnacle_wal_pushed_total").copied().unwrap_or(0.0) > 0.0,
        "{m:?}"
    );
    let runs = m
        .get("barnacle_retention_runs_total")
        .copied()
        .unwrap_or(0.0);
    assert!(runs >= 1.0, "no scheduled retention run: {m:?}");
    assert_eq!(
        m.get("barnacle_retention_failures_total"),
        Some(&0.0),
        "{m:?}"
    );
    assert_eq!(m.get("barnacle_store_reachable"), Some(&1.0));

    // A new cluster recovers from the scheduled backup with restore -p 4.
    let history = s.pg.psql("select count(*) from pgbench_history");
    let restored = harness::scratch("sidecar-restored").join("data");
    run(s
        .archive
        .barnacle("barman-cloud-restore", &[])
        .arg("latest")
        .arg(&restored))
    .ok("restore");
    fs::write(restored.join("recovery.signal"), b"").expect("recovery.signal");
    fs::create_dir_all(&spool).expect("spool");
    harness::run_ok(
        Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&spool),
    );
    let restore_command = format!(
        "{} --endpoint-url {} -p 4 --spool-dir {} {} {} %f %p",
        harness::bin_dir().join("restore").display(),
        s.endpoint,
        spool.display(),
        s.archive.url(),
        s.archive.server
    );
    let recovered = PgCluster::from_data_dir(&restored, |c| {
        c.set("archive_mode", "off")
            .set("restore_command", &restore_command)
            .envs(s.archive.s3.env());
    });
    let promoted = harness::poll(Duration::from_secs(180), Duration::from_millis(200), || {
        (recovered.try_psql("select pg_is_in_recovery()").ok()? == "f").then_some(())
    });
    assert!(
        promoted.is_some(),
        "recovery did not finish\n{}",
        harness::log_tail(&recovered.log_file(), 30)
    );
    assert_eq!(
        recovered.psql("select count(*) from pgbench_history"),
        history
    );
    let hits = metrics(port)
        .get("barnacle_restore_spool_hits")
        .copied()
        .unwrap_or(0.0);
    assert!(hits > 0.0, "no restore was served from the prefetch spool");
    sidecar.stop(libc::SIGTERM, Duration::from_secs(20));
}

#[test]
fn sidecar_rides_out_a_store_outage() {
    let upstream: u16 = {
        let probe = Archive::new(S3Kind::SeaweedHttp, "probe");
        probe
            .s3
            .endpoint()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port")
    };
    let proxy = Proxy::start(upstream);
    let s = setup("outage", Some(format!("http://127.0.0.1:{}", proxy.port())));
    let dir = harness::scratch("outage-run");
    let (port, log) = (harness::free_port(), dir.join("sidecar.log"));
    let sidecar = start_sidecar(&s, port, &[], &dir.join("spool"), &log);
    s.pg.pgbench(&["-i", "-s", "2", "-q"]);
    let ready = harness::poll(Duration::from_secs(30), Duration::from_millis(200), || {
        (http_get(port, "/readyz").0 == 200).then_some(())
    });
    assert!(ready.is_some(), "not ready with the store up");

    proxy.down();
    let outage = Instant::now();
    let mut load =
        s.pg.pg_command("pgbench")
            .args(["-c", "1", "-T", "20", "postgres"])
            .stdout(Stdio::null())
            .spawn()
            .expect("pgbench");
    let unready = harness::poll(Duration::from_secs(40), Duration::from_millis(200), || {
        (http_get(port, "/readyz").0 == 503).then_some(())
    });
    assert!(
        unready.is_some(),
        "/readyz stayed true with the store unreachable"
    );
    assert!(load.wait().expect("pgbench").success());
    let failures = harness::poll(Duration::from_secs(30), Duration::from_millis(500), || {
        (s.pg.psql("select failed_count from pg_stat_archiver") != "0").then_some(())
    });
    assert!(
        failures.is_some(),
        "PostgreSQL never saw archive_command fail during the outage"
    );
    let waiting = ready_count(&s.pg);
    assert!(waiting > 0, "nothing waited during the outage");
    std::thread::sleep(Duration::from_secs(60).saturating_sub(outage.elapsed()));
    proxy.up();

    let back = harness::poll(Duration::from_secs(60), Duration::from_millis(200), || {
        (http_get(port, "/readyz").0 == 200).then_some(())
    });
    assert!(
        back.is_some(),
        "/readyz did not come back\n{}",
        harness::log_tail(&log, 30)
    );
    let last = s.pg.switch_wal();
    s.pg.wait_archived(&last, Duration::from_secs(150));
    check_nothing_lost(&s);
    sidecar.stop(libc::SIGTERM, Duration::from_secs(20));
}

//! Security (issue 8, part 6): credentials never in `--help`, logs (even at trace level),
//! errors, metrics or `ps`; TLS verification on by default, with `--ca-bundle FILE` (or
//! `AWS_CA_BUNDLE`) the only way to trust another CA and no switch to turn verification off;
//! restored data directories created 0700 as PostgreSQL requires; the sidecar's HTTP
//! endpoint serving nothing but `/metrics`, `/healthz` and `/readyz` to GET and HEAD.
//!
//! Beyond these tests, every barnacle command of the suite has its output scanned for the
//! credentials it was given (`reliability_summary::scan`, called by `support::run`).

use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::fault_proxy::{Fault, Rule};
use crate::harness::{self, S3Kind, Service};
use crate::reliability_summary::{
    HARNESS_SECRETS, Record, assert_no_secret, record, scan_file, secrets_of,
};
use crate::reliability_support::{FaultArchive, sample_backup, segment, wal_name};
use crate::support::{Archive, Ran, run};

const AREA: &str = "security";

/// Test credentials that must never come out (none is a real store's).
const SECRET_KEY: &str = "sec-test-secret-7f3a91c2e4";
const SESSION_TOKEN: &str = "sec-test-session-token-5b8d20";
const PG_PASSWORD: &str = "sec-test-pg-password-c41e";

fn note(kind: &str, case: &str, injected: u64, exit: Option<i32>, result: &str, scanned: u64) {
    record(Record {
        injected,
        exit,
        result: result.to_string(),
        scanned,
        ..Record::new(AREA, kind, case)
    });
}

/// Every credential a test here hands out, the harness's included.
fn all_secrets(archive: &Archive) -> Vec<String> {
    let mut out: Vec<String> = HARNESS_SECRETS.iter().map(|s| s.to_string()).collect();
    out.extend([SECRET_KEY, SESSION_TOKEN, PG_PASSWORD].map(String::from));
    out.push(archive.s3.secret_key().to_string());
    out
}

/// Sets the test credentials (secret key, session token, PostgreSQL password, a conninfo
/// with a password) on `cmd`.
fn with_test_credentials(cmd: &mut Command) -> &mut Command {
    cmd.env("AWS_ACCESS_KEY_ID", "sec-test-access-key")
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
        .env("PGPASSWORD", PG_PASSWORD)
        .env(
            "PGDATABASE",
            format!("dbname=postgres password={PG_PASSWORD}"),
        )
}

#[test]
fn the_scanned_secrets_are_the_harness_s_own_and_a_leak_is_caught() {
    let archive = Archive::new(S3Kind::SeaweedHttp, "sec-scan");
    let secret = archive.s3.secret_key();
    assert!(
        HARNESS_SECRETS.contains(&secret),
        "the scan does not look for the store's secret key"
    );
    // Ceph RGW's user is not started here (it is slow to start): its secret is checked
    // against the harness's source instead.
    let ceph = include_str!("harness/ceph.rs");
    assert!(
        HARNESS_SECRETS
            .iter()
            .any(|s| ceph.contains(&format!("secret_key: \"{s}\""))),
        "the scan does not look for Ceph RGW's secret key"
    );
    let mut cmd = archive.barnacle("walpush", &[]);
    with_test_credentials(&mut cmd);
    let secrets = secrets_of(&cmd);
    for s in [SECRET_KEY, SESSION_TOKEN, PG_PASSWORD] {
        assert!(secrets.iter().any(|x| x == s), "{s} is not scanned for");
    }
    // The scanner fails on a leak (it is not a test that cannot fail).
    let leaky = Ran {
        code: 0,
        stdout: format!("key={secret}\n"),
        stderr: String::new(),
    };
    let caught = std::panic::catch_unwind(|| assert_no_secret("leak", &leaky, &[secret]));
    assert!(caught.is_err(), "a leaked secret was not caught");
}

#[test]
fn help_and_ps_never_show_credentials() {
    // --help of every name and subcommand, with credentials in the environment (clap shows
    // `[env: NAME=value]` for options read from the environment).
    let mut names: Vec<Vec<&str>> = harness::BARNACLE_NAMES.iter().map(|n| vec![*n]).collect();
    names.push(vec!["barnacle"]);
    for sub in [
        "wal-push",
        "wal-restore",
        "backup",
        "restore",
        "list",
        "show",
        "keep",
        "check-wal-archive",
        "status",
        "delete",
        "prune",
        "sidecar",
    ] {
        names.push(vec!["barnacle", sub]);
    }
    let mut scanned = 0;
    for words in &names {
        let mut cmd = harness::barnacle(words[0]);
        cmd.args(&words[1..]).arg("--help");
        with_test_credentials(&mut cmd);
        let r = run(&mut cmd);
        assert_eq!(r.code, 0, "{words:?} --help: {r:#?}");
        assert!(r.stdout.contains("Usage"), "{words:?} --help: {r:#?}");
        scanned += assert_no_secret("--help", &r, &[SECRET_KEY, SESSION_TOKEN, PG_PASSWORD]);
    }
    note(
        "--help",
        &format!(
            "--help of all {} names and subcommands with a secret key, a session token, \
             PGPASSWORD and a conninfo with password= in the environment",
            names.len()
        ),
        names.len() as u64,
        Some(0),
        "no credential shown (PGDATABASE's value is hidden: a conninfo may carry a password)",
        scanned,
    );

    // ps: a walpush held by a slow store shows only its arguments.
    let fa = FaultArchive::new("sec-ps");
    let dir = harness::scratch("sec-ps");
    let seg = segment(&dir, &wal_name(1), 1 << 20, 1);
    fa.proxy
        .add(Rule::on("PUT").fault(Fault::Delay(Duration::from_secs(3))));
    let mut cmd = fa.via_proxy("walpush", &[]);
    cmd.arg(&seg).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("start walpush");
    let pid = child.id();
    let ps = harness::poll(Duration::from_secs(10), Duration::from_millis(50), || {
        // Counted when the PUT arrives, before the 3 s pause: walpush is waiting now.
        (fa.proxy.injected_total() > 0).then_some(())
    });
    assert!(ps.is_some(), "walpush never reached the store");
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).expect("walpush's cmdline");
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    let ps = run(Command::new("ps").args(["-ww", "-o", "args=", "-p", &pid.to_string()]));
    assert!(ps.stdout.contains("walpush"), "{ps:#?}");
    let out = child.wait_with_output().expect("walpush");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let secrets = all_secrets(&fa.archive);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    for s in &secrets {
        assert!(!cmdline.contains(s), "/proc/PID/cmdline shows a credential");
    }
    let scanned = assert_no_secret("ps", &ps, &secrets);
    note(
        "ps",
        "ps -ww and /proc/PID/cmdline of a walpush in flight (credentials from the environment)",
        1,
        Some(0),
        "arguments only: URL, server, WAL path, --endpoint-url",
        scanned + 1,
    );
}

#[test]
fn trace_logs_and_errors_never_show_credentials() {
    let archive = Archive::new(S3Kind::SeaweedHttp, "sec-logs");
    // The first write into a new bucket makes SeaweedFS grow its volumes; on a loaded machine
    // that once answered InternalError to all of walpush's attempts. The reference client
    // (boto3, with its own retries) writes first, outside the server's prefix.
    archive.s3.put_object(&archive.bucket, "warm-up", b"x");
    let dir = harness::scratch("sec-logs");
    let secrets = all_secrets(&archive);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    // Every log line of every crate (HTTP requests, signing), with the store's real key:
    // success; then with a session token the store refuses (it goes out as a header).
    for (i, (what, token, code)) in [
        ("walpush at BARNACLE_LOG=trace, archived", None, 0),
        (
            "walpush at BARNACLE_LOG=trace with a session token the store refuses",
            Some(SESSION_TOKEN),
            4,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let seg = segment(&dir, &wal_name(1 + i as u64), 1 << 20, i as u64);
        for format in ["text", "json"] {
            let mut cmd = archive.barnacle("walpush", &["--log-format", format]);
            cmd.arg(&seg).env("BARNACLE_LOG", "trace");
            if let Some(t) = token {
                cmd.env("AWS_SESSION_TOKEN", t);
            }
            let r = run(&mut cmd);
            assert_eq!(r.code, code, "{what} ({format}): {r:#?}");
            assert!(r.stderr.lines().count() > 10, "no trace logs: {r:#?}");
            let scanned = assert_no_secret(what, &r, &secrets);
            note(
                "logs",
                &format!("{what} (--log-format {format})"),
                1,
                Some(r.code),
                &format!(
                    "{} log lines, no credential",
                    r.stderr.lines().filter(|l| !l.trim().is_empty()).count()
                ),
                scanned,
            );
        }
    }
}

/// One HTTP/1.1 request; the status and the body.
fn http(port: u16, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the sidecar");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let body = if matches!(method, "POST" | "PUT" | "PATCH") {
        "x=1"
    } else {
        ""
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    crate::support::http_response(&mut s)
}

#[test]
fn the_sidecar_serves_only_metrics_and_health_and_never_a_credential() {
    let archive = Archive::new(S3Kind::SeaweedHttp, "sec-sidecar");
    let dir = harness::scratch("sec-sidecar");
    // A data directory as the sidecar sees it: pg_wal with one segment marked ready.
    let pgdata = dir.join("pgdata");
    let status = pgdata.join("pg_wal/archive_status");
    fs::create_dir_all(&status).unwrap();
    let name = wal_name(1);
    segment(&pgdata.join("pg_wal"), &name, 1 << 20, 1);
    fs::write(status.join(format!("{name}.ready")), b"").unwrap();
    let port = harness::free_port();
    let log = dir.join("sidecar.log");
    let mut cmd = harness::barnacle("barnacle");
    cmd.envs(archive.s3.env())
        .env("BARNACLE_LOG", "debug")
        .env("PGPASSWORD", PG_PASSWORD)
        .env(
            "PGDATABASE",
            format!("dbname=postgres password={PG_PASSWORD}"),
        )
        .args(["sidecar", "--endpoint-url", &archive.s3.endpoint()])
        .arg("--pgdata")
        .arg(&pgdata)
        .args(["--poll-interval-ms", "100", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg(archive.url())
        .arg(&archive.server);
    let sidecar = Service::start("sec-sidecar", cmd, &log);
    let pushed = harness::poll(Duration::from_secs(30), Duration::from_millis(100), || {
        archive
            .keys()
            .iter()
            .any(|k| k.contains(&name))
            .then_some(())
    });
    assert!(
        pushed.is_some(),
        "the sidecar did not push {name}\n{}",
        harness::log_tail(&log, 30)
    );

    let secrets = all_secrets(&archive);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let mut tried = 0;
    let mut scanned = 0;
    for path in ["/metrics", "/healthz", "/readyz"] {
        let (code, body) = http(port, "GET", path);
        assert_eq!(code, 200, "GET {path}: {body}");
        let (head, head_body) = http(port, "HEAD", path);
        assert_eq!(head, 200, "HEAD {path}");
        assert!(head_body.is_empty(), "HEAD {path} has a body: {head_body}");
        for s in &secrets {
            assert!(!body.contains(s), "GET {path} shows a credential");
        }
        tried += 2;
        scanned += 1;
    }
    let (_, metrics) = http(port, "GET", "/metrics");
    assert!(metrics.contains("# TYPE"), "{metrics}");
    for path in [
        "/",
        "/metrics/",
        "/metrics/../healthz/x",
        "/env",
        "/config",
        "/debug/pprof",
        "/pushed",
        "/../../etc/passwd",
        "/favicon.ico",
    ] {
        let (code, body) = http(port, "GET", path);
        assert_eq!(code, 404, "GET {path}: {body}");
        tried += 1;
    }
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"] {
        for path in ["/metrics", "/healthz", "/readyz", "/"] {
            let (code, body) = http(port, method, path);
            assert_eq!(code, 405, "{method} {path}: {body}");
            tried += 1;
        }
    }
    sidecar.assert_running();
    let cmdline = fs::read(format!("/proc/{}/cmdline", sidecar.pid())).expect("cmdline");
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    for s in &secrets {
        assert!(
            !cmdline.contains(s),
            "the sidecar's cmdline shows a credential"
        );
    }
    let stopped = sidecar.stop(libc::SIGTERM, Duration::from_secs(20));
    assert!(stopped.success(), "sidecar exit: {stopped:?}");
    scanned += scan_file(&log, &secrets) + 1;
    note(
        "sidecar HTTP",
        "GET/HEAD /metrics /healthz /readyz; GET of 10 other paths; POST PUT DELETE PATCH \
         OPTIONS TRACE on 4 paths",
        tried,
        None,
        "200 for the three endpoints only; 404 for every other path; 405 for every other \
         method; no credential in /metrics, the debug log or the sidecar's cmdline",
        scanned,
    );
}

#[test]
fn tls_is_verified_by_default_and_a_ca_is_trusted_only_when_named() {
    let s3 = harness::s3(S3Kind::SeaweedHttps);
    let archive = Archive::new(S3Kind::SeaweedHttps, "sec-tls");
    let ca = s3
        .env()
        .into_iter()
        .find(|(k, _)| k == "AWS_CA_BUNDLE")
        .map(|(_, v)| v)
        .expect("the harness's CA for its HTTPS endpoint");
    let list = |setup: &dyn Fn(&mut Command)| {
        let mut cmd = archive.barnacle("barman-cloud-backup-list", &[]);
        cmd.env_remove("AWS_CA_BUNDLE");
        setup(&mut cmd);
        run(&mut cmd)
    };
    type Setup = Box<dyn Fn(&mut Command)>;
    let cases: Vec<(&str, Setup, i32)> = vec![
        (
            "the store's CA given with --ca-bundle",
            {
                let ca = ca.clone();
                Box::new(move |c: &mut Command| {
                    c.args(["--ca-bundle", &ca]);
                })
            },
            0,
        ),
        (
            "the store's CA given with AWS_CA_BUNDLE",
            {
                let ca = ca.clone();
                Box::new(move |c: &mut Command| {
                    c.env("AWS_CA_BUNDLE", &ca);
                })
            },
            0,
        ),
        (
            "no CA named (system roots only)",
            Box::new(|_: &mut Command| {}),
            4,
        ),
        (
            "no CA named, AWS_ALLOW_INVALID_CERTIFICATES=true (object_store's switch)",
            Box::new(|c: &mut Command| {
                c.env("AWS_ALLOW_INVALID_CERTIFICATES", "true");
            }),
            4,
        ),
        (
            "no CA named, AWS_ALLOW_HTTP=true",
            Box::new(|c: &mut Command| {
                c.env("AWS_ALLOW_HTTP", "true");
            }),
            4,
        ),
    ];
    for (what, setup, code) in cases {
        let r = list(&*setup);
        assert_eq!(r.code, code, "{what}: {r:#?}");
        if code != 0 {
            r.one_line_error("certificate");
        }
        let secrets = [archive.s3.secret_key()];
        let scanned = assert_no_secret(what, &r, &secrets);
        note(
            "TLS",
            &format!("barman-cloud-backup-list over HTTPS: {what}"),
            1,
            Some(r.code),
            &if code == 0 {
                "verified and listed".to_string()
            } else {
                crate::reliability_support::message(&r)
            },
            scanned,
        );
    }
    // No option turns verification off.
    let help = run(harness::barnacle("walpush").arg("--help"));
    for word in ["insecure", "no-verify", "verify-ssl", "invalid-cert"] {
        assert!(!help.stdout.contains(word), "--help offers {word}");
    }
}

#[test]
fn restored_data_directories_are_0700() {
    let sample = sample_backup();
    let dir = harness::scratch("sec-0700");
    let created = dir.join("new/data");
    let existing = dir.join("existing");
    fs::create_dir(&existing).unwrap();
    fs::set_permissions(&existing, fs::Permissions::from_mode(0o755)).unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    for (what, dest) in [
        ("a directory barnacle creates", &created),
        ("an existing empty directory (0755 before)", &existing),
    ] {
        let started = Instant::now();
        let r = run(sample
            .archive
            .barnacle("barman-cloud-restore", &[])
            .arg(&sample.id)
            .arg(dest));
        assert_eq!(r.code, 0, "{what}: {r:#?}");
        assert_eq!(mode(dest), 0o700, "{what}: mode {:o}", mode(dest));
        // PostgreSQL's own check (it refuses a group- or world-accessible data directory).
        assert!(dest.join("global/pg_control").exists());
        note(
            "permissions",
            &format!("barman-cloud-restore into {what}"),
            1,
            Some(0),
            &format!(
                "data directory mode 0700 (restored in {:.1} s)",
                started.elapsed().as_secs_f64()
            ),
            2,
        );
    }
    // No directory of the restored tree is open to group or others either.
    let out = Command::new("find")
        .arg(&created)
        .args(["-type", "d", "-perm", "/077"])
        .output()
        .expect("find");
    assert!(
        out.stdout.is_empty(),
        "directories open to group/others: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn postgresql_s_log_holds_no_credential_of_its_archive_command() {
    // PostgreSQL logs walpush's stderr, and the whole archive_command line when it fails;
    // credentials reach walpush through the environment only.
    let sample = sample_backup();
    let wal = sample.pg.switch_wal();
    sample.pg.wait_archived(&wal, Duration::from_secs(60));
    let secrets = all_secrets(&sample.archive);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let log = sample.pg.log_file();
    let text = fs::read_to_string(&log).expect("PostgreSQL's log");
    assert!(!text.is_empty(), "{} is empty", log.display());
    let scanned = scan_file(&log, &secrets);
    note(
        "logs",
        "PostgreSQL's log of a cluster archiving with walpush and backed up by barnacle",
        1,
        None,
        "no credential (archive_command carries none: they come from the environment)",
        scanned,
    );
}

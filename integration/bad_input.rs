//! Bad input, one test per case: malformed and foreign WAL names, a `.history` of a newer
//! timeline, wrong or unreachable URLs, an unknown bucket, wrong or expired credentials,
//! TLS certificates that do not match, foreign and damaged objects in the archive, unknown
//! backup ids, conflicting options, restore directories, a PostgreSQL that refuses.
//!
//! Each case asserts barnacle's exit code, one line on stderr naming the cause, no panic or
//! backtrace, and no credential (secret key, session token, web-identity token) in stdout or
//! stderr; where Barman's tool takes the same input, Barman's exit code must be the same.
//! Each case is a row of the reliability page (input → message → exit code).

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::backup_support::connection;
use crate::harness::{self, S3Kind};
use crate::reliability_summary::{Record, assert_no_secret, record};
use crate::reliability_support::{
    clone_archive, entries, message, sample_backup, segment, wal_name,
};
use crate::support::{Archive, Ran, run};

const AREA: &str = "bad input";

/// One case: barnacle's command, Barman's for the same input (if any), what must happen.
struct Case {
    kind: &'static str,
    input: &'static str,
    ours: Command,
    barman: Option<Command>,
    code: i32,
    /// Words the error line must contain (case-insensitive); for exit 0, words stderr must
    /// contain (a warning), or nothing.
    cause: &'static str,
    /// Credentials that must not appear in the output (beyond the harness's secret key).
    secrets: Vec<String>,
}

impl Case {
    fn new(kind: &'static str, input: &'static str, ours: Command) -> Case {
        Case {
            kind,
            input,
            ours,
            barman: None,
            code: 4,
            cause: "",
            secrets: Vec::new(),
        }
    }

    fn barman(mut self, cmd: Command) -> Case {
        self.barman = Some(cmd);
        self
    }

    fn exits(mut self, code: i32, cause: &'static str) -> Case {
        self.code = code;
        self.cause = cause;
        self
    }

    fn secret(mut self, s: impl Into<String>) -> Case {
        self.secrets.push(s.into());
        self
    }

    /// Runs both tools, asserts, records the row; returns barnacle's run.
    fn check(mut self) -> Ran {
        let what = self.input;
        let r = run(&mut self.ours);
        // Barman runs first so that a failure shows both tools' answers.
        let barman = self.barman.as_mut().map(run);
        assert_eq!(
            r.code, self.code,
            "{what}: barnacle's exit code: {r:#?}\nBarman: {barman:#?}"
        );
        if self.code != 0 {
            r.one_line_error(self.cause);
        } else {
            assert!(
                r.stderr.to_lowercase().contains(&self.cause.to_lowercase()),
                "{what}: stderr does not name {:?}: {r:#?}",
                self.cause
            );
        }
        for bad in ["panicked", "backtrace", "Traceback"] {
            assert!(!r.stderr.contains(bad), "{what}: {bad}: {r:#?}");
        }
        let mut secrets = self.secrets.clone();
        secrets.push(harness::s3(S3Kind::SeaweedHttp).secret_key().to_string());
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let scanned = assert_no_secret(what, &r, &secrets);
        let barman_exit = barman.map(|b| {
            assert_eq!(
                b.code, self.code,
                "{what}: Barman's exit code differs from barnacle's {}: {b:#?}",
                self.code
            );
            b.code
        });
        record(Record {
            injected: 1,
            exit: Some(r.code),
            barman_exit,
            result: match (r.code, message(&r)) {
                (0, m) if m.is_empty() => "succeeds".to_string(),
                (0, m) => format!("succeeds; {m}"),
                (_, m) => m,
            },
            scanned,
            ..Record::new(AREA, self.kind, what)
        });
        r
    }
}

/// barnacle's and Barman's `tool` on `archive` with the same arguments before the URL
/// (`before`) and after the server name (`after`).
fn both(archive: &Archive, tool: &str, before: &[&str], after: &[&str]) -> (Command, Command) {
    let mut ours = archive.barnacle(tool, before);
    ours.args(after);
    let mut theirs = archive.barman(tool, before);
    theirs.args(after);
    (ours, theirs)
}

/// A fresh archive on SeaweedFS over HTTP.
fn fresh(name: &str) -> Archive {
    Archive::new(S3Kind::SeaweedHttp, name)
}

/// A fresh archive holding WAL segments 1 and 2 of timeline 1 (2 MiB each).
fn with_wal(name: &str) -> (Archive, PathBuf) {
    let archive = fresh(name);
    let dir = harness::scratch(name);
    for n in 1..=2 {
        let seg = segment(&dir, &wal_name(n), 2 << 20, n);
        run(archive.barnacle("walpush", &[]).arg(&seg)).ok("walpush");
    }
    (archive, dir)
}

/// A tool run on `url` with the store's credentials and endpoint `endpoint`.
fn on_url(tool: &str, endpoint: &str, url: &str, barman: bool) -> Command {
    let s3 = harness::s3(S3Kind::SeaweedHttp);
    let mut cmd = if barman {
        let mut c = harness::barman(tool);
        c.envs(s3.barman_env());
        c
    } else {
        let mut c = harness::barnacle(tool);
        c.envs(s3.env());
        c
    };
    cmd.args(["--endpoint-url", endpoint, url, "pg"]);
    cmd
}

// --- WAL names -------------------------------------------------------------------------

#[test]
fn walpush_of_a_malformed_wal_name() {
    let archive = fresh("bad-walname");
    let dir = harness::scratch("bad-walname");
    let path = dir.join("RECOVERYXLOG");
    fs::write(&path, b"x").unwrap();
    let (o, b) = both(
        &archive,
        "barman-cloud-wal-archive",
        &[],
        &[&path.display().to_string()],
    );
    Case::new("WAL name", "walpush of a file named RECOVERYXLOG", o)
        .barman(b)
        .exits(3, "invalid name for a WAL file")
        .check();
}

#[test]
fn walpush_of_a_foreign_file_from_pg_wal() {
    let archive = fresh("bad-foreign-name");
    let dir = harness::scratch("bad-foreign-name");
    let path = dir.join("000000010000000000000001.ready");
    fs::write(&path, b"").unwrap();
    let (o, b) = both(
        &archive,
        "barman-cloud-wal-archive",
        &[],
        &[&path.display().to_string()],
    );
    Case::new(
        "WAL name",
        "walpush of archive_status/000000010000000000000001.ready",
        o,
    )
    .barman(b)
    .exits(3, "invalid name for a WAL file")
    .check();
}

#[test]
fn walpush_of_a_lowercase_segment_name() {
    let archive = fresh("bad-lowercase");
    let dir = harness::scratch("bad-lowercase");
    let path = dir.join("00000001000000000000000a");
    fs::write(&path, b"x").unwrap();
    let (o, b) = both(
        &archive,
        "barman-cloud-wal-archive",
        &[],
        &[&path.display().to_string()],
    );
    // Barman's WAL-name pattern takes [0-9A-Fa-f]: the file is archived under its own name,
    // which PostgreSQL never asks for. barnacle does the same (a drop-in replacement).
    Case::new(
        "WAL name",
        "walpush of 00000001000000000000000a (lowercase hex: accepted, as Barman does)",
        o,
    )
    .barman(b)
    .exits(0, "")
    .check();
    assert!(
        archive
            .keys()
            .iter()
            .any(|k| k.contains("00000001000000000000000a")),
        "{:?}",
        archive.keys()
    );
}

#[test]
fn restore_of_a_non_hex_wal_name() {
    let archive = fresh("bad-nonhex");
    let dir = harness::scratch("bad-nonhex");
    let dest = dir.join("x").display().to_string();
    let (o, b) = both(
        &archive,
        "barman-cloud-wal-restore",
        &[],
        &["00000001000000000000000G", &dest],
    );
    Case::new("WAL name", "wal-restore of 00000001000000000000000G", o)
        .barman(b)
        .exits(3, "invalid name for a WAL file")
        .check();
}

#[test]
fn restore_of_the_history_of_a_newer_timeline() {
    let (archive, dir) = with_wal("bad-newer-tli");
    let dest = dir.join("RECOVERYHISTORY");
    let (o, b) = both(
        &archive,
        "barman-cloud-wal-restore",
        &[],
        &["00000009.history", &dest.display().to_string()],
    );
    Case::new(
        "WAL name",
        "wal-restore of 00000009.history (no such timeline: PostgreSQL's probe for a newer one)",
        o,
    )
    .barman(b)
    .exits(1, "does not exist")
    .check();
    assert!(!dest.exists());
}

#[test]
fn check_wal_archive_with_a_newer_timeline_in_the_archive() {
    let (archive, dir) = with_wal("bad-check-tli");
    let history = dir.join("00000002.history");
    fs::write(&history, b"1\t0/2000000\tno recovery target specified\n").unwrap();
    run(archive.barnacle("walpush", &[]).arg(&history)).ok("walpush history");
    let seg = segment(&dir, "000000020000000000000003", 1 << 20, 3);
    run(archive.barnacle("walpush", &[]).arg(&seg)).ok("walpush tli 2");
    let (o, b) = both(
        &archive,
        "barman-cloud-check-wal-archive",
        &["--timeline", "1"],
        &[],
    );
    Case::new(
        "WAL name",
        "check-wal-archive --timeline 1 on an archive with 00000002.history and timeline-2 WAL",
        o,
    )
    .barman(b)
    .exits(1, "")
    .check();
}

// --- URLs and endpoints ----------------------------------------------------------------

#[test]
fn a_url_without_a_bucket() {
    let s3 = harness::s3(S3Kind::SeaweedHttp);
    let e = s3.endpoint();
    Case::new(
        "URL / endpoint",
        "barman-cloud-backup-list s3:// (no bucket)",
        on_url("barman-cloud-backup-list", &e, "s3://", false),
    )
    .barman(on_url("barman-cloud-backup-list", &e, "s3://", true))
    .exits(4, "s3://")
    .check();
}

#[test]
fn a_url_with_an_unknown_scheme() {
    let s3 = harness::s3(S3Kind::SeaweedHttp);
    let e = s3.endpoint();
    Case::new(
        "URL / endpoint",
        "barman-cloud-backup-list ftp://host/x",
        on_url("barman-cloud-backup-list", &e, "ftp://host/x", false),
    )
    .barman(on_url("barman-cloud-backup-list", &e, "ftp://host/x", true))
    .exits(4, "ftp://host/x")
    .check();
}

#[test]
fn an_endpoint_url_without_a_scheme() {
    let archive = fresh("bad-endpoint-scheme");
    let s3 = harness::s3(S3Kind::SeaweedHttp);
    let bare = s3.endpoint().trim_start_matches("http://").to_string();
    Case::new(
        "URL / endpoint",
        "--endpoint-url 127.0.0.1:PORT (no scheme)",
        on_url("barman-cloud-backup-list", &bare, &archive.url(), false),
    )
    .barman(on_url(
        "barman-cloud-backup-list",
        &bare,
        &archive.url(),
        true,
    ))
    .exits(4, "http://")
    .check();
}

#[test]
fn an_unreachable_endpoint() {
    let archive = fresh("bad-unreachable");
    let dead = format!("http://127.0.0.1:{}", harness::free_port());
    Case::new(
        "URL / endpoint",
        "barman-cloud-backup-list with nothing listening at the endpoint",
        on_url("barman-cloud-backup-list", &dead, &archive.url(), false),
    )
    .barman(on_url(
        "barman-cloud-backup-list",
        &dead,
        &archive.url(),
        true,
    ))
    .exits(4, "cannot reach")
    .check();
}

#[test]
fn an_unknown_bucket() {
    let s3 = harness::s3(S3Kind::SeaweedHttp);
    let e = s3.endpoint();
    let url = "s3://no-such-bucket-barnacle/p";
    Case::new(
        "URL / endpoint",
        "barman-cloud-backup-list s3://no-such-bucket-barnacle/p",
        on_url("barman-cloud-backup-list", &e, url, false),
    )
    .barman(on_url("barman-cloud-backup-list", &e, url, true))
    .exits(4, "does not exist")
    .check();
}

// --- Credentials -----------------------------------------------------------------------

#[test]
fn a_wrong_secret_key() {
    let (archive, dir) = with_wal("bad-secret");
    let wrong = "wrong-secret-4f9a1c2b7d";
    let seg = segment(&dir, &wal_name(3), 1 << 20, 3);
    let (mut o, mut b) = both(
        &archive,
        "barman-cloud-wal-archive",
        &[],
        &[&seg.display().to_string()],
    );
    o.env("AWS_SECRET_ACCESS_KEY", wrong);
    b.env("AWS_SECRET_ACCESS_KEY", wrong);
    Case::new("credentials", "walpush with a wrong secret key", o)
        .barman(b)
        .exits(4, "SignatureDoesNotMatch")
        .secret(wrong)
        .check();
}

#[test]
fn an_unknown_access_key() {
    let (archive, _) = with_wal("bad-access-key");
    let (mut o, mut b) = both(&archive, "barman-cloud-backup-list", &[], &[]);
    o.env("AWS_ACCESS_KEY_ID", "AKIANOSUCHKEY0000000");
    b.env("AWS_ACCESS_KEY_ID", "AKIANOSUCHKEY0000000");
    Case::new(
        "credentials",
        "barman-cloud-backup-list with an unknown access key id",
        o,
    )
    .barman(b)
    .exits(4, "InvalidAccessKeyId")
    .check();
}

#[test]
fn a_session_token_the_store_rejects() {
    let (archive, dir) = with_wal("bad-session-token");
    let token = "FwoGZXIvYXdzEBogus-session-token-9c81d";
    let dest = dir.join("RECOVERYXLOG").display().to_string();
    let (mut o, mut b) = both(
        &archive,
        "barman-cloud-wal-restore",
        &[],
        &[&wal_name(1), &dest],
    );
    o.env("AWS_SESSION_TOKEN", token);
    b.env("AWS_SESSION_TOKEN", token);
    Case::new(
        "credentials",
        "wal-restore with static keys and a session token the store does not know",
        o,
    )
    .barman(b)
    .exits(4, "refused")
    .secret(token)
    .check();
}

#[test]
fn an_expired_web_identity_token() {
    let (archive, dir) = with_wal("bad-web-identity");
    let token = "eyJhbGciOiJSUzI1NiJ9.expired-web-identity-token.c2lnbmF0dXJl";
    let token_file = dir.join("token");
    fs::write(&token_file, token).unwrap();
    // STS: a local HTTPS endpoint (trusted) that refuses the token.
    let sts = https_refuser();
    let dest = dir.join("RECOVERYXLOG").display().to_string();
    let (mut o, mut b) = both(
        &archive,
        "barman-cloud-wal-restore",
        &[],
        &[&wal_name(1), &dest],
    );
    for cmd in [&mut o, &mut b] {
        cmd.env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_WEB_IDENTITY_TOKEN_FILE", &token_file)
            .env("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/barnacle")
            .env("AWS_ENDPOINT_URL_STS", &sts.endpoint)
            .env("AWS_CA_BUNDLE", &sts.ca);
    }
    Case::new(
        "credentials",
        "AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, STS answers ExpiredTokenException",
        o,
    )
    .barman(b)
    .exits(4, "ExpiredToken")
    .secret(token)
    .check();
}

#[test]
fn a_profile_that_does_not_exist() {
    let (archive, _) = with_wal("bad-profile");
    let (mut o, mut b) = both(
        &archive,
        "barman-cloud-backup-list",
        &["-P", "no-such-profile"],
        &[],
    );
    let home = harness::scratch("bad-profile-home");
    o.env("HOME", &home);
    b.env("HOME", &home);
    Case::new(
        "credentials",
        "barman-cloud-backup-list -P no-such-profile",
        o,
    )
    .barman(b)
    .exits(4, "no-such-profile")
    .check();
}

// --- TLS -------------------------------------------------------------------------------

/// The HTTPS SeaweedFS endpoint with `ca` as the only extra trust (None: system roots only).
fn https_list(ca: Option<&Path>, barman: bool) -> Command {
    let s3 = harness::s3(S3Kind::SeaweedHttps);
    let archive_url = format!("s3://{}/cluster", harness::unique_bucket("tls"));
    let mut cmd = on_url(
        "barman-cloud-backup-list",
        &s3.endpoint(),
        &archive_url,
        barman,
    );
    let bundle = ca.map_or_else(
        || PathBuf::from("/etc/ssl/certs/ca-certificates.crt"),
        Path::to_path_buf,
    );
    cmd.env("AWS_CA_BUNDLE", bundle);
    cmd
}

#[test]
fn tls_with_an_untrusted_certificate() {
    Case::new(
        "TLS",
        "https endpoint whose CA is not trusted (system roots only)",
        https_list(None, false),
    )
    .barman(https_list(None, true))
    .exits(4, "certificate")
    .check();
}

#[test]
fn tls_with_another_ca() {
    let other = other_ca();
    Case::new(
        "TLS",
        "https endpoint, --ca-bundle of another CA",
        https_list(Some(&other), false),
    )
    .barman(https_list(Some(&other), true))
    .exits(4, "certificate")
    .check();
}

#[test]
fn tls_with_a_name_the_certificate_does_not_cover() {
    let server = https_refuser();
    let localhost = server.endpoint.replace("127.0.0.1", "localhost");
    let archive = fresh("bad-tls-name");
    let mut o = on_url(
        "barman-cloud-backup-list",
        &localhost,
        &archive.url(),
        false,
    );
    o.env("AWS_CA_BUNDLE", &server.ca);
    let mut b = on_url("barman-cloud-backup-list", &localhost, &archive.url(), true);
    b.env("AWS_CA_BUNDLE", &server.ca);
    Case::new(
        "TLS",
        "https://localhost:PORT against a certificate for IP 127.0.0.1 only",
        o,
    )
    .barman(b)
    .exits(4, "certificate")
    .check();
}

#[test]
fn a_ca_bundle_that_is_not_pem() {
    let s3 = harness::s3(S3Kind::SeaweedHttps);
    let archive = fresh("bad-ca-pem");
    let dir = harness::scratch("bad-ca-pem");
    let bogus = dir.join("ca.pem");
    fs::write(&bogus, "not a certificate\n").unwrap();
    let [mut o, mut b] = [false, true].map(|barman| {
        on_url(
            "barman-cloud-backup-list",
            &s3.endpoint(),
            &archive.url(),
            barman,
        )
    });
    o.env("AWS_CA_BUNDLE", &bogus);
    b.env("AWS_CA_BUNDLE", &bogus);
    Case::new(
        "TLS",
        "AWS_CA_BUNDLE pointing at a file with no certificate",
        o,
    )
    .barman(b)
    .exits(4, "CA bundle")
    .check();
}

#[test]
fn a_ca_bundle_that_does_not_exist() {
    let s3 = harness::s3(S3Kind::SeaweedHttps);
    let archive = fresh("bad-ca-missing");
    let mut o = on_url(
        "barman-cloud-backup-list",
        &s3.endpoint(),
        &archive.url(),
        false,
    );
    o.args(["--ca-bundle", "/nonexistent/ca.pem"]);
    Case::new("TLS", "--ca-bundle /nonexistent/ca.pem", o)
        .exits(4, "cannot read CA bundle")
        .check();
}

// --- Archive contents ------------------------------------------------------------------

#[test]
fn a_foreign_file_in_wals() {
    let (archive, dir) = with_wal("bad-foreign-object");
    for key in [
        "wals/0000000100000000/README.txt",
        "wals/0000000100000000/000000010000000000000001.gz.tmp",
        "wals/notes",
    ] {
        archive.s3.put_object(
            &archive.bucket,
            &format!("{}/{}/{key}", archive.prefix, archive.server),
            b"hello",
        );
    }
    let dest = dir.join("RECOVERYXLOG");
    let spool = dir.join("spool").display().to_string();
    let (o, b) = both(
        &archive,
        "barman-cloud-wal-restore",
        &["-p", "4", "--spool-dir", &spool],
        &[&wal_name(1), &dest.display().to_string()],
    );
    Case::new(
        "archive contents",
        "wal-restore -p 4 next to README.txt, NAME.gz.tmp and wals/notes in the archive",
        o,
    )
    .barman(b)
    .exits(0, "")
    .check();
    assert!(fs::read(&dest).unwrap() == fs::read(dir.join(wal_name(1))).unwrap());
}

/// An archive with `backup.info` of the sample's backup replaced by `text`.
fn with_backup_info(name: &str, text: &[u8]) -> Archive {
    let sample = sample_backup();
    let archive = fresh(name);
    let original = sample.archive.s3.get_object(
        &sample.archive.bucket,
        &format!("cluster/pg/base/{}/backup.info", sample.id),
    );
    assert!(!original.is_empty());
    archive.s3.put_object(
        &archive.bucket,
        &format!("cluster/pg/base/{}/backup.info", sample.id),
        text,
    );
    archive
}

fn sample_info() -> String {
    let sample = sample_backup();
    String::from_utf8(sample.archive.s3.get_object(
        &sample.archive.bucket,
        &format!("cluster/pg/base/{}/backup.info", sample.id),
    ))
    .expect("backup.info is UTF-8")
}

#[test]
fn a_backup_info_with_an_unknown_field() {
    let text = format!("{}flux_capacitor=1.21\n", sample_info());
    let archive = with_backup_info("bad-info-field", text.as_bytes());
    let (o, b) = both(&archive, "barman-cloud-backup-list", &[], &[]);
    Case::new(
        "archive contents",
        "backup.info with an unknown field flux_capacitor=1.21",
        o,
    )
    .barman(b)
    .exits(1, "flux_capacitor")
    .check();
}

#[test]
fn a_backup_info_that_is_not_utf8() {
    let mut text = sample_info().into_bytes();
    text.extend_from_slice(b"backup_name=caf\xe9\n");
    let archive = with_backup_info("bad-info-encoding", &text);
    let (o, b) = both(&archive, "barman-cloud-backup-list", &[], &[]);
    // Barman skips the backup with a warning and lists the others; so does barnacle.
    let r = Case::new(
        "archive contents",
        "backup.info with a Latin-1 byte (backup_name=caf\\xe9): the backup is skipped",
        o,
    )
    .barman(b)
    .exits(0, "not valid UTF-8")
    .check();
    assert_eq!(r.stdout.lines().count(), 1, "only the header: {r:#?}");
}

/// An archive with segment 1 stored as `.gz` with `body` and content digest (BLAKE3) `sha`.
fn with_damaged_wal(
    name: &str,
    damage: impl Fn(&[u8]) -> Vec<u8>,
    sha: Option<&str>,
) -> (Archive, PathBuf) {
    let (archive, dir) = with_wal(name);
    let key = archive.wal_key(&wal_name(1), ".gz");
    let body = archive.s3.get_object(&archive.bucket, &key);
    let meta = archive.s3.head_metadata(&archive.bucket, &key);
    let recorded = meta
        .get("barnacle-blake3")
        .cloned()
        .expect("digest metadata");
    let sha = sha.unwrap_or(&recorded).to_string();
    archive.s3.put_object_with_metadata(
        &archive.bucket,
        &key,
        &damage(&body),
        &[("barnacle-blake3", &sha)],
    );
    (archive, dir)
}

fn damaged_restore(
    kind: &'static str,
    input: &'static str,
    archive: &Archive,
    dir: &Path,
    cause: &'static str,
    with_barman: bool,
) {
    let dest = dir.join("RECOVERYXLOG");
    let (o, b) = both(
        archive,
        "barman-cloud-wal-restore",
        &[],
        &[&wal_name(1), &dest.display().to_string()],
    );
    let mut case = Case::new(kind, input, o).exits(4, cause);
    if with_barman {
        case = case.barman(b);
    }
    case.check();
    assert!(
        !dest.exists() || with_barman,
        "{input}: a partial WAL was left"
    );
    let temps: Vec<String> = entries(dir)
        .into_iter()
        .filter(|n| n.contains("barnacle-tmp"))
        .collect();
    assert!(temps.is_empty(), "{input}: temp files left: {temps:?}");
}

#[test]
fn a_truncated_compressed_wal() {
    let (archive, dir) = with_damaged_wal("bad-truncated-wal", |b| b[..b.len() / 2].to_vec(), None);
    damaged_restore(
        "archive contents",
        "wal-restore of a .gz object cut in half",
        &archive,
        &dir,
        "corrupt or truncated",
        true,
    );
}

#[test]
fn a_corrupt_compressed_wal() {
    let (archive, dir) = with_damaged_wal(
        "bad-corrupt-wal",
        |b| {
            let mut b = b.to_vec();
            let mid = b.len() / 2;
            for x in &mut b[mid..mid + 64] {
                *x ^= 0x55;
            }
            b
        },
        None,
    );
    damaged_restore(
        "archive contents",
        "wal-restore of a .gz object with 64 bytes flipped mid-stream",
        &archive,
        &dir,
        "corrupt",
        true,
    );
}

#[test]
fn a_wal_whose_checksum_does_not_match() {
    let zeros = "0".repeat(64);
    let (archive, dir) = with_damaged_wal("bad-checksum", |b| b.to_vec(), Some(&zeros));
    damaged_restore(
        "archive contents",
        "wal-restore of an object whose recorded digest differs",
        &archive,
        &dir,
        "checksum mismatch",
        false,
    );
}

#[test]
fn a_truncated_base_backup_archive() {
    let sample = sample_backup();
    let archive = clone_archive(&sample.archive, "bad-truncated-tar");
    let key = format!("cluster/pg/base/{}/data.tar.gz", sample.id);
    let body = archive.s3.get_object(&archive.bucket, &key);
    archive
        .s3
        .put_object(&archive.bucket, &key, &body[..body.len() * 2 / 3]);
    let dir = harness::scratch("bad-truncated-tar");
    let (o, b) = restore_pair(&archive, &sample.id, &dir);
    Case::new(
        "archive contents",
        "barnacle restore of a backup whose data.tar.gz is cut at 2/3",
        o,
    )
    .barman(b)
    .exits(4, "data.tar.gz")
    .check();
    assert!(
        !dir.join("ours/global/pg_control").exists(),
        "a startable data directory was left"
    );
}

/// barnacle's and Barman's `barman-cloud-restore ID DIR/{ours,barman}`.
fn restore_pair(archive: &Archive, id: &str, dir: &Path) -> (Command, Command) {
    let mut o = archive.barnacle("barman-cloud-restore", &[]);
    o.arg(id).arg(dir.join("ours"));
    let mut b = archive.barman("barman-cloud-restore", &[]);
    b.arg(id).arg(dir.join("barman"));
    (o, b)
}

// --- Backup ids ------------------------------------------------------------------------

#[test]
fn show_of_a_backup_id_that_does_not_exist() {
    let sample = sample_backup();
    let (o, b) = both(
        &sample.archive,
        "barman-cloud-backup-show",
        &[],
        &["20200101T000000"],
    );
    Case::new(
        "backup id",
        "barman-cloud-backup-show 20200101T000000 (no such backup)",
        o,
    )
    .barman(b)
    .exits(1, "20200101T000000 for server pg does not exist")
    .check();
}

#[test]
fn restore_of_a_backup_id_that_does_not_exist() {
    let sample = sample_backup();
    let dir = harness::scratch("bad-restore-id");
    let (o, b) = restore_pair(&sample.archive, "20200101T000000", &dir);
    Case::new(
        "backup id",
        "barman-cloud-restore 20200101T000000 DIR (no such backup)",
        o,
    )
    .barman(b)
    .exits(1, "20200101T000000")
    .check();
    assert!(!dir.join("ours").exists(), "a directory was created");
}

#[test]
fn delete_of_a_backup_id_that_does_not_exist() {
    let sample = sample_backup();
    let archive = clone_archive(&sample.archive, "bad-delete-id");
    let (o, b) = both(
        &archive,
        "barman-cloud-backup-delete",
        &["-b", "20200101T000000"],
        &[],
    );
    Case::new(
        "backup id",
        "barman-cloud-backup-delete -b 20200101T000000 (no such backup)",
        o,
    )
    .barman(b)
    .exits(0, "")
    .check();
    assert_eq!(
        archive.keys(),
        sample.archive.keys(),
        "something was deleted"
    );
}

#[test]
fn keep_status_of_a_backup_id_that_does_not_exist() {
    let sample = sample_backup();
    let (o, b) = both(
        &sample.archive,
        "barman-cloud-backup-keep",
        &["--status"],
        &["20200101T000000"],
    );
    // Barman reads the (absent) keep annotation without looking for the backup.
    let r = Case::new(
        "backup id",
        "barman-cloud-backup-keep --status 20200101T000000 (no such backup)",
        o,
    )
    .barman(b)
    .exits(0, "")
    .check();
    assert_eq!(r.stdout, "Keep: nokeep\n");
}

#[test]
fn keep_of_a_backup_id_that_does_not_exist() {
    let sample = sample_backup();
    let archive = clone_archive(&sample.archive, "bad-keep-id");
    let (o, b) = both(
        &archive,
        "barman-cloud-backup-keep",
        &["--target", "standalone"],
        &["20200101T000000"],
    );
    Case::new(
        "backup id",
        "barman-cloud-backup-keep --target standalone 20200101T000000 (no such backup)",
        o,
    )
    .barman(b)
    .exits(4, "20200101T000000")
    .check();
    assert_eq!(
        archive.keys(),
        sample.archive.keys(),
        "an annotation was written"
    );
}

// --- Options ---------------------------------------------------------------------------

#[test]
fn conflicting_compressions() {
    let (archive, dir) = with_wal("bad-two-compressions");
    let seg = dir.join(wal_name(1)).display().to_string();
    let (o, b) = both(
        &archive,
        "barman-cloud-wal-archive",
        &["--gzip", "--bzip2"],
        &[&seg],
    );
    Case::new("options", "barman-cloud-wal-archive --gzip --bzip2", o)
        .barman(b)
        .exits(3, "bzip2")
        .check();
}

#[test]
fn keep_release_with_status() {
    let sample = sample_backup();
    let (o, b) = both(
        &sample.archive,
        "barman-cloud-backup-keep",
        &["--release", "--status"],
        &[&sample.id],
    );
    Case::new("options", "barman-cloud-backup-keep --release --status", o)
        .barman(b)
        .exits(3, "status")
        .check();
}

#[test]
fn delete_with_a_backup_id_and_a_policy() {
    let sample = sample_backup();
    let (o, b) = both(
        &sample.archive,
        "barman-cloud-backup-delete",
        &["-b", &sample.id, "-r", "REDUNDANCY 1"],
        &[],
    );
    Case::new(
        "options",
        "barman-cloud-backup-delete -b ID -r 'REDUNDANCY 1'",
        o,
    )
    .barman(b)
    .exits(3, "retention-policy")
    .check();
}

#[test]
fn an_unparsable_retention_policy() {
    let sample = sample_backup();
    let (o, b) = both(
        &sample.archive,
        "barman-cloud-backup-delete",
        &["-r", "FOREVER AND EVER"],
        &[],
    );
    Case::new(
        "options",
        "barman-cloud-backup-delete -r 'FOREVER AND EVER'",
        o,
    )
    .barman(b)
    .exits(3, "FOREVER")
    .check();
}

#[test]
fn a_read_timeout_that_is_not_a_number() {
    let (archive, dir) = with_wal("bad-read-timeout");
    let seg = dir.join(wal_name(1)).display().to_string();
    let (o, b) = both(
        &archive,
        "barman-cloud-wal-archive",
        &["--read-timeout", "soon"],
        &[&seg],
    );
    Case::new("options", "barman-cloud-wal-archive --read-timeout soon", o)
        .barman(b)
        .exits(3, "read-timeout")
        .check();
}

// --- Restore destination ---------------------------------------------------------------

#[test]
fn restore_into_a_non_empty_directory() {
    let sample = sample_backup();
    let dir = harness::scratch("bad-non-empty");
    for d in ["ours", "barman"] {
        fs::create_dir(dir.join(d)).unwrap();
        fs::write(dir.join(d).join("precious.txt"), b"keep me").unwrap();
    }
    let (o, b) = restore_pair(&sample.archive, &sample.id, &dir);
    Case::new(
        "restore destination",
        "barman-cloud-restore into a directory holding a file",
        o,
    )
    .barman(b)
    .exits(1, "not empty")
    .check();
    assert_eq!(
        entries(&dir.join("ours")),
        ["precious.txt"],
        "the directory was touched"
    );
}

#[test]
fn restore_into_an_empty_existing_directory() {
    let sample = sample_backup();
    let dir = harness::scratch("bad-empty-dir");
    for d in ["ours", "barman"] {
        fs::create_dir(dir.join(d)).unwrap();
    }
    let (o, b) = restore_pair(&sample.archive, &sample.id, &dir);
    Case::new(
        "restore destination",
        "barman-cloud-restore into an existing empty directory",
        o,
    )
    .barman(b)
    .exits(0, "")
    .check();
    assert!(dir.join("ours/global/pg_control").exists() && dir.join("ours/backup_label").exists());
}

#[test]
fn restore_onto_a_regular_file() {
    let sample = sample_backup();
    let dir = harness::scratch("bad-dest-file");
    for d in ["ours", "barman"] {
        fs::write(dir.join(d), b"a file").unwrap();
    }
    let (o, b) = restore_pair(&sample.archive, &sample.id, &dir);
    Case::new(
        "restore destination",
        "barman-cloud-restore onto a path that is a regular file",
        o,
    )
    .barman(b)
    .exits(4, "not a directory")
    .check();
    assert_eq!(fs::read(dir.join("ours")).unwrap(), b"a file");
}

// --- PostgreSQL ------------------------------------------------------------------------

#[test]
fn a_postgresql_that_refuses_the_connection() {
    let archive = fresh("bad-pg-down");
    let port = harness::free_port().to_string();
    let args = ["-h", "127.0.0.1", "-p", &port, "-U", "postgres"];
    let (o, b) = both(&archive, "barman-cloud-backup", &args, &[]);
    Case::new(
        "PostgreSQL",
        "barman-cloud-backup to a port where PostgreSQL does not listen",
        o,
    )
    .barman(b)
    .exits(1, "connect")
    .check();
    assert!(archive.keys().is_empty(), "something was stored");
}

#[test]
fn a_postgresql_role_that_does_not_exist() {
    let sample = sample_backup();
    let archive = fresh("bad-pg-role");
    let mut conn = connection(&sample.pg);
    let user = conn.iter().position(|a| a == "-U").expect("-U") + 1;
    conn[user] = "no_such_role".into();
    let args: Vec<&str> = conn.iter().map(String::as_str).collect();
    let (o, b) = both(&archive, "barman-cloud-backup", &args, &[]);
    Case::new("PostgreSQL", "barman-cloud-backup -U no_such_role", o)
        .barman(b)
        .exits(1, "no_such_role")
        .check();
    assert!(archive.keys().is_empty(), "something was stored");
}

// --- TLS helpers -----------------------------------------------------------------------

/// A second, unrelated CA (PEM).
fn other_ca() -> PathBuf {
    static CA: OnceLock<PathBuf> = OnceLock::new();
    CA.get_or_init(|| {
        let dir = harness::scratch("other-ca");
        harness::run_ok(
            Command::new("openssl")
                .current_dir(&dir)
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                ])
                .args([
                    "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "30",
                ])
                .args([
                    "-subj",
                    "/CN=some other CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                ]),
        );
        dir.join("ca.pem")
    })
    .clone()
}

/// An HTTPS server on loopback with a certificate for IP 127.0.0.1 only (no DNS name), signed
/// by its own CA, answering every request as AWS STS answers an expired web-identity token
/// (400 `ExpiredTokenException`), with a length, so that no client waits for more.
const STS_REFUSER: &str = r#"
import http.server, ssl, sys
BODY = (b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
        b'<Type>Sender</Type><Code>ExpiredTokenException</Code>'
        b'<Message>Token expired: current date/time 1764288000 must be before the '
        b'expiration date/time 1764284400</Message></Error>'
        b'<RequestId>barnacle-test</RequestId></ErrorResponse>')
class Refuse(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(400)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
    do_GET = do_POST = answer
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Refuse)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[2], sys.argv[3])
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"#;

/// The server [`STS_REFUSER`] runs.
struct HttpsRefuser {
    endpoint: String,
    ca: PathBuf,
    child: Child,
}

impl Drop for HttpsRefuser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn https_refuser() -> HttpsRefuser {
    let dir = harness::scratch("https-refuser");
    let openssl = |args: &[&str]| {
        harness::run_ok(Command::new("openssl").current_dir(&dir).args(args));
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "30",
        "-subj",
        "/CN=refuser CA",
    ]);
    ca.extend([
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(&ca);
    let mut req = vec!["req"];
    req.extend(ec);
    req.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&req);
    fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n\
         extendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "30",
        "-extfile",
        "server.ext",
    ]);
    let port = harness::free_port();
    fs::write(dir.join("sts.py"), STS_REFUSER).unwrap();
    let child = harness::barman("python")
        .current_dir(&dir)
        .args(["sts.py", &port.to_string(), "server.pem", "server.key"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the STS refuser");
    let up = harness::poll(Duration::from_secs(10), Duration::from_millis(20), || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    assert!(up.is_some(), "the STS refuser did not start");
    HttpsRefuser {
        endpoint: format!("https://127.0.0.1:{port}"),
        ca: dir.join("ca.pem"),
        child,
    }
}

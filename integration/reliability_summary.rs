//! The reliability summary: every fault, kill, bad input or exhaustion case a test runs is
//! recorded as one JSON line, and the records are rendered as `reliability.md` (the whole
//! page) and `readme-section.md` (the summary and the bad-input table, for README.md).
//!
//! Records go to `$BARNACLE_RELIABILITY_DIR` when set (scripts/test.sh sets
//! `target/reliability`, and after a full, successful run `scripts/reliability-docs.sh`
//! copies the page to `docs/reliability.md` and the section into README.md between its
//! `reliability-summary` markers), else to `<run root>/reliability`. Each test process
//! appends to its own `records-<pid>.jsonl` and, after every record, renders all the records
//! of the directory (every process's) again, so the page is complete when the last test
//! ends, whichever it is.
//!
//! Secrets: every barnacle command the suite runs through [`crate::support::run`] is
//! scanned ([`scan`]): its stdout and stderr must not contain the harness's store
//! credentials ([`HARNESS_SECRETS`]) nor any credential set in the command's environment
//! (`AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `PGPASSWORD`, the web-identity token
//! file's content); a leak fails the test at once. The count is kept per process in
//! `scanned-<pid>.json` and shown on the page.
//!
//! To add rows (SIGKILL storms, fuzzing): call [`record`] once per case with a new `area`
//! (areas are shown in [`AREA_ORDER`] first, others after, by name) and a `kind`; the
//! summary groups by area and kind and sums the figures. A test asserts its invariants
//! itself (nothing lost, nothing corrupt, nothing leaked) and records what it measured.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use serde_json::{Value, json};

use crate::harness;
use crate::support::Ran;

/// Areas in the order the page shows them.
pub const AREA_ORDER: &[&str] = &[
    "S3 faults",
    "resource exhaustion",
    "bad input",
    "SIGKILL storms",
    "fuzzing",
];

/// One case. Figures a case did not measure stay 0.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// The part of the campaign: "S3 faults", "bad input", …
    pub area: &'static str,
    /// The group within the area (the fault kind, the input category).
    pub kind: String,
    /// What was done: the input or the scenario.
    pub case: String,
    /// Faults injected, kills sent, inputs tried (1 for a bad input).
    pub injected: u64,
    /// barnacle's exit code (the last run of the case), if a command ran.
    pub exit: Option<i32>,
    /// Barman's exit code for the same input, where Barman's tool was run too.
    pub barman_exit: Option<i32>,
    /// The one-line error barnacle printed, or what happened when it succeeded.
    pub result: String,
    /// WAL files or objects checked byte-for-byte (directly or by BLAKE3 digest) after the case.
    pub verified: u64,
    /// WAL segments acknowledged (exit 0) but not restorable intact.
    pub wal_lost: u64,
    /// Objects (or files) found corrupt or partial after the case.
    pub corrupt: u64,
    /// Outputs (stdout, stderr) scanned for credentials.
    pub scanned: u64,
    /// Outputs in which a credential appeared.
    pub leaked: u64,
}

impl Record {
    pub fn new(area: &'static str, kind: impl Into<String>, case: impl Into<String>) -> Record {
        Record {
            area,
            kind: kind.into(),
            case: case.into(),
            ..Record::default()
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "area": self.area,
            "kind": self.kind,
            "case": self.case,
            "injected": self.injected,
            "exit": self.exit,
            "barman_exit": self.barman_exit,
            "result": self.result,
            "verified": self.verified,
            "wal_lost": self.wal_lost,
            "corrupt": self.corrupt,
            "scanned": self.scanned,
            "leaked": self.leaked,
        })
    }
}

/// Where records and the rendered page go.
pub fn dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os("BARNACLE_RELIABILITY_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| harness::root().join("reliability"));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        dir
    })
    .clone()
}

static LOCK: Mutex<()> = Mutex::new(());

/// Appends one record and re-renders the page.
pub fn record(r: Record) {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = dir();
    let file = dir.join(format!("records-{}.jsonl", std::process::id()));
    let mut line = r.to_json().to_string();
    line.push('\n');
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .unwrap_or_else(|e| panic!("append to {}: {e}", file.display()));
    write_pages(&dir);
}

/// Renders the page and the README section again from the records already in the directory,
/// for records written outside this binary (scripts/fuzz.sh's). Not a check: a step of
/// scripts/reliability-docs.sh, which runs it with `--ignored --exact`.
#[test]
#[ignore = "a rendering step of scripts/reliability-docs.sh, not a check"]
fn render_pages() {
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = dir();
    assert!(
        !load(&dir).is_empty(),
        "no records in {} to render",
        dir.display()
    );
    write_pages(&dir);
}

/// Renders the page and the README section from every record and scan count of `dir`.
fn write_pages(dir: &Path) {
    let records = load(dir);
    let scans = load_scans(dir);
    for (name, text) in [
        ("reliability.md", render(&records, scans)),
        ("readme-section.md", render_readme(&records, scans)),
    ] {
        let tmp = dir.join(format!(".{name}.{}", std::process::id()));
        fs::write(&tmp, text)
            .and_then(|()| fs::rename(&tmp, dir.join(name)))
            .unwrap_or_else(|e| panic!("write {}/{name}: {e}", dir.display()));
    }
}

/// The credentials the harness gives its stores: SeaweedFS's admin and read-only
/// identities (integration/harness/s3.rs) and Ceph RGW's user (integration/harness/ceph.rs).
/// `security::the_scanned_secrets_are_the_harness_s_own` checks them against the running
/// SeaweedFS.
pub const HARNESS_SECRETS: &[&str] = &[
    "barnacle-it-secret",
    crate::harness::SEAWEED_READ_ONLY.1,
    "testsecret",
];

/// Environment variables whose values are credentials.
const SECRET_VARS: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "PGPASSWORD",
    "ACCESS_SECRET_KEY",
];

/// The credentials `cmd` carries: [`HARNESS_SECRETS`], the values of credential variables
/// set on it, and the content of the web-identity token file it names.
pub fn secrets_of(cmd: &Command) -> Vec<String> {
    let mut out: Vec<String> = HARNESS_SECRETS.iter().map(|s| s.to_string()).collect();
    for (name, value) in cmd.get_envs() {
        let (Some(name), Some(value)) = (name.to_str(), value.and_then(|v| v.to_str())) else {
            continue;
        };
        if SECRET_VARS.contains(&name) {
            out.push(value.to_string());
        }
        // A proxy's password, in `http://user:password@host:port`.
        if name.to_ascii_uppercase().ends_with("_PROXY")
            && let Some((userinfo, _)) =
                value.split_once("://").and_then(|(_, r)| r.split_once('@'))
            && let Some((_, password)) = userinfo.split_once(':')
        {
            out.push(password.to_string());
        }
        if name == "AWS_WEB_IDENTITY_TOKEN_FILE"
            && let Ok(token) = fs::read_to_string(value)
        {
            out.push(token.trim().to_string());
        }
    }
    // Too short to be a credential, or the masked form itself.
    out.retain(|s| s.len() >= 6);
    out.sort();
    out.dedup();
    out
}

/// Whether `cmd` runs barnacle (the harness's copy, under any of its names).
fn is_barnacle(cmd: &Command) -> bool {
    Path::new(cmd.get_program()).parent() == Some(crate::harness::root().join("bin").as_path())
}

/// Scans the output of a barnacle command for the credentials it was given (see the module
/// header); panics on a leak. Other programs (Barman, psql) are not ours to judge.
pub fn scan(cmd: &Command, ran: &Ran) {
    if !is_barnacle(cmd) {
        return;
    }
    let secrets = secrets_of(cmd);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let what = format!("{:?}", cmd.get_program());
    let n = assert_no_secret(&what, ran, &secrets);
    count_scanned(n);
}

/// Scans a log file (a sidecar's, PostgreSQL's) for `secrets`; returns 1 (one output).
pub fn scan_file(path: &Path, secrets: &[&str]) -> u64 {
    let text = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let text = String::from_utf8_lossy(&text);
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        assert!(
            !text.contains(secret),
            "{}: a credential ({} characters) appears in it",
            path.display(),
            secret.len()
        );
    }
    count_scanned(1);
    1
}

/// Adds `n` outputs to this process's suite-wide scan count and re-renders.
fn count_scanned(n: u64) {
    static SCANNED: AtomicU64 = AtomicU64::new(0);
    let total = SCANNED.fetch_add(n, Ordering::SeqCst) + n;
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = dir();
    let file = dir.join(format!("scanned-{}.json", std::process::id()));
    let tmp = dir.join(format!(".scanned-{}.json", std::process::id()));
    // Another thread may have written a larger count meanwhile: keep the larger.
    let current = fs::read_to_string(&file)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .map_or(0, |v| n_of(&v, "scanned"));
    let total = total.max(current);
    fs::write(&tmp, json!({ "scanned": total }).to_string())
        .and_then(|()| fs::rename(&tmp, &file))
        .unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
    write_pages(&dir);
}

/// Outputs scanned suite-wide, summed over every process that wrote to `dir`.
fn load_scans(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("scanned-") && n.ends_with(".json"))
        })
        .filter_map(|p| fs::read_to_string(p).ok())
        .filter_map(|t| serde_json::from_str::<Value>(&t).ok())
        .map(|v| n_of(&v, "scanned"))
        .sum()
}

fn n_of(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap_or(0)
}

/// Asserts that no credential appears in a command's output; returns how many outputs
/// (stdout and stderr) were scanned.
pub fn assert_no_secret(what: &str, ran: &Ran, secrets: &[&str]) -> u64 {
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        assert!(
            !ran.stdout.contains(secret) && !ran.stderr.contains(secret),
            "{what}: a credential ({} characters) appears in the output: {ran:#?}",
            secret.len()
        );
    }
    2
}

/// Every record of the directory, from every process that wrote there.
fn load(dir: &std::path::Path) -> Vec<Value> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    for f in files {
        let text = fs::read_to_string(&f).unwrap_or_default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: bad record {line:?}: {e}", f.display()));
            out.push(v);
        }
    }
    out
}

fn area_rank(area: &str) -> (usize, String) {
    let rank = AREA_ORDER
        .iter()
        .position(|a| *a == area)
        .unwrap_or(AREA_ORDER.len());
    (rank, area.to_string())
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn n(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap_or(0)
}

fn code(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_i64)
        .map(|c| c.to_string())
        .unwrap_or_else(|| "—".into())
}

/// Makes text safe in a Markdown table cell.
fn cell(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.replace('|', "\\|")
}

#[derive(Default)]
struct Sum {
    cases: u64,
    injected: u64,
    verified: u64,
    wal_lost: u64,
    corrupt: u64,
    scanned: u64,
    leaked: u64,
}

impl Sum {
    fn add(&mut self, v: &Value) {
        self.cases += 1;
        self.injected += n(v, "injected");
        self.verified += n(v, "verified");
        self.wal_lost += n(v, "wal_lost");
        self.corrupt += n(v, "corrupt");
        self.scanned += n(v, "scanned");
        self.leaked += n(v, "leaked");
    }

    fn row(&self, first: &str, second: &str) -> String {
        format!(
            "| {first} | {second} | {} | {} | {} | {} | {} | {} | {} |\n",
            self.cases,
            self.injected,
            self.verified,
            self.wal_lost,
            self.corrupt,
            self.scanned,
            self.leaked
        )
    }
}

/// Records sorted by area (in [`AREA_ORDER`]), kind and case.
fn sorted(records: &[Value]) -> Vec<&Value> {
    let mut records: Vec<&Value> = records.iter().collect();
    records.sort_by(|a, b| {
        (area_rank(s(a, "area")), s(a, "kind"), s(a, "case")).cmp(&(
            area_rank(s(b, "area")),
            s(b, "kind"),
            s(b, "case"),
        ))
    });
    records
}

/// The summary table: one row per area and kind, a total, and the suite-wide scan.
fn summary_table(records: &[&Value], scans: u64) -> String {
    let mut by_kind: BTreeMap<((usize, String), String), Sum> = BTreeMap::new();
    let mut total = Sum::default();
    for r in records {
        by_kind
            .entry((area_rank(s(r, "area")), s(r, "kind").to_string()))
            .or_default()
            .add(r);
        total.add(r);
    }
    let mut out = String::from(
        "| area | kind | cases | injected | verified | WAL lost | corrupt objects | outputs scanned | leaked secrets |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for (((_, area), kind), sum) in &by_kind {
        out.push_str(&sum.row(area, kind));
    }
    out.push_str(&total.row("**total**", ""));
    out.push_str(&format!(
        "\nEvery barnacle command the suite ran was scanned too (stdout and stderr, {scans} \
         outputs, for the harness's store credentials and every credential in the command's \
         environment): 0 leaked, or the suite would have failed.\n"
    ));
    out
}

/// The page: a summary by area and kind, then every case of each area.
fn render(records: &[Value], scans: u64) -> String {
    let records = sorted(records);
    let mut by_area: BTreeMap<(usize, String), Vec<&Value>> = BTreeMap::new();
    for r in &records {
        by_area.entry(area_rank(s(r, "area"))).or_default().push(r);
    }

    let mut out = String::new();
    out.push_str(
        "# Reliability\n\n\
         Generated by the test suite (`scripts/test.sh` renders it from the records every \
         reliability test writes; see `integration/reliability_summary.rs`): do not edit by \
         hand. Each case is a test that fails loudly when its invariants break, so a page \
         exists only when every figure below held.\n\n\
         *Injected*: faults injected by the fault proxy (S3 faults), kills sent (SIGKILL \
         storms), conditions created (resource exhaustion), inputs tried (bad input, \
         security, fuzzing). *Verified*: WAL segments and objects checked byte-for-byte \
         (directly or by BLAKE3 digest) afterwards. *Scanned*: outputs (stdout and stderr \
         of barnacle, log files) searched for the test credentials (secret keys, session \
         token, web-identity token, PostgreSQL password).\n\n\
         ## Summary\n\n",
    );
    out.push_str(&summary_table(&records, scans));

    for ((_, area), rows) in &by_area {
        out.push_str(&format!(
            "\n## {}{}\n\n",
            area[..1].to_uppercase(),
            &area[1..]
        ));
        out.push_str(
            "| # | kind | case | injected | exit | Barman | result |\n\
             |---|---|---|---|---|---|---|\n",
        );
        for (i, r) in rows.iter().enumerate() {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                i + 1,
                cell(s(r, "kind")),
                cell(s(r, "case")),
                n(r, "injected"),
                code(r, "exit"),
                code(r, "barman_exit"),
                cell(&strip_run_paths(s(r, "result"))),
            ));
        }
    }
    out
}

/// The README's section (between its `reliability-summary` markers): the summary, then the
/// bad-input table (input → message → exit code).
fn render_readme(records: &[Value], scans: u64) -> String {
    let records = sorted(records);
    let mut out = String::from(
        "<!-- generated by the test suite (integration/reliability_summary.rs, \
         scripts/reliability-docs.sh): do not edit -->\n\n",
    );
    out.push_str(&summary_table(&records, scans));
    let bad: Vec<&&Value> = records
        .iter()
        .filter(|r| s(r, "area") == "bad input")
        .collect();
    if !bad.is_empty() {
        out.push_str(
            "\n#### Bad input\n\n\
             Each row is a test; *Barman* is the exit code of Barman 3.19's tool for the same \
             input, where it takes it.\n\n\
             | # | input | message | exit | Barman |\n|---|---|---|---|---|\n",
        );
        for (i, r) in bad.iter().enumerate() {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                i + 1,
                cell(s(r, "case")),
                cell(&strip_run_paths(s(r, "result"))),
                code(r, "exit"),
                code(r, "barman_exit"),
            ));
        }
    }
    out.push_str("\nEvery case, with the faults and the figures: `docs/reliability.md`.\n");
    out
}

/// Replaces the test run's scratch paths (`/tmp/barnacle-it-PID/…`) and loopback ports,
/// which change with every run, by placeholders.
fn strip_run_paths(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("/tmp/barnacle-it-") {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '\'' | '"' | ',' | ')' | ':'))
            .unwrap_or(tail.len());
        out.push_str("DIR");
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

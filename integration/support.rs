//! Helpers shared by the WAL tests: running commands and checking their
//! output, an archive location on a real S3 server, and real WAL segments.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use crate::harness::{self, PgCluster, S3Kind, S3Server};

/// What a finished command gave.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to the end. A barnacle command's output is scanned for the credentials it was
/// given: a leak fails the test (see `reliability_summary::scan`).
pub fn run(cmd: &mut Command) -> Ran {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let ran = Ran {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    crate::reliability_summary::scan(cmd, &ran);
    ran
}

impl Ran {
    /// Panics unless the command exited 0.
    pub fn ok(self, what: &str) -> Ran {
        assert_eq!(self.code, 0, "{what} failed: {self:#?}");
        self
    }

    /// Asserts the failure was reported as exactly one line on stderr naming
    /// `cause`, with no panic or backtrace.
    pub fn one_line_error(&self, cause: &str) {
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one line on stderr, got: {:?}",
            self.stderr
        );
        assert!(
            lines[0].to_lowercase().contains(&cause.to_lowercase()),
            "stderr does not name {cause:?}: {:?}",
            self.stderr
        );
        for bad in ["panicked", "backtrace", "RUST_BACKTRACE", "Traceback"] {
            assert!(
                !self.stderr.contains(bad),
                "stderr has {bad}: {}",
                self.stderr
            );
        }
    }
}

/// One archive location: a fresh bucket on a real S3 server, a key prefix and
/// a server name, with the commands to reach it.
pub struct Archive {
    pub s3: &'static S3Server,
    pub bucket: String,
    pub prefix: String,
    pub server: String,
}

impl Archive {
    pub fn new(kind: S3Kind, name: &str) -> Archive {
        let s3 = harness::s3(kind);
        let bucket = harness::unique_bucket(name);
        s3.create_bucket(&bucket);
        Archive {
            s3,
            bucket,
            prefix: "cluster".into(),
            server: "pg".into(),
        }
    }

    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    /// `barnacle` under `name` with the store's endpoint and credentials:
    /// `NAME --endpoint-url E [args...] URL SERVER` (positional args follow).
    pub fn barnacle(&self, name: &str, args: &[&str]) -> Command {
        let mut cmd = harness::barnacle(name);
        cmd.envs(self.s3.env())
            .arg("--endpoint-url")
            .arg(self.s3.endpoint())
            .args(args)
            .arg(self.url())
            .arg(&self.server);
        cmd
    }

    /// The same for a Barman tool from the venv.
    pub fn barman(&self, tool: &str, args: &[&str]) -> Command {
        let mut cmd = harness::barman(tool);
        cmd.envs(self.s3.barman_env())
            .arg("--endpoint-url")
            .arg(self.s3.endpoint())
            .args(args)
            .arg(self.url())
            .arg(&self.server);
        cmd
    }

    /// A shell command line for postgresql.conf running barnacle's `name`.
    pub fn command_line(&self, name: &str, args: &str) -> String {
        format!(
            "{} --endpoint-url {} {args}",
            harness::bin_dir().join(name).display(),
            self.s3.endpoint()
        )
    }

    /// A PostgreSQL cluster in `dir` archiving into this archive with walpush.
    pub fn archiving_cluster(&self, dir: &Path) -> PgCluster {
        let archive_command = format!(
            "{} {} {} %p",
            self.command_line("walpush", ""),
            self.url(),
            self.server
        );
        PgCluster::new(dir, |c| {
            c.set("archive_mode", "on")
                .set("archive_command", &archive_command)
                .envs(self.s3.env());
        })
    }

    /// Every key under the server's prefix.
    pub fn keys(&self) -> Vec<String> {
        self.s3
            .list_keys(&self.bucket, &format!("{}/{}/", self.prefix, self.server))
    }

    /// The key of WAL `name` under `suffix` (`.gz`, or "" for none).
    pub fn wal_key(&self, name: &str, suffix: &str) -> String {
        let hash = if name.ends_with(".history") {
            String::new()
        } else {
            format!("{}/", name[..16].to_uppercase())
        };
        format!("{}/{}/wals/{hash}{name}{suffix}", self.prefix, self.server)
    }
}

/// Runs barnacle's and Barman's `tool` with the same arguments; both must
/// exit `code` and print the same standard output.
pub fn same_output(
    archive: &Archive,
    tool: &str,
    before: &[&str],
    after: &[&str],
    code: i32,
) -> Ran {
    let mut ours: Command = archive.barnacle(tool, before);
    ours.args(after);
    let mut theirs: Command = archive.barman(tool, before);
    theirs.args(after);
    let (ours, theirs) = (run(&mut ours), run(&mut theirs));
    assert_eq!(
        theirs.code, code,
        "Barman's {tool} {before:?} {after:?}: {theirs:#?}"
    );
    assert_eq!(
        ours.code, code,
        "barnacle's {tool} {before:?} {after:?}: {ours:#?}"
    );
    assert_eq!(
        ours.stdout, theirs.stdout,
        "{tool} {before:?} {after:?} prints differently"
    );
    ours
}

/// Real 16 MiB WAL segments from a pgbench run (initialisation and TPC-B
/// traffic), made once per test process.
pub fn real_wal() -> &'static [PathBuf] {
    static SEGMENTS: OnceLock<Vec<PathBuf>> = OnceLock::new();
    SEGMENTS.get_or_init(|| {
        let dir = harness::scratch("real-wal");
        let keep = dir.join("archived");
        fs::create_dir(&keep).expect("create archive dir");
        harness::chown_postgres(&keep);
        let pg = PgCluster::new(&dir.join("pg"), |c| {
            c.set("archive_mode", "on")
                .set("archive_command", format!("cp %p {}/%f", keep.display()));
        });
        pg.pgbench(&["-i", "-s", "8", "-q"]);
        pg.pgbench(&["-c", "2", "-T", "3"]);
        let last = pg.switch_wal();
        pg.wait_archived(&last, Duration::from_secs(60));
        let mut segments: Vec<PathBuf> = fs::read_dir(&keep)
            .expect("list archived WAL")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| is_segment(p))
            .collect();
        segments.sort();
        assert!(
            segments.len() >= 6,
            "pgbench made only {} segments",
            segments.len()
        );
        segments
    })
}

pub fn is_segment(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.len() == 24 && n.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads an HTTP/1.1 answer to its end (the request said `Connection: close`):
/// its status code (0 when there is none) and its body.
pub fn http_response(stream: &mut impl std::io::Read) -> (u16, String) {
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

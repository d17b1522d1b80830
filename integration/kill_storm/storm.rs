//! The storm's machinery: a seeded sequence, the wrapper PostgreSQL runs
//! as `archive_command`/`restore_command`, and killing a spawned command.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness;

/// A deterministic pseudo-random sequence (xorshift64*; seeded).
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }

    /// Uniform in `lo..=hi` milliseconds.
    pub(super) fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }
}

pub(super) fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(
        text.parse()
            .unwrap_or_else(|e| panic!("{name}={text:?}: {e}")),
    )
}

/// The wrapper PostgreSQL runs as `archive_command` / `restore_command`:
/// `storm-wrap STATE KIND COMMAND...`. While `STATE/KIND.storm` exists, each
/// run takes the next line of `STATE/KIND.plan` (a delay in seconds, or `-`
/// for no kill) and SIGKILLs the command after it; a killed run is logged
/// in `STATE/KIND.killed` and started again at once, up to 8 times.
/// `--foreground`: `timeout` kills only the command and reaps it (exit 137),
/// as PostgreSQL reaps a killed command before it runs the next one; without
/// it `timeout` SIGKILLs its whole group, itself included, and the command
/// lingers as a zombie while the retry runs.
const WRAPPER: &str = r#"#!/bin/bash
state=$1 kind=$2
shift 2
for attempt in 1 2 3 4 5 6 7 8 9; do
  delay=-
  if [ "$attempt" -lt 9 ] && [ -e "$state/$kind.storm" ]; then
    n=$( { flock 9; n=$(cat "$state/$kind.count" 2>/dev/null || echo 0); echo $((n + 1)) >"$state/$kind.count"; echo "$n"; } 9>"$state/$kind.lock")
    lines=$(wc -l <"$state/$kind.plan")
    delay=$(sed -n "$((n % lines + 1))p" "$state/$kind.plan")
  fi
  if [ "$delay" = - ]; then
    "$@"
    exit $?
  fi
  timeout --foreground -s KILL "$delay" "$@"
  rc=$?
  if [ "$rc" -ne 137 ] && [ "$rc" -ne 124 ]; then
    exit "$rc"
  fi
  echo "$delay" >>"$state/$kind.killed"
done
"#;

/// The storm's shared state directory and wrapper.
pub(super) struct Storm {
    state: PathBuf,
    wrapper: PathBuf,
}

impl Storm {
    pub(super) fn new(dir: &Path) -> Storm {
        let state = dir.join("storm");
        fs::create_dir_all(&state).expect("storm dir");
        harness::chown_postgres(&state);
        let wrapper = dir.join("storm-wrap");
        fs::write(&wrapper, WRAPPER).expect("write the wrapper");
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).expect("chmod");
        Storm { state, wrapper }
    }

    /// Writes `kind`'s plan: `lines` entries, each a kill after `lo..=hi` ms
    /// with probability `percent`, else none.
    pub(super) fn plan(&self, kind: &str, rng: &mut Rng, percent: u64, lo: u64, hi: u64) {
        let text: String = (0..997)
            .map(|_| {
                if rng.below(100) < percent {
                    format!("{:.3}\n", rng.millis(lo, hi).as_secs_f64())
                } else {
                    "-\n".to_string()
                }
            })
            .collect();
        let path = self.state.join(format!("{kind}.plan"));
        fs::write(&path, text).expect("write plan");
        harness::chown_postgres(&path);
    }

    pub(super) fn set(&self, kind: &str, on: bool) {
        let flag = self.state.join(format!("{kind}.storm"));
        if on {
            fs::write(&flag, b"").expect("storm flag");
        } else {
            let _ = fs::remove_file(&flag);
        }
    }

    pub(super) fn kills(&self, kind: &str) -> u64 {
        fs::read_to_string(self.state.join(format!("{kind}.killed")))
            .map(|t| t.lines().count() as u64)
            .unwrap_or(0)
    }

    /// `storm-wrap STATE KIND` followed by a command line.
    pub(super) fn wrap(&self, kind: &str, command: &str) -> String {
        format!(
            "{} {} {kind} {command}",
            self.wrapper.display(),
            self.state.display()
        )
    }
}

/// Spawns `cmd`, SIGKILLs it after `delay`; true when it was still running
/// (a kill), false when it had already exited.
pub(super) fn kill_after(mut cmd: Command, delay: Duration) -> (bool, Child) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + delay;
    while Instant::now() < deadline {
        if child.try_wait().expect("try_wait").is_some() {
            return (false, child);
        }
        std::thread::sleep(Duration::from_millis(2).min(deadline - Instant::now()));
    }
    let killed = child.try_wait().expect("try_wait").is_none();
    if killed {
        // SAFETY: signalling our own child, not yet reaped.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGKILL);
        }
    }
    let _ = child.wait();
    (killed, child)
}

pub(super) fn http_ok(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.starts_with("HTTP/1.1 200")
}

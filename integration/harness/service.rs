//! Long-lived service processes, tied to the life of the test process.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, and cargo's test
//! threads end after each test. So every service is forked by one dedicated thread that lives
//! as long as the process: [`Service::start`] sends it the `Command` and gets the `Child` back.
//! The child gets `SIGKILL` when that thread (that is, the test process) dies, however it dies.
//! Services run in the foreground (no daemonizing), with stdin from /dev/null and
//! stdout/stderr appended to a log file; dropping a [`Service`] kills it.

use std::fs::{File, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

fn spawner() -> &'static Sender<Job> {
    static SPAWNER: OnceLock<Sender<Job>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        std::thread::Builder::new()
            .name("it-service-spawner".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })
            .expect("start the service spawner thread");
        tx
    })
}

/// A running service process (a direct child of the spawner thread) and its log file.
pub struct Service {
    name: String,
    child: Mutex<Child>,
    log: PathBuf,
}

impl Service {
    /// Starts `cmd` from the spawner thread with PDEATHSIG=SIGKILL, its output appended to `log`.
    /// `cmd` may carry `uid`/`gid`: std runs `pre_exec` after `setuid`, so the signal survives.
    pub fn start(name: &str, mut cmd: Command, log: &Path) -> Service {
        let out = open_log(log);
        let err = out.try_clone().expect("dup log fd");
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: prctl and getppid are async-signal-safe; nothing here allocates.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died between fork and prctl: then nobody will signal us.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let (tx, rx) = channel();
        let desc = format!("{cmd:?}");
        spawner()
            .send(Box::new(move || {
                let _ = tx.send(cmd.spawn());
            }))
            .expect("service spawner thread is gone");
        let child = rx
            .recv()
            .expect("service spawner thread is gone")
            .unwrap_or_else(|e| panic!("cannot start {name}: {desc}: {e}"));
        Service {
            name: name.to_string(),
            child: Mutex::new(child),
            log: log.to_path_buf(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.lock().unwrap_or_else(|e| e.into_inner()).id()
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The exit status if the process has ended, `None` while it runs.
    pub fn exited(&self) -> Option<ExitStatus> {
        self.child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .try_wait()
            .ok()
            .flatten()
    }

    /// Panics, with the log tail, if the process has ended.
    pub fn assert_running(&self) {
        if let Some(status) = self.exited() {
            panic!(
                "{} exited early ({status})\n{}",
                self.name,
                super::log_tail(&self.log, 60)
            );
        }
    }

    /// Sends `signal`, waits up to `timeout` for the exit, then SIGKILLs. Returns the status.
    pub fn stop(&self, signal: libc::c_int, timeout: Duration) -> ExitStatus {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        // SAFETY: plain kill(2) on our own, not yet reaped, child.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        let done = super::poll(timeout, Duration::from_millis(20), || {
            child.try_wait().ok().flatten()
        });
        done.unwrap_or_else(|| {
            let _ = child.kill();
            child.wait().expect("wait for killed service")
        })
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop(libc::SIGKILL, Duration::from_secs(5));
    }
}

fn open_log(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open log {}: {e}", path.display()))
}

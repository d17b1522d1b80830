//! An HTTP/1.1 proxy on loopback in front of a real S3 server that counts
//! the requests passing through and can SIGKILL a process at a chosen one:
//! before forwarding the N-th request, or before forwarding the first
//! request that follows the N-th deletion of a `backup.info`. A kill point
//! is thus a request boundary, the same one whenever the same point is
//! chosen again (the retention executor sends its deletions one by one).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// When to kill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Never: just count.
    Never,
    /// Before forwarding request number N (from 1).
    AtRequest(u64),
    /// Before forwarding the first request after the N-th (from 1) request
    /// that deletes a `backup.info`.
    AfterInfoDeletion(u64),
    /// Before forwarding the `nth` (from 1) request that deletes WAL once
    /// `after_infos` requests have deleted a `backup.info`: in the middle of
    /// the next backup's WAL pass when `nth` > 1 and that pass has `nth`
    /// WAL requests, else in a later pass.
    InWal { after_infos: u64, nth: u64 },
}

#[derive(Debug, Default)]
struct State {
    trigger: Option<Trigger>,
    pid: Option<i32>,
    requests: u64,
    info_deletions: u64,
    killed_at: Option<u64>,
    /// A `backup.info` deletion was the last request forwarded.
    after_info: bool,
    /// Requests deleting WAL forwarded since an `InWal` trigger's
    /// `after_infos` was reached.
    wal_deletions: u64,
}

pub struct KillProxy {
    port: u16,
    state: Arc<Mutex<State>>,
}

/// What one run through the proxy saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub requests: u64,
    pub info_deletions: u64,
    /// The request number the process was killed before, if it was.
    pub killed_at: Option<u64>,
}

impl KillProxy {
    /// Forwards `127.0.0.1:<port>` to `127.0.0.1:<upstream>`.
    pub fn start(upstream: u16) -> KillProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let state: Arc<Mutex<State>> = Arc::default();
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = server.set_nodelay(true);
                let _ = client.set_nodelay(true);
                let (Ok(client_out), Ok(server_in)) = (client.try_clone(), server.try_clone())
                else {
                    continue;
                };
                // Responses flow back untouched.
                std::thread::spawn(move || copy_back(server_in, client_out));
                let state = shared.clone();
                std::thread::spawn(move || forward_requests(client, server, &state));
            }
        });
        KillProxy { port, state }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Arms the proxy (counters reset) for the process started next.
    pub fn arm(&self, trigger: Trigger) {
        let mut s = self.state.lock().expect("proxy state");
        *s = State {
            trigger: Some(trigger),
            ..State::default()
        };
    }

    /// The process to kill, once started.
    pub fn target(&self, pid: u32) {
        self.state.lock().expect("proxy state").pid = Some(pid as i32);
    }

    /// What the proxy saw since [`Self::arm`]; disarms it.
    pub fn disarm(&self) -> Seen {
        let mut s = self.state.lock().expect("proxy state");
        let seen = Seen {
            requests: s.requests,
            info_deletions: s.info_deletions,
            killed_at: s.killed_at,
        };
        *s = State::default();
        seen
    }
}

fn copy_back(mut from: TcpStream, mut to: TcpStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

/// Reads one request (head and `Content-Length` body); `None` at the end.
fn read_request(reader: &mut BufReader<TcpStream>) -> io::Result<Option<(String, Vec<u8>)>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let end = line == "\r\n";
        head.push_str(&line);
        if end {
            break;
        }
    }
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "the kill proxy does not handle chunked requests: {head}"
    );
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    Ok(Some((head, body)))
}

fn deletes_backup_info(head: &str, body: &[u8]) -> bool {
    let line = head.lines().next().unwrap_or("");
    (line.starts_with("DELETE ") && line.contains("/backup.info "))
        || (line.starts_with("POST ")
            && String::from_utf8_lossy(body).contains("/backup.info</Key>"))
}

fn deletes_wal(head: &str, body: &[u8]) -> bool {
    let line = head.lines().next().unwrap_or("");
    (line.starts_with("DELETE ") && line.contains("/wals/"))
        || (line.starts_with("POST ") && String::from_utf8_lossy(body).contains("/wals/"))
}

fn forward_requests(client: TcpStream, mut server: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(client);
    while let Ok(Some((head, body))) = read_request(&mut reader) {
        let kill = {
            let mut s = state.lock().expect("proxy state");
            // A request can only come before the test names its sender in
            // the first instants of the process: wait for the name.
            for _ in 0..500 {
                if s.pid.is_some() || matches!(s.trigger, None | Some(Trigger::Never)) {
                    break;
                }
                drop(s);
                std::thread::sleep(std::time::Duration::from_millis(2));
                s = state.lock().expect("proxy state");
            }
            s.requests += 1;
            let n = s.requests;
            let fire = match s.trigger {
                Some(Trigger::AtRequest(at)) => n == at,
                Some(Trigger::AfterInfoDeletion(k)) => s.after_info && s.info_deletions == k,
                Some(Trigger::InWal { after_infos, nth }) => {
                    s.info_deletions >= after_infos
                        && s.wal_deletions + 1 == nth
                        && deletes_wal(&head, &body)
                }
                _ => false,
            };
            if fire && s.killed_at.is_none() {
                s.killed_at = Some(n);
                if let Some(pid) = s.pid {
                    // SAFETY: signalling the test's own child process.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                    }
                }
            }
            if s.killed_at.is_none() {
                s.after_info = deletes_backup_info(&head, &body);
                let reached = match s.trigger {
                    Some(Trigger::InWal { after_infos, .. }) => s.info_deletions >= after_infos,
                    _ => false,
                };
                if s.after_info {
                    s.info_deletions += 1;
                } else if reached && deletes_wal(&head, &body) {
                    s.wal_deletions += 1;
                }
            }
            s.killed_at.is_some()
        };
        if kill {
            break;
        }
        if server.write_all(head.as_bytes()).is_err() || server.write_all(&body).is_err() {
            break;
        }
    }
    let _ = server.shutdown(Shutdown::Both);
    let _ = reader.get_ref().shutdown(Shutdown::Both);
}

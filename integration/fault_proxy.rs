//! A fault-injecting HTTP proxy on loopback, in front of a real S3 server's plain-HTTP port.
//!
//! It parses each HTTP/1.1 request (keep-alive included) and either forwards it unchanged (the
//! `Host` header too, so SigV4 signatures still match) or injects a fault chosen by the first
//! [`Rule`] that matches the request and still has uses left:
//!
//! - [`Fault::Status`] / [`Fault::SlowDown`]: answer 500 `InternalError` / 503 `SlowDown` with
//!   an S3 XML error body instead of forwarding (the server never sees the request);
//! - [`Fault::ResetRequest`]: read the head and part of the body, then reset the connection;
//! - [`Fault::LoseResponse`]: forward, let the server act, then reset instead of answering;
//! - [`Fault::CloseBeforeResponse`]: forward, let the server act, then close (FIN) unanswered;
//! - [`Fault::ResetResponse`]: forward, send the head and half the body, then reset;
//! - [`Fault::Truncate`]: forward, send the head and half the body, then close (FIN);
//! - [`Fault::Delay`] / [`Fault::DelayResponse`]: latency before forwarding / before answering.
//!
//! [`FaultProxy::outage`] takes the whole endpoint down for a while: the listening socket is
//! closed (new connections are refused) and open connections are reset.
//!
//! Every request is logged ([`FaultProxy::seen`]) with the fault it met, and the faults
//! injected are counted by kind ([`FaultProxy::injected`]) for the reliability summary.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// What to do to a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status (500: `InternalError`) without forwarding.
    Status(u16),
    /// Answer 503 `SlowDown` without forwarding.
    SlowDown,
    /// Read the head and part of the body, then reset: the server never sees the request.
    ResetRequest,
    /// Forward; once the server has answered, reset without a byte of the answer.
    LoseResponse,
    /// Forward; once the server has answered, close the connection (FIN) without answering.
    CloseBeforeResponse,
    /// Forward; send the head and half of the body, then reset.
    ResetResponse,
    /// Forward; send the head (full `Content-Length`) and half of the body, then close.
    Truncate,
    /// Wait this long, then forward.
    Delay(Duration),
    /// Forward at once; hold the server's answer this long before sending it.
    DelayResponse(Duration),
}

impl Fault {
    /// The kind, as the reliability summary names it.
    pub fn kind(self) -> &'static str {
        match self {
            Fault::Status(_) => "HTTP 5xx",
            Fault::SlowDown => "HTTP 503 SlowDown",
            Fault::ResetRequest => "reset mid-request",
            Fault::LoseResponse | Fault::CloseBeforeResponse => "response lost",
            Fault::ResetResponse => "reset mid-response",
            Fault::Truncate => "truncated body",
            Fault::Delay(_) | Fault::DelayResponse(_) => "latency",
        }
    }
}

/// Which requests a rule applies to; every given part must match.
#[derive(Debug, Clone, Default)]
pub struct Match {
    method: Option<String>,
    path: Option<String>,
    query: Option<String>,
    no_query: Option<String>,
    header: Option<String>,
}

/// A fault applied to matching requests: the first `skip` matches pass, the next `times` get it.
#[derive(Debug, Clone)]
pub struct Rule {
    when: Match,
    fault: Fault,
    skip: u32,
    times: u32,
}

impl Rule {
    /// Requests with this method (`"*"`: any).
    pub fn on(method: &str) -> Rule {
        Rule {
            when: Match {
                method: (method != "*").then(|| method.to_ascii_uppercase()),
                ..Match::default()
            },
            fault: Fault::Status(500),
            skip: 0,
            times: 1,
        }
    }

    /// ... whose target (path, `?`, query) contains `part`: a key, or a WAL name, which a
    /// listing carries in its `prefix` parameter.
    pub fn path(mut self, part: &str) -> Rule {
        self.when.path = Some(part.to_string());
        self
    }

    /// ... whose query string contains `part` (`"uploadId"`, `"list-type"`, `"delete"`).
    pub fn query(mut self, part: &str) -> Rule {
        self.when.query = Some(part.to_string());
        self
    }

    /// ... whose query string does not contain `part`.
    pub fn no_query(mut self, part: &str) -> Rule {
        self.when.no_query = Some(part.to_string());
        self
    }

    /// ... that carry this header (any value; case-insensitive name).
    pub fn header(mut self, name: &str) -> Rule {
        self.when.header = Some(name.to_ascii_lowercase());
        self
    }

    pub fn fault(mut self, fault: Fault) -> Rule {
        self.fault = fault;
        self
    }

    /// Let the first `n` matching requests through untouched.
    pub fn skip(mut self, n: u32) -> Rule {
        self.skip = n;
        self
    }

    /// Apply to `n` matching requests (after the skipped ones), then stop.
    pub fn times(mut self, n: u32) -> Rule {
        self.times = n;
        self
    }

    /// Apply to every matching request from now on.
    pub fn always(self) -> Rule {
        self.times(u32::MAX)
    }

    fn matches(&self, req: &Request) -> bool {
        let w = &self.when;
        w.method.as_ref().is_none_or(|m| *m == req.method)
            && w.path
                .as_ref()
                .is_none_or(|p| req.path.contains(p.as_str()) || req.query.contains(p.as_str()))
            && w.query
                .as_ref()
                .is_none_or(|q| req.query.contains(q.as_str()))
            && w.no_query
                .as_ref()
                .is_none_or(|q| !req.query.contains(q.as_str()))
            && w.header
                .as_ref()
                .is_none_or(|h| req.headers.iter().any(|(n, _)| n == h))
    }
}

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The fault injected, if any.
    pub fault: Option<Fault>,
    /// The status the server answered, when the request was forwarded and answered.
    pub status: Option<u16>,
}

struct State {
    upstream: u16,
    rules: Mutex<Vec<Rule>>,
    seen: Mutex<Vec<Seen>>,
    injected: Mutex<BTreeMap<&'static str, u64>>,
    outage_until: Mutex<Option<Instant>>,
    /// Open client connections (weak: a connection's thread holds the only strong reference,
    /// so dropping it closes the socket, which with `SO_LINGER` 0 sends a reset).
    live: Mutex<Vec<Weak<TcpStream>>>,
    stop: Mutex<bool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    fn count(&self, kind: &'static str) {
        *lock(&self.injected).entry(kind).or_default() += 1;
    }

    fn in_outage(&self) -> bool {
        lock(&self.outage_until).is_some_and(|t| Instant::now() < t)
    }

    /// The fault for `req`, consuming one use of the first matching rule that has uses left.
    fn fault_for(&self, req: &Request) -> Option<Fault> {
        let mut rules = lock(&self.rules);
        for rule in rules.iter_mut() {
            if rule.times == 0 || !rule.matches(req) {
                continue;
            }
            if rule.skip > 0 {
                rule.skip -= 1;
                return None;
            }
            if rule.times != u32::MAX {
                rule.times -= 1;
            }
            return Some(rule.fault);
        }
        None
    }
}

/// The proxy; it stops accepting when dropped (open connections finish on their own).
pub struct FaultProxy {
    port: u16,
    state: Arc<State>,
}

impl FaultProxy {
    /// A proxy on `127.0.0.1:<free port>` forwarding to `127.0.0.1:<upstream>`.
    pub fn start(upstream: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        let port = listener.local_addr().expect("fault proxy address").port();
        let state = Arc::new(State {
            upstream,
            rules: Mutex::default(),
            seen: Mutex::default(),
            injected: Mutex::default(),
            outage_until: Mutex::default(),
            live: Mutex::default(),
            stop: Mutex::new(false),
        });
        let s = state.clone();
        std::thread::spawn(move || accept_loop(listener, port, s));
        FaultProxy { port, state }
    }

    /// A proxy in front of the plain-HTTP endpoint `http://127.0.0.1:PORT`.
    pub fn in_front_of(endpoint: &str) -> FaultProxy {
        let port = endpoint
            .strip_prefix("http://127.0.0.1:")
            .and_then(|p| p.trim_end_matches('/').parse().ok())
            .unwrap_or_else(|| panic!("not a plain-HTTP loopback endpoint: {endpoint}"));
        FaultProxy::start(port)
    }

    /// `http://127.0.0.1:PORT`, to give barnacle as `--endpoint-url`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Adds a rule after the existing ones.
    pub fn add(&self, rule: Rule) -> &Self {
        lock(&self.state.rules).push(rule);
        self
    }

    /// Drops every rule: from now on everything is forwarded.
    pub fn clear(&self) {
        lock(&self.state.rules).clear();
    }

    /// Takes the endpoint down for `duration`: connections are refused, open ones reset.
    pub fn outage(&self, duration: Duration) {
        *lock(&self.state.outage_until) = Some(Instant::now() + duration);
        for s in lock(&self.state.live).drain(..) {
            if let Some(s) = s.upgrade() {
                abort_on_close(&s);
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        self.state.count("outage");
    }

    /// Ends an outage early.
    pub fn end_outage(&self) {
        *lock(&self.state.outage_until) = None;
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.state.seen).clone()
    }

    /// How many requests with `method` whose path contains `path` were seen.
    pub fn count(&self, method: &str, path: &str) -> usize {
        lock(&self.state.seen)
            .iter()
            .filter(|s| s.method == method && s.path.contains(path))
            .count()
    }

    /// Faults injected so far, by kind.
    pub fn injected(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.state.injected).clone()
    }

    /// The total number of faults injected so far.
    pub fn injected_total(&self) -> u64 {
        lock(&self.state.injected).values().sum()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        *lock(&self.state.stop) = true;
    }
}

/// Waits up to `ms` for `fd` to be readable.
fn readable(fd: i32, ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(&mut pfd, 1, ms) > 0 }
}

fn accept_loop(listener: TcpListener, port: u16, state: Arc<State>) {
    let mut listener = Some(listener);
    loop {
        if *lock(&state.stop) {
            return;
        }
        if state.in_outage() {
            // Closing the socket makes the kernel refuse connections, as a dead endpoint does.
            listener = None;
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let l = match &listener {
            Some(l) => l,
            None => {
                match TcpListener::bind(("127.0.0.1", port)) {
                    Ok(l) => listener = Some(l),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
                continue;
            }
        };
        if !readable(l.as_raw_fd(), 20) {
            continue;
        }
        let Ok((client, _)) = l.accept() else {
            continue;
        };
        let _ = client.set_nodelay(true);
        let client = Arc::new(client);
        {
            let mut live = lock(&state.live);
            live.retain(|s| s.strong_count() > 0);
            live.push(Arc::downgrade(&client));
        }
        let s = state.clone();
        std::thread::spawn(move || {
            let _ = serve(&client, &s);
        });
    }
}

/// Makes closing `stream` abortive: `SO_LINGER` with a zero timeout, so the kernel sends a
/// reset (RST) rather than a FIN when the last handle is dropped.
fn abort_on_close(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a correctly sized linger struct.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

struct Request {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    head: Vec<u8>,
    body: Vec<u8>,
}

struct Response {
    status: u16,
    head: Vec<u8>,
    body: Vec<u8>,
    /// The body ends when the server closes (no length, not chunked), or it said so.
    close: bool,
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Reads a head (up to the empty line); `None` at a clean end of stream before any byte.
fn read_head(r: &mut impl BufRead) -> io::Result<Option<(Vec<u8>, Vec<String>)>> {
    let mut head = Vec::new();
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        if r.read_until(b'\n', &mut line)? == 0 {
            if head.is_empty() {
                return Ok(None);
            }
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&line);
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        if text.is_empty() {
            return Ok(Some((head, lines)));
        }
        lines.push(text);
    }
}

fn parse_headers(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect()
}

/// Reads a chunked body, keeping its raw bytes (chunk sizes, trailers) to forward as is.
fn read_chunked(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    loop {
        let mut line = Vec::new();
        r.read_until(b'\n', &mut line)?;
        raw.extend_from_slice(&line);
        let size = String::from_utf8_lossy(&line);
        let size = size.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                let mut t = Vec::new();
                if r.read_until(b'\n', &mut t)? == 0 {
                    return Ok(raw);
                }
                raw.extend_from_slice(&t);
                if t == b"\r\n" || t == b"\n" {
                    return Ok(raw);
                }
            }
        }
        let mut chunk = vec![0; size + 2];
        r.read_exact(&mut chunk)?;
        raw.extend_from_slice(&chunk);
    }
}

fn read_request(r: &mut impl BufRead) -> io::Result<Option<Request>> {
    let Some((head, lines)) = read_head(r)? else {
        return Ok(None);
    };
    let first = lines.first().cloned().unwrap_or_default();
    let mut parts = first.split(' ');
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    let headers = parse_headers(&lines[1.min(lines.len())..]);
    Ok(Some(Request {
        method,
        path,
        query,
        headers,
        head,
        body: Vec::new(),
    }))
}

/// The length of a request's body, or `None` for a chunked one.
fn request_length(req: &Request) -> Option<usize> {
    if header(&req.headers, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return None;
    }
    Some(
        header(&req.headers, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    )
}

fn read_body(r: &mut impl BufRead, req: &mut Request) -> io::Result<()> {
    req.body = match request_length(req) {
        None => read_chunked(r)?,
        Some(n) => {
            let mut body = vec![0; n];
            r.read_exact(&mut body)?;
            body
        }
    };
    Ok(())
}

fn read_response(r: &mut BufReader<TcpStream>, method: &str) -> io::Result<Response> {
    let (head, lines) = read_head(r)?.ok_or(io::ErrorKind::UnexpectedEof)?;
    let status: u16 = lines
        .first()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad status line"))?;
    let headers = parse_headers(&lines[1.min(lines.len())..]);
    let said_close =
        header(&headers, "connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    if method == "HEAD" || status / 100 == 1 || status == 204 || status == 304 {
        return Ok(Response {
            status,
            head,
            body: Vec::new(),
            close: said_close,
        });
    }
    if header(&headers, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let body = read_chunked(r)?;
        return Ok(Response {
            status,
            head,
            body,
            close: said_close,
        });
    }
    if let Some(n) = header(&headers, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        let mut body = vec![0; n];
        r.read_exact(&mut body)?;
        return Ok(Response {
            status,
            head,
            body,
            close: said_close,
        });
    }
    let mut body = Vec::new();
    r.read_to_end(&mut body)?;
    Ok(Response {
        status,
        head,
        body,
        close: true,
    })
}

/// An S3 error answer.
fn error_response(status: u16) -> Vec<u8> {
    let (reason, code, message) = match status {
        503 => (
            "Service Unavailable",
            "SlowDown",
            "Please reduce your request rate.",
        ),
        502 => ("Bad Gateway", "BadGateway", "Injected by the fault proxy."),
        _ => (
            "Internal Server Error",
            "InternalError",
            "We encountered an internal error. Please try again.",
        ),
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>"
    );
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/xml\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends `req` upstream (connecting if needed) and reads the answer.
fn exchange(
    upstream: &mut Option<(TcpStream, BufReader<TcpStream>)>,
    port: u16,
    req: &Request,
) -> io::Result<Response> {
    for attempt in 0..2 {
        if upstream.is_none() {
            let s = TcpStream::connect(("127.0.0.1", port))?;
            let _ = s.set_nodelay(true);
            let r = BufReader::new(s.try_clone()?);
            *upstream = Some((s, r));
        }
        let (w, r) = upstream.as_mut().expect("connected");
        let sent = w.write_all(&req.head).and_then(|()| w.write_all(&req.body));
        let answer = sent.and_then(|()| read_response(r, &req.method));
        match answer {
            Ok(resp) => {
                if resp.close {
                    *upstream = None;
                }
                return Ok(resp);
            }
            // A kept-alive upstream connection the server had closed: one fresh try.
            Err(e) if attempt == 0 => {
                *upstream = None;
                let _ = e;
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("two attempts")
}

/// Serves one client connection; returning drops the socket (a reset if `abort_on_close`).
fn serve(client: &TcpStream, state: &State) -> io::Result<()> {
    let mut reader = BufReader::new(client);
    let mut writer = client;
    let mut upstream: Option<(TcpStream, BufReader<TcpStream>)> = None;
    loop {
        let Some(mut req) = read_request(&mut reader)? else {
            return Ok(());
        };
        if state.in_outage() {
            abort_on_close(client);
            return Ok(());
        }
        let fault = state.fault_for(&req);
        let mut seen = Seen {
            method: req.method.clone(),
            path: req.path.clone(),
            query: req.query.clone(),
            fault,
            status: None,
        };
        if let Some(f) = fault {
            state.count(f.kind());
        }
        if fault == Some(Fault::ResetRequest) {
            // Take part of the body (if any), then cut.
            if let Some(n) = request_length(&req).filter(|n| *n > 0) {
                let mut part = vec![0; n.div_ceil(2)];
                let _ = reader.read_exact(&mut part);
            }
            lock(&state.seen).push(seen);
            abort_on_close(client);
            return Ok(());
        }
        read_body(&mut reader, &mut req)?;
        match fault {
            Some(Fault::Status(code)) => {
                lock(&state.seen).push(seen);
                writer.write_all(&error_response(code))?;
                continue;
            }
            Some(Fault::SlowDown) => {
                lock(&state.seen).push(seen);
                writer.write_all(&error_response(503))?;
                continue;
            }
            Some(Fault::Delay(d)) => std::thread::sleep(d),
            _ => {}
        }
        let resp = match exchange(&mut upstream, state.upstream, &req) {
            Ok(r) => r,
            Err(_) => {
                lock(&state.seen).push(seen);
                writer.write_all(&error_response(502))?;
                return Ok(());
            }
        };
        seen.status = Some(resp.status);
        lock(&state.seen).push(seen);
        match fault {
            Some(Fault::LoseResponse) => {
                abort_on_close(client);
                return Ok(());
            }
            Some(Fault::CloseBeforeResponse) => {
                let _ = writer.shutdown(Shutdown::Both);
                return Ok(());
            }
            Some(Fault::ResetResponse) | Some(Fault::Truncate) => {
                writer.write_all(&resp.head)?;
                writer.write_all(&resp.body[..resp.body.len() / 2])?;
                writer.flush()?;
                if fault == Some(Fault::ResetResponse) {
                    abort_on_close(client);
                } else {
                    let _ = writer.shutdown(Shutdown::Both);
                }
                return Ok(());
            }
            Some(Fault::DelayResponse(d)) => std::thread::sleep(d),
            _ => {}
        }
        writer.write_all(&resp.head)?;
        writer.write_all(&resp.body)?;
        writer.flush()?;
        if resp.close {
            let _ = writer.shutdown(Shutdown::Both);
            return Ok(());
        }
    }
}

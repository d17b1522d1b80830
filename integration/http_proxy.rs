//! barnacle behind an HTTP proxy named in the environment, as on a network
//! whose only way out is a proxy: `HTTPS_PROXY` for an HTTPS store (a
//! `CONNECT` tunnel), `HTTP_PROXY` for a plain one (requests sent whole),
//! `NO_PROXY` to go around it, and a proxy that refuses its credentials.
//! The proxy is a real one on loopback (below); the store is SeaweedFS.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use crate::harness::{self, S3Kind};
use crate::support::{Archive, file_name, real_wal, run};

const USER: &str = "walproxy";
const PASSWORD: &str = "proxy-password-0x5eed";
/// `Basic` credentials of `USER:PASSWORD` (base64, RFC 7617).
const CREDENTIALS: &str = "d2FscHJveHk6cHJveHktcGFzc3dvcmQtMHg1ZWVk";

/// A forward proxy: `CONNECT host:port` opens a tunnel, any other request
/// (its target in absolute form) is passed on to the host it names as the
/// last of its connection, and the connection then carries bytes both ways. Requests without
/// `Proxy-Authorization: Basic base64(USER:PASSWORD)` get a 407.
struct HttpProxy {
    port: u16,
    /// Each request's line, and whether its credentials were right.
    seen: Arc<Mutex<Vec<(String, bool)>>>,
}

impl HttpProxy {
    fn start() -> HttpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the HTTP proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let seen: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
        let log = seen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || serve(client, &log));
            }
        });
        HttpProxy { port, seen }
    }

    /// The proxy's URL with `user:password`.
    fn url(&self, password: &str) -> String {
        format!("http://{USER}:{password}@127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<(String, bool)> {
        self.seen.lock().expect("proxy log").clone()
    }
}

fn serve(client: TcpStream, log: &Mutex<Vec<(String, bool)>>) {
    let mut reader = BufReader::new(client.try_clone().expect("clone"));
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let end = line == "\r\n";
        head.push(line);
        if end {
            break;
        }
    }
    let request_line = head[0].trim_end().to_string();
    // The header's name and scheme in any case; the credentials exactly.
    let authorized = head.iter().any(|h| {
        h.split_once(':').is_some_and(|(name, value)| {
            name.eq_ignore_ascii_case("proxy-authorization")
                && value.trim().split_once(' ').is_some_and(|(scheme, creds)| {
                    scheme.eq_ignore_ascii_case("basic") && creds == CREDENTIALS
                })
        })
    });
    log.lock()
        .expect("proxy log")
        .push((request_line.clone(), authorized));
    let mut client = client;
    if !authorized {
        let _ = client.write_all(
            b"HTTP/1.1 407 Proxy Authentication Required\r\n\
              proxy-authenticate: Basic realm=\"wal\"\r\ncontent-length: 0\r\n\
              connection: close\r\n\r\n",
        );
        return;
    }
    let mut words = request_line.split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let authority = if method == "CONNECT" {
        target.to_string()
    } else {
        let rest = target.trim_start_matches("http://");
        rest.split('/').next().unwrap_or("").to_string()
    };
    let Ok(upstream) = TcpStream::connect(&authority) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n");
        return;
    };
    let mut up_writer = upstream.try_clone().expect("clone");
    if method == "CONNECT" {
        let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
    } else {
        // The request as it came (servers accept absolute-form targets),
        // but the last on its connection: the next one comes on a new
        // connection, and so past this proxy's log.
        let mut forwarded: String = (head.iter())
            .filter(|h| !h.to_ascii_lowercase().starts_with("connection:") && *h != "\r\n")
            .map(String::as_str)
            .collect();
        forwarded.push_str("connection: close\r\n\r\n");
        let _ = up_writer.write_all(forwarded.as_bytes());
    }
    // Whatever the reader buffered past the head, then the rest.
    let buffered = reader.buffer().to_vec();
    let _ = up_writer.write_all(&buffered);
    let down = std::thread::spawn({
        let mut upstream = upstream;
        let mut client = client.try_clone().expect("clone");
        move || pump(&mut upstream, &mut client)
    });
    pump(reader.get_mut(), &mut up_writer);
    let _ = down.join();
}

fn pump(from: &mut TcpStream, to: &mut TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// walpush and restore of one real segment with `var` naming the proxy:
/// the restored file is the segment, and every request the proxy saw went
/// through it with the right credentials.
fn push_and_restore_through(kind: S3Kind, var: &str) {
    let proxy = HttpProxy::start();
    let archive = Archive::new(kind, "http-proxy");
    let segment = &real_wal()[0];
    let name = file_name(segment);
    let dir = harness::scratch("http-proxy");
    let dest = dir.join(&name);
    let with_proxy = |cmd: &mut std::process::Command| {
        cmd.env(var, proxy.url(PASSWORD));
    };
    let mut push = archive.barnacle("walpush", &[]);
    with_proxy(push.arg(segment));
    run(&mut push).ok("walpush through the proxy");
    let mut restore = archive.barnacle("restore", &[]);
    with_proxy(restore.arg(&name).arg(&dest));
    run(&mut restore).ok("restore through the proxy");
    assert_eq!(
        std::fs::read(&dest).expect("restored"),
        std::fs::read(segment).expect("segment"),
        "{kind:?}: the segment restored through the proxy differs"
    );

    let seen = proxy.seen();
    let endpoint = archive.s3.endpoint();
    let authority = endpoint.split("://").nth(1).expect("endpoint authority");
    let expected = if kind.is_https() {
        format!("CONNECT {authority} HTTP/1.1")
    } else {
        format!(" {endpoint}/")
    };
    assert!(!seen.is_empty(), "{kind:?}: nothing went through the proxy");
    for (line, authorized) in &seen {
        assert!(line.contains(&expected), "{kind:?}: the proxy saw {line:?}");
        assert!(
            authorized,
            "{kind:?}: {line:?} came without the proxy's credentials"
        );
    }
    if !kind.is_https() {
        // The push's PutObject and the restore's GetObject, sent whole.
        assert!(
            seen.iter().any(|(l, _)| l.starts_with("PUT http://")),
            "{seen:?}"
        );
        assert!(
            seen.iter().any(|(l, _)| l.starts_with("GET http://")),
            "{seen:?}"
        );
    }
}

#[test]
fn an_https_store_is_reached_through_a_connect_tunnel() {
    push_and_restore_through(S3Kind::SeaweedHttps, "HTTPS_PROXY");
}

#[test]
fn a_plain_http_store_is_reached_through_the_proxy_in_http_proxy() {
    push_and_restore_through(S3Kind::SeaweedHttp, "http_proxy");
}

#[test]
fn no_proxy_goes_around_it_and_refused_credentials_are_one_line_without_the_password() {
    let proxy = HttpProxy::start();
    let archive = Archive::new(S3Kind::SeaweedHttps, "http-proxy-no");
    let segment = &real_wal()[1];
    let endpoint = archive.s3.endpoint();
    let host = endpoint
        .split("://")
        .nth(1)
        .and_then(|a| a.rsplit_once(':'))
        .map(|(h, _)| h.to_string())
        .expect("endpoint host");

    let mut push = archive.barnacle("walpush", &[]);
    push.arg(segment)
        .env("ALL_PROXY", proxy.url(PASSWORD))
        .env("NO_PROXY", format!("example.com,{host}"));
    run(&mut push).ok("walpush with the store in NO_PROXY");
    assert!(
        proxy.seen().is_empty(),
        "NO_PROXY: {:?} went through the proxy",
        proxy.seen()
    );

    let wrong = "not-the-password";
    let mut push = archive.barnacle("walpush", &[]);
    push.arg(&real_wal()[2])
        .env("HTTPS_PROXY", proxy.url(wrong));
    let ran = run(&mut push);
    assert_ne!(ran.code, 0, "a push the proxy refused exited 0: {ran:#?}");
    ran.one_line_error("proxy authorization required");
    assert!(
        ran.stderr
            .contains(&format!("through the proxy at 127.0.0.1:{}", proxy.port)),
        "the error does not name the proxy: {}",
        ran.stderr
    );
    assert!(
        !ran.stderr.contains(wrong),
        "the proxy's password leaked: {}",
        ran.stderr
    );
    assert!(
        proxy.seen().iter().all(|(_, authorized)| !authorized),
        "{:?}",
        proxy.seen()
    );
}

//! S3 servers for the tests, and a reference S3 client (boto3) to check what barnacle stored.
//!
//! SeaweedFS: one `weed mini` process (master + volume + filer + S3) serving HTTP and HTTPS.
//! Ceph RGW: see [`super::ceph`]. Each server starts once per test process, on first use;
//! tests isolate themselves with their own bucket ([`unique_bucket`], [`S3Server::create_bucket`]).
//! The reference client for assertions is in `s3ref.rs`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::s3ref::RefClient;
use super::service::Service;
use super::tls::tls;
use super::{barman, free_port, log_tail, poll, scratch};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum S3Kind {
    SeaweedHttp,
    SeaweedHttps,
    CephHttp,
    CephHttps,
}

impl S3Kind {
    pub const ALL: [S3Kind; 4] = [
        S3Kind::SeaweedHttp,
        S3Kind::SeaweedHttps,
        S3Kind::CephHttp,
        S3Kind::CephHttps,
    ];

    pub fn is_https(self) -> bool {
        matches!(self, S3Kind::SeaweedHttps | S3Kind::CephHttps)
    }
}

/// One S3 endpoint of a running server. Obtain it with [`s3`].
pub struct S3Server {
    kind: S3Kind,
    endpoint: String,
    ca: Option<PathBuf>,
    access_key: String,
    secret_key: String,
    /// The process(es) behind the endpoint, shared by the HTTP and HTTPS endpoints of a server.
    services: Arc<Vec<Service>>,
    /// The reference client (boto3), started on first use: see `s3ref.rs`.
    pub(super) reference: Mutex<Option<RefClient>>,
}

/// The S3 endpoint of `kind`, starting its server on first use.
pub fn s3(kind: S3Kind) -> &'static S3Server {
    static SERVERS: [OnceLock<S3Server>; 4] = [const { OnceLock::new() }; 4];
    SERVERS[kind as usize].get_or_init(|| match kind {
        S3Kind::SeaweedHttp | S3Kind::SeaweedHttps => seaweed().endpoint(kind),
        S3Kind::CephHttp | S3Kind::CephHttps => super::ceph::ceph().endpoint(kind),
    })
}

/// A running server with an HTTP and an HTTPS port.
pub(crate) struct Running {
    pub http_port: u16,
    pub https_port: u16,
    pub access_key: &'static str,
    pub secret_key: &'static str,
    pub services: Arc<Vec<Service>>,
}

impl Running {
    pub(crate) fn endpoint(&self, kind: S3Kind) -> S3Server {
        let (scheme, port) = if kind.is_https() {
            ("https", self.https_port)
        } else {
            ("http", self.http_port)
        };
        S3Server {
            kind,
            endpoint: format!("{scheme}://127.0.0.1:{port}"),
            ca: kind.is_https().then(|| tls().ca.clone()),
            access_key: self.access_key.into(),
            secret_key: self.secret_key.into(),
            services: self.services.clone(),
            reference: Mutex::new(None),
        }
    }
}

/// Credentials of a second SeaweedFS identity that may only read and list: a store that
/// refuses every write (403 AccessDenied) to the same buckets.
pub const SEAWEED_READ_ONLY: (&str, &str) = ("barnacle-it-reader", "barnacle-it-reader-secret");

fn seaweed() -> &'static Running {
    static SEAWEED: OnceLock<Running> = OnceLock::new();
    SEAWEED.get_or_init(|| {
        let started = Instant::now();
        let dir = scratch("seaweedfs");
        std::fs::create_dir_all(dir.join("data")).expect("create seaweedfs dir");
        let (ak, sk) = ("barnacle-it-key", "barnacle-it-secret");
        let (rk, rs) = SEAWEED_READ_ONLY;
        let config = format!(
            r#"{{"identities":[{{"name":"admin","credentials":[{{"accessKey":"{ak}","secretKey":"{sk}"}}],"actions":["Admin","Read","List","Tagging","Write"]}},{{"name":"reader","credentials":[{{"accessKey":"{rk}","secretKey":"{rs}"}}],"actions":["Read","List"]}}]}}"#
        );
        std::fs::write(dir.join("s3.json"), config).expect("write s3.json");
        let tls = tls();
        let (http, https) = (free_port(), free_port());
        let mut cmd = barman("weed");
        cmd.arg("mini")
            .arg(format!("-dir={}", dir.join("data").display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false"])
            .args(["-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0"])
            // One volume per bucket (collection): `weed mini` sizes volumes at 1 GiB and
            // allows free-disk / 1 GiB of them (37 on a disk with 38 GiB free), fewer than the
            // suite's buckets; past that every PUT into a new bucket is an InternalError.
            // Small volumes, and a fixed count that does not depend on the disk.
            .args(["-master.volumeSizeLimitMB=64", "-volume.max=2000"]);
        for flag in ["master", "volume", "filer", "s3"] {
            cmd.arg(format!("-{flag}.port.grpc={}", free_port()));
        }
        for flag in ["master", "volume", "filer"] {
            cmd.arg(format!("-{flag}.port={}", free_port()));
        }
        cmd.arg(format!("-s3.port={http}"))
            .arg(format!("-s3.port.https={https}"))
            .arg(format!("-s3.cert.file={}", tls.cert.display()))
            .arg(format!("-s3.key.file={}", tls.key.display()))
            .arg(format!("-s3.config={}", dir.join("s3.json").display()));
        let weed = Service::start("seaweedfs (weed mini)", cmd, &dir.join("weed.log"));
        wait_http(&[&weed], http, https, Duration::from_secs(60));
        eprintln!("harness: SeaweedFS ready on :{http} / :{https} in {:.1?}", started.elapsed());
        Running { http_port: http, https_port: https, access_key: ak, secret_key: sk, services: Arc::new(vec![weed]) }
    })
}

/// Waits until `http_port` answers HTTP and `https_port` accepts connections; panics with the
/// services' log tails if one of them exits or the time runs out.
pub(crate) fn wait_http(services: &[&Service], http_port: u16, https_port: u16, timeout: Duration) {
    let ready = poll(timeout, Duration::from_millis(100), || {
        for s in services {
            s.assert_running();
        }
        (http_answers(http_port) && TcpStream::connect(("127.0.0.1", https_port)).is_ok())
            .then_some(())
    });
    if ready.is_none() {
        let logs: Vec<String> = services.iter().map(|s| log_tail(s.log(), 40)).collect();
        panic!(
            "S3 server not answering on :{http_port} after {timeout:?}\n{}",
            logs.join("\n")
        );
    }
}

fn http_answers(port: u16) -> bool {
    let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET / HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    let mut head = [0u8; 8];
    conn.write_all(request.as_bytes()).is_ok()
        && conn.read_exact(&mut head).is_ok()
        && head.starts_with(b"HTTP/1.")
}

/// A fresh, S3-valid bucket name (lowercase letters, digits and dashes) starting with `prefix`.
pub fn unique_bucket(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let words: Vec<String> = prefix
        .to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    let mut p = if words.is_empty() {
        "it".to_string()
    } else {
        words.join("-")
    };
    p.truncate(40);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{}-{}-{n}", p.trim_end_matches('-'), std::process::id())
}

impl S3Server {
    pub fn kind(&self) -> S3Kind {
        self.kind
    }

    /// The endpoint URL, without a bucket: `http://127.0.0.1:PORT` or `https://…`.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// The CA certificate (PEM) to trust for an HTTPS endpoint.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// The log files of the processes behind this endpoint.
    pub fn logs(&self) -> Vec<PathBuf> {
        self.services
            .iter()
            .map(|s| s.log().to_path_buf())
            .collect()
    }

    /// The environment for barnacle: credentials, region, no IMDS, and the CA for HTTPS.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("AWS_ACCESS_KEY_ID".to_string(), self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".to_string(), self.secret_key.clone()),
            ("AWS_REGION".to_string(), "us-east-1".to_string()),
            ("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string()),
        ];
        if let Some(ca) = &self.ca {
            env.push(("AWS_CA_BUNDLE".to_string(), ca.display().to_string()));
        }
        env
    }

    /// [`Self::env`] plus what boto3 (Barman) needs on Ceph RGW: checksums only when required.
    pub fn barman_env(&self) -> Vec<(String, String)> {
        let mut env = self.env();
        env.push((
            "AWS_REQUEST_CHECKSUM_CALCULATION".to_string(),
            "when_required".to_string(),
        ));
        env.push((
            "AWS_RESPONSE_CHECKSUM_VALIDATION".to_string(),
            "when_required".to_string(),
        ));
        env
    }
}

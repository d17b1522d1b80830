//! A test CA and a server certificate it signs, for the HTTPS endpoints (made with openssl).
//!
//! rustls/webpki pitfalls this avoids (see the object-store notes): the leaf has
//! `basicConstraints=critical,CA:FALSE` (else `CaUsedAsEndEntity`), clients trust the CA and not
//! the leaf (else `UnknownIssuer`), and the SAN covers both `127.0.0.1` and `localhost`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{root, run_ok, set_mode};

pub struct Tls {
    /// The CA certificate (PEM): what clients trust.
    pub ca: PathBuf,
    /// The server certificate (PEM), signed by the CA.
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
}

/// The run's TLS material, generated once under `<root>/tls`.
pub fn tls() -> &'static Tls {
    static TLS: OnceLock<Tls> = OnceLock::new();
    TLS.get_or_init(|| {
        let dir = root().join("tls");
        std::fs::create_dir(&dir).expect("create tls dir");
        set_mode(&dir, 0o755);
        let f = |name: &str| dir.join(name);
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &dir,
            &["req", "-x509"],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "3650",
                "-subj",
                "/CN=barnacle-it CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        openssl(
            &dir,
            &["req"],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        );
        std::fs::write(
            f("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
             basicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\n",
        )
        .expect("write server.ext");
        openssl(
            &dir,
            &["x509", "-req"],
            &[],
            &[
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
                "3650",
                "-extfile",
                "server.ext",
            ],
        );
        for name in ["ca.pem", "server.pem", "server.key"] {
            set_mode(&f(name), 0o644);
        }
        Tls {
            ca: f("ca.pem"),
            cert: f("server.pem"),
            key: f("server.key"),
        }
    })
}

fn openssl(dir: &Path, cmd: &[&str], key: &[&str], args: &[&str]) {
    run_ok(
        Command::new("openssl")
            .current_dir(dir)
            .args(cmd)
            .args(key)
            .args(args),
    );
}

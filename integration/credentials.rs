//! Credentials from the container credential endpoint (EKS Pod Identity,
//! ECS): object_store fetches them over plain HTTP even when the store is
//! HTTPS, through barnacle's own HTTP client (src/storage/http_client.rs),
//! which takes the permission from the options object_store passes for that
//! client, not from the store's.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use crate::harness::{self, S3Kind};

/// Answers one request with credentials for `access_key`/`secret_key`, and
/// hands the request's head (lowercased) to the receiver.
fn credential_server(access_key: &str, secret_key: &str) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://{}/v1/credentials",
        listener.local_addr().expect("address")
    );
    let body = format!(
        r#"{{"AccessKeyId":"{access_key}","SecretAccessKey":"{secret_key}","Token":"pod-session","Expiration":"2099-01-01T00:00:00Z"}}"#
    );
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut socket, _)) = listener.accept() else {
            return;
        };
        let _ = socket.set_read_timeout(Some(Duration::from_secs(10)));
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let _ = tx.send(String::from_utf8_lossy(&head).to_lowercase());
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = socket.write_all(response.as_bytes());
    });
    (url, rx)
}

#[test]
fn container_credentials_come_over_plain_http_for_an_https_store() {
    let s3 = harness::s3(S3Kind::SeaweedHttps);
    let dir = harness::scratch("container-credentials");
    let token_file = dir.join("token");
    std::fs::write(&token_file, "pod-identity-token").unwrap();
    let env = s3.env();
    let key = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{name} in the store's environment"))
    };
    let (url, requests) =
        credential_server(&key("AWS_ACCESS_KEY_ID"), &key("AWS_SECRET_ACCESS_KEY"));
    let bucket = harness::unique_bucket("container-creds");
    let out = harness::barnacle("barman-cloud-backup-list")
        .envs(env.iter().cloned())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &url)
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token_file)
        .args(["--endpoint-url", &s3.endpoint()])
        .arg(format!("s3://{bucket}/cluster"))
        .arg("pg")
        .output()
        .expect("run barnacle");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let head = requests
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("no request reached the credential endpoint: {stderr}"));
    assert!(head.starts_with("get /v1/credentials "), "{head}");
    assert!(head.contains("authorization: pod-identity-token"), "{head}");
    // The store then saw a request signed with those keys (and a session
    // token it does not know): whatever it answers, barnacle got that far.
    assert!(
        !stderr.contains("scheme") && !stderr.to_lowercase().contains("no credentials"),
        "{stderr}"
    );
}

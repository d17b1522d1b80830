//! The reference S3 client: boto3, independent of barnacle's own code, to set up and check
//! what the tests store. One `s3ref.py` process per endpoint serves requests over pipes, so a
//! call costs milliseconds rather than Python's start-up; calls from concurrent tests queue.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::sync::OnceLock;

use super::s3::S3Server;
use super::{barman, log_tail, root};

/// A running `s3ref.py` and its pipes (it exits at EOF on stdin, that is, with the tests).
pub struct RefClient {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    log: PathBuf,
}

impl RefClient {
    fn start(server: &S3Server) -> RefClient {
        let log = root().join(format!("s3ref-{:?}.log", server.kind()));
        let stderr = std::fs::File::create(&log).expect("create s3ref log");
        let mut child = barman("python")
            .arg(script())
            .arg(server.endpoint())
            .envs(server.barman_env())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start s3ref.py");
        let stdin = child.stdin.take().expect("s3ref stdin");
        let stdout = BufReader::new(child.stdout.take().expect("s3ref stdout"));
        RefClient {
            _child: child,
            stdin,
            stdout,
            log,
        }
    }

    /// Sends one request; the outer error is a broken client, the inner one a failed S3 call.
    fn call(&mut self, fields: &[&[u8]]) -> io::Result<Result<Vec<u8>, String>> {
        let lens: Vec<String> = fields.iter().map(|f| f.len().to_string()).collect();
        self.stdin
            .write_all(format!("{}\n", lens.join(" ")).as_bytes())?;
        for field in fields {
            self.stdin.write_all(field)?;
        }
        self.stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        let bad = || io::Error::other(format!("bad answer {line:?}"));
        let (status, len) = line.trim_end().split_once(' ').ok_or_else(bad)?;
        let mut body = vec![0; len.parse().map_err(|_| bad())?];
        self.stdout.read_exact(&mut body)?;
        Ok(match status {
            "ok" => Ok(body),
            _ => Err(String::from_utf8_lossy(&body).into_owned()),
        })
    }
}

fn script() -> &'static Path {
    static SCRIPT: OnceLock<PathBuf> = OnceLock::new();
    SCRIPT.get_or_init(|| {
        let path = root().join("s3ref.py");
        std::fs::write(&path, include_str!("s3ref.py")).expect("write s3ref.py");
        path
    })
}

impl S3Server {
    /// Creates the bucket `name` (which must not exist yet).
    pub fn create_bucket(&self, name: &str) {
        self.reference(&[b"create-bucket", name.as_bytes()]);
    }

    /// All keys in `bucket` under `prefix`, sorted.
    pub fn list_keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let out = self.reference(&[b"list", bucket.as_bytes(), prefix.as_bytes()]);
        let text = String::from_utf8(out).expect("keys are UTF-8");
        text.lines().map(str::to_string).collect()
    }

    /// The bytes of an object (panics if it is missing).
    pub fn get_object(&self, bucket: &str, key: &str) -> Vec<u8> {
        self.reference(&[b"get", bucket.as_bytes(), key.as_bytes()])
    }

    pub fn put_object(&self, bucket: &str, key: &str, bytes: &[u8]) {
        self.put_object_with_metadata(bucket, key, bytes, &[]);
    }

    /// Puts an object with user metadata (sent as `x-amz-meta-<name>`).
    pub fn put_object_with_metadata(
        &self,
        bucket: &str,
        key: &str,
        bytes: &[u8],
        metadata: &[(&str, &str)],
    ) {
        let meta: Vec<String> = metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut fields: Vec<&[u8]> = vec![b"put", bucket.as_bytes(), key.as_bytes(), bytes];
        fields.extend(meta.iter().map(|m| m.as_bytes()));
        self.reference(&fields);
    }

    pub fn delete_object(&self, bucket: &str, key: &str) {
        self.reference(&[b"delete", bucket.as_bytes(), key.as_bytes()]);
    }

    /// The user metadata of an object (`x-amz-meta-*` without the prefix, as the server
    /// returns it: both servers lowercase names, Ceph also turns `_` into `-`).
    pub fn head_metadata(&self, bucket: &str, key: &str) -> HashMap<String, String> {
        let out = self.reference(&[b"head-meta", bucket.as_bytes(), key.as_bytes()]);
        let text = String::from_utf8(out).expect("metadata is UTF-8");
        let pairs = text.lines().filter_map(|l| l.split_once('\t'));
        pairs.map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The incomplete multipart uploads under `prefix`: `(key, upload id)`.
    pub fn multipart_uploads(&self, bucket: &str, prefix: &str) -> Vec<(String, String)> {
        let out = self.reference(&[b"uploads", bucket.as_bytes(), prefix.as_bytes()]);
        let text = String::from_utf8(out).expect("keys are UTF-8");
        let pairs = text.lines().filter_map(|l| l.split_once('\t'));
        pairs.map(|(k, u)| (k.to_string(), u.to_string())).collect()
    }

    /// Runs one reference operation; panics with the reason if it fails.
    fn reference(&self, fields: &[&[u8]]) -> Vec<u8> {
        let what: Vec<String> = fields
            .iter()
            .take(3)
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        let mut client = self.reference.lock().unwrap_or_else(|e| e.into_inner());
        let answer = client
            .get_or_insert_with(|| RefClient::start(self))
            .call(fields);
        match answer {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(reason)) => {
                panic!(
                    "reference S3 client: {what:?} on {} failed: {reason}",
                    self.endpoint()
                )
            }
            Err(e) => {
                let log = client
                    .take()
                    .map(|c| log_tail(&c.log, 20))
                    .unwrap_or_default();
                panic!(
                    "reference S3 client on {} broke: {e}\n{log}",
                    self.endpoint()
                )
            }
        }
    }
}

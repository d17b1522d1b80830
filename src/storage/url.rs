//! Archive URLs: `s3://BUCKET[/PATH]` (Barman's form) and `file:///DIR` (a local
//! directory laid out exactly like a bucket; the embedded default).

use std::path::PathBuf;

use super::StorageError;

/// Where an archive lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// An S3 bucket and the key prefix inside it (leading slashes removed, may be empty).
    S3 { bucket: String, path: String },
    /// A local directory playing the part of bucket and prefix.
    File { root: PathBuf },
}

impl StoreUrl {
    pub fn parse(url: &str) -> Result<Self, StorageError> {
        let invalid = |reason: &str| StorageError::InvalidUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("expected s3://BUCKET/PATH or file:///DIRECTORY"))?;
        match scheme.to_ascii_lowercase().as_str() {
            "s3" => {
                let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(invalid("the bucket name is empty"));
                }
                if bucket.contains(['@', ':', '?', '#']) {
                    return Err(invalid("the bucket name has characters S3 does not allow"));
                }
                let path = path.trim_start_matches('/');
                if path.contains("//") {
                    return Err(invalid("the path has an empty component ('//')"));
                }
                Ok(StoreUrl::S3 {
                    bucket: bucket.to_string(),
                    path: path.to_string(),
                })
            }
            "file" => {
                if !rest.starts_with('/') {
                    return Err(invalid(
                        "a file URL needs an absolute path: file:///DIRECTORY",
                    ));
                }
                Ok(StoreUrl::File {
                    root: PathBuf::from(rest.trim_end_matches('/')).join(""),
                })
            }
            "gs" | "azure" | "https" | "http" => Err(invalid(
                "only s3:// and file:// archives are supported (give an S3-compatible endpoint with --endpoint-url)",
            )),
            _ => Err(invalid("unknown scheme: expected s3:// or file://")),
        }
    }

    /// The key prefix inside the store, to which `SERVER_NAME` is joined.
    pub fn key_path(&self) -> &str {
        match self {
            StoreUrl::S3 { path, .. } => path,
            StoreUrl::File { .. } => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_urls_like_barman() {
        assert_eq!(
            StoreUrl::parse("s3://bucket/a/b").unwrap(),
            StoreUrl::S3 {
                bucket: "bucket".into(),
                path: "a/b".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("s3://bucket").unwrap(),
            StoreUrl::S3 {
                bucket: "bucket".into(),
                path: "".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("s3://bucket///cluster/").unwrap(),
            StoreUrl::S3 {
                bucket: "bucket".into(),
                path: "cluster/".into()
            }
        );
    }

    #[test]
    fn parses_file_urls() {
        assert_eq!(
            StoreUrl::parse("file:///var/lib/archive/").unwrap(),
            StoreUrl::File {
                root: PathBuf::from("/var/lib/archive/")
            }
        );
    }

    #[test]
    fn rejects_bad_urls_with_a_reason() {
        for url in [
            "bucket/path",
            "s3://",
            "s3:///path",
            "ftp://x/y",
            "file://relative/dir",
            "s3://b/a//c",
            "gs://b/p",
        ] {
            let err = StoreUrl::parse(url).unwrap_err().to_string();
            assert!(err.contains(url), "{err}");
        }
    }
}

//! The only code that touches object stores.
//!
//! A [`Store`] is one archive location: an S3 bucket reached through
//! `object_store` (AWS S3, Ceph RGW, SeaweedFS, MinIO…), or a local directory
//! with the same layout. It offers exactly what the commands need, with the
//! contracts they rely on:
//!
//! * [`Store::put_if_absent`] never replaces an object: on S3 it is a
//!   `PutObject` with `If-None-Match: *`; locally a `link(2)` of a fsync'd temp
//!   file. It returns only once the store has durably accepted the whole body.
//! * Every object may carry a digest of its *uncompressed* content
//!   ([`PutAttrs::digest`]; [`crate::codec::digest`]), stored as user metadata
//!   `x-amz-meta-barnacle-blake3` (or `-sha256`, for objects of earlier builds;
//!   keys stay `[a-z0-9-]`: Ceph rewrites `_`), or as the `user.barnacle.blake3`
//!   (`.sha256`) extended attribute locally.
//! * Listings are string-prefix listings (S3 semantics), paginated to the end.
//! * No request carries the flexible-checksum headers (`x-amz-checksum-*`,
//!   `aws-chunked` trailers) that break Ceph RGW and other S3-compatible stores.

pub mod chunk_reader;
#[cfg(feature = "s3")]
mod describe;
#[cfg(feature = "s3")]
mod http_client;
#[cfg(feature = "s3")]
mod http_proxy;
mod local;
#[cfg(feature = "s3")]
pub mod profile;
#[cfg(feature = "s3")]
mod s3;
mod s3_options;
pub mod upload;
mod url;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use object_store::PutPayload;

use crate::codec::{ContentDigest, DigestAlgorithm};

pub use s3_options::{AddressingStyle, Encryption, S3Options};
pub use url::StoreUrl;

/// The S3 metadata key (after `x-amz-meta-`) of a content digest of `algorithm`.
fn digest_metadata_key(algorithm: DigestAlgorithm) -> String {
    format!("barnacle-{}", algorithm.tag())
}

/// The local store's extended attribute of a content digest of `algorithm`.
fn digest_xattr(algorithm: DigestAlgorithm) -> String {
    format!("user.barnacle.{}", algorithm.tag())
}

/// The digest an object carries, `value_of` looking each algorithm up:
/// BLAKE3 first (objects of earlier builds carry only SHA-256).
fn recorded_digest(
    mut value_of: impl FnMut(DigestAlgorithm) -> Option<String>,
) -> Option<ContentDigest> {
    DigestAlgorithm::ALL
        .into_iter()
        .find_map(|algorithm| value_of(algorithm).map(|hex| ContentDigest::new(algorithm, hex)))
}

/// What the storage layer can fail with. Each variant names the cause; none
/// carries a credential.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid archive URL '{url}': {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("invalid storage configuration: {0}")]
    Config(String),
    #[error(
        "no credentials found for {endpoint}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
         a profile (-P), or AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN"
    )]
    NoCredentials { endpoint: String },
    #[error("bucket '{bucket}' does not exist at {endpoint}")]
    NoSuchBucket { bucket: String, endpoint: String },
    #[error("object {key} not found")]
    NotFound { key: String },
    #[error("cannot reach {endpoint}: {detail}")]
    Unreachable { endpoint: String, detail: String },
    #[error("{op} {key} refused (check the credentials and their permissions): {detail}")]
    Denied {
        op: &'static str,
        key: String,
        detail: String,
    },
    #[error("{op} {key}: the store does not support conditional writes: {detail}")]
    ConditionalUnsupported {
        op: &'static str,
        key: String,
        detail: String,
    },
    #[error("{op} {key} failed: {detail}")]
    Request {
        op: &'static str,
        key: String,
        detail: String,
    },
    #[error("{op} {path}: {source}")]
    Local {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StorageError {
    /// True when the store could not be reached at all (network, DNS, TLS).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, StorageError::Unreachable { .. })
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Attributes stored with an object.
#[derive(Debug, Clone, Default)]
pub struct PutAttrs {
    /// The digest of the uncompressed content.
    pub digest: Option<ContentDigest>,
    /// S3 object tags (`x-amz-tagging`); ignored by the local store.
    pub tags: Vec<(String, String)>,
}

/// What [`Store::put_if_absent`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    AlreadyExists,
}

/// An object read whole.
#[derive(Debug, Clone)]
pub struct StoredObject {
    pub body: Bytes,
    pub digest: Option<ContentDigest>,
}

/// An object read as a stream of chunks, with its stored checksum.
pub struct StreamedObject {
    pub chunks: BoxStream<'static, Result<Bytes>>,
    pub digest: Option<ContentDigest>,
}

/// An object's size and stored checksum, without its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    pub digest: Option<ContentDigest>,
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
}

/// A delimiter (`/`) listing: objects directly under a prefix, and the
/// "directories" below it (with their trailing `/`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirListing {
    pub objects: Vec<ListedObject>,
    pub prefixes: Vec<String>,
}

/// A multipart upload in progress. Parts are numbered in the order
/// [`MultipartUpload::put_part`] is called; their futures may run concurrently.
pub struct MultipartUpload {
    key: String,
    inner: MultipartInner,
}

enum MultipartInner {
    #[cfg(feature = "s3")]
    S3(s3::S3Multipart),
    Local(local::LocalMultipart),
}

impl std::fmt::Debug for MultipartUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultipartUpload")
            .field("key", &self.key)
            .finish()
    }
}

impl MultipartUpload {
    /// Starts sending the next part; the future resolves once it is stored.
    pub fn put_part(&mut self, data: Bytes) -> BoxFuture<'static, Result<()>> {
        match &mut self.inner {
            #[cfg(feature = "s3")]
            MultipartInner::S3(m) => m.put_part(data),
            MultipartInner::Local(m) => m.put_part(data),
        }
    }

    /// Assembles the parts into the object (all parts must have completed).
    pub async fn complete(self) -> Result<()> {
        match self.inner {
            #[cfg(feature = "s3")]
            MultipartInner::S3(m) => m.complete().await,
            MultipartInner::Local(m) => m.complete().await,
        }
    }

    /// Abandons the upload and frees what the store holds for it.
    pub async fn abort(self) -> Result<()> {
        match self.inner {
            #[cfg(feature = "s3")]
            MultipartInner::S3(m) => m.abort().await,
            MultipartInner::Local(m) => m.abort().await,
        }
    }
}

/// Whether the bucket (or the local root directory) exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketState {
    Exists,
    Missing,
}

/// Everything needed to open a store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub url: StoreUrl,
    pub s3: S3Options,
}

#[derive(Debug, Clone)]
enum Backend {
    #[cfg(feature = "s3")]
    S3(Arc<s3::S3Backend>),
    Local(Arc<local::LocalBackend>),
}

/// One archive location. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
}

impl Store {
    /// Opens the store a URL names. Credentials are resolved here; nothing is
    /// sent over the network, except to find an AWS bucket's region when no
    /// region is configured.
    pub async fn open(config: &StoreConfig) -> Result<Store> {
        let backend = match &config.url {
            #[cfg(feature = "s3")]
            StoreUrl::S3 { bucket, .. } => {
                Backend::S3(Arc::new(s3::S3Backend::new(bucket, &config.s3).await?))
            }
            #[cfg(not(feature = "s3"))]
            StoreUrl::S3 { .. } => {
                return Err(StorageError::Config(
                    "this barnacle was built without S3 support (cargo feature `s3`)".into(),
                ));
            }
            StoreUrl::File { root } => {
                Backend::Local(Arc::new(local::LocalBackend::new(root.clone())))
            }
        };
        Ok(Store { backend })
    }

    /// A store over a local directory (tests, the embedded default).
    pub fn local(root: impl Into<PathBuf>) -> Store {
        Store {
            backend: Backend::Local(Arc::new(local::LocalBackend::new(root.into()))),
        }
    }

    /// A description for messages: the endpoint and bucket, or the directory.
    pub fn describe(&self) -> String {
        match &self.backend {
            #[cfg(feature = "s3")]
            Backend::S3(s) => s.describe(),
            Backend::Local(l) => l.describe(),
        }
    }

    /// The bucket or directory, without the endpoint: what identifies the
    /// archive whichever way it is reached.
    pub fn location(&self) -> String {
        match &self.backend {
            #[cfg(feature = "s3")]
            Backend::S3(s) => s.location(),
            Backend::Local(l) => l.describe(),
        }
    }

    /// Stores `body` at `key` unless an object is already there. Returns only
    /// once the store has durably accepted the whole object.
    pub async fn put_if_absent(
        &self,
        key: &str,
        body: impl Into<PutPayload>,
        attrs: &PutAttrs,
    ) -> Result<PutOutcome> {
        let body = body.into();
        match &self.backend {
            #[cfg(feature = "s3")]
            Backend::S3(s) => s.put(key, body, attrs, true).await,
            Backend::Local(l) => l.put(key, body, attrs, true).await,
        }
    }

    /// Stores `body` at `key`, replacing any object there.
    pub async fn put(
        &self,
        key: &str,
        body: impl Into<PutPayload>,
        attrs: &PutAttrs,
    ) -> Result<()> {
        let body = body.into();
        match &self.backend {
            #[cfg(feature = "s3")]
            Backend::S3(s) => s.put(key, body, attrs, false).await.map(drop),
            Backend::Local(l) => l.put(key, body, attrs, false).await.map(drop),
        }
    }

    /// Reads a whole object. A missing object is [`StorageError::NotFound`].
    pub async fn get(&self, key: &str) -> Result<StoredObject> {
        match &self.backend {
            #[cfg(feature = "s3")]
            Backend::S3(s) => s.get(key).await,
            Backend::Local(l) => l.get(key).await,
        }
    }

    /// An object's size and checksum, or `None` when it does not exist.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        match &self.backend {
            #[cfg(feature = "s3")]
            Backend::S3(s) => s.head(key).await,
            Backend::Local(l) => l.head(key).await,
        }
    }

    /// Every object whose key starts with `prefix` (a plain string prefix),
    /// sorted by key.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>> {
        let mut objects = match &self.backend {
            #[cfg(feature = "s3")]
            Backend::S3(s) => s.list(prefix).await?,
            Backend::Local(l) => l.list(prefix).await?,
        };
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// Objects directly under `prefix` and the sub-"directories" (delimiter `/`),
    /// both sorted.
    pub async fn list_dir(&self, prefix: &str) -> Result<DirListing> {
        let mut listing = match &self.backend {
            #[cfg(feature = "s3")]
            Backend::S3(s) => s.list_dir(prefix).await?,
            Backend::Local(l) => l.list_dir(prefix).await?,
        };
        listing.objects.sort_by(|a, b| a.key.cmp(&b.key));
        listing.prefixes.sort();
        Ok(listing)
    }

    /// Reads an object as a stream of chunks, in bounded memory (backup tars,
    /// WAL). A missing object is [`StorageError::NotFound`].
    pub async fn get_stream(&self, key: &str) -> Result<StreamedObject> {
        match &self.backend {
            #[cfg(feature = "s3")]
            Backend::S3(s) => s.get_stream(key).await,
            Backend::Local(l) => l.get_stream(key).await,
        }
    }

    /// Starts a multipart upload to `key` (see [`upload::upload_stream`]).
    #[cfg_attr(not(feature = "s3"), allow(unused_variables))] // S3 only
    pub async fn create_multipart(&self, key: &str, attrs: &PutAttrs) -> Result<MultipartUpload> {
        let inner = match &self.backend {
            #[cfg(feature = "s3")]
            Backend::S3(s) => MultipartInner::S3(s.create_multipart(key, attrs).await?),
            Backend::Local(l) => MultipartInner::Local(l.create_multipart(key).await?),
        };
        Ok(MultipartUpload {
            key: key.to_string(),
            inner,
        })
    }

    /// Deletes `keys`, in batches of at most `batch_size` per request where
    /// the store has bulk deletes. Missing keys are not an error.
    #[cfg_attr(not(feature = "s3"), allow(unused_variables))] // S3 only
    pub async fn delete_many(&self, keys: &[String], batch_size: usize) -> Result<()> {
        match &self.backend {
            #[cfg(feature = "s3")]
            Backend::S3(s) => s.delete_many(keys, batch_size.clamp(1, 1000)).await,
            Backend::Local(l) => l.delete_many(keys).await,
        }
    }

    /// Creates the bucket (or the local root directory).
    pub async fn create_bucket(&self) -> Result<()> {
        match &self.backend {
            #[cfg(feature = "s3")]
            Backend::S3(s) => s.create_bucket().await,
            Backend::Local(l) => l.create_root().await,
        }
    }

    /// Whether the bucket exists; [`StorageError::Unreachable`] when the
    /// endpoint cannot be reached.
    pub async fn check_bucket(&self) -> Result<BucketState> {
        match &self.backend {
            #[cfg(feature = "s3")]
            Backend::S3(s) => s.check_bucket().await,
            Backend::Local(l) => l.check_bucket().await,
        }
    }
}

/// Default per-request timeout when `--read-timeout` is not given (botocore's 60 s).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);

//! The S3 backend: AWS S3 and S3-compatible stores through `object_store`.
//!
//! Credentials follow boto3's chain: an explicit profile (`-P`), then the
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN` variables,
//! then `AWS_PROFILE` or the `default` profile of the shared files, then web
//! identity (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`, i.e. IRSA), then
//! container credentials, then the EC2 instance role. With a custom
//! `--endpoint-url` (or `AWS_EC2_METADATA_DISABLED=true`) and none of these,
//! we fail at once with "no credentials" instead of probing the instance
//! metadata service.
//!
//! Region: `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile, else (AWS only)
//! the bucket's own region as S3 reports it, else `us-east-1`.
//! Addressing: `auto` is path style for custom endpoints and virtual-hosted
//! style on AWS (path style for bucket names with dots), as botocore does.
//! TLS: the system roots plus `AWS_CA_BUNDLE` / `--ca-bundle`.
//! No flexible checksums are configured, so no request carries them.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use object_store::PutPayload;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::list::{PaginatedListOptions, PaginatedListResult, PaginatedListStore};
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, BackoffConfig, Certificate, ClientOptions, GetOptions, ObjectStore,
    ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, RetryConfig, TagSet,
};

use super::describe::{classify, is_ambiguous, is_body_error};
use super::http_client::{
    BARNACLE_USER_AGENT, CONNECT_TIMEOUT, Connector, REQUEST_TIMEOUT, TrustedRoots,
    pem_certificates,
};
use super::{
    AddressingStyle, BucketState, DirListing, Encryption, ListedObject, ObjectInfo, PutAttrs,
    PutOutcome, Result, S3Options, StorageError, StoredObject, StreamedObject, digest_metadata_key,
    profile, recorded_digest,
};
use crate::codec::ContentDigest;

#[derive(Debug)]
pub(super) struct S3Backend {
    store: Arc<AmazonS3>,
    bucket: String,
    endpoint: String,
    /// The bucket's URL (path or virtual-hosted style), for CreateBucket.
    bucket_url: String,
    region: String,
    client: ClientOptions,
    /// Makes the HTTP client (the store's, and CreateBucket's).
    connector: Connector,
}

/// Extra attempts for what object_store does not retry itself (see [`S3Backend::put`] and
/// [`S3Backend::list_page`]).
const TRANSIT_RETRIES: u32 = 2;

/// The pause before extra attempt `n` (from 1): 200 ms, 400 ms, each plus up to half again
/// of random jitter, so that pushes failing together do not retry in lockstep.
fn transit_backoff(n: u32) -> Duration {
    let base: u64 = 100 << n.min(5);
    Duration::from_millis(base + random_u64() % (base / 2 + 1))
}

/// Runs `op`, and again (at most [`TRANSIT_RETRIES`] more times, after [`transit_backoff`])
/// while it fails in a way `retry` accepts; logs `why` with `key` before each new attempt.
async fn with_transit_retries<T, Fut>(
    key: &str,
    why: &str,
    retry: impl Fn(&object_store::Error) -> bool,
    op: impl Fn() -> Fut,
) -> object_store::Result<T>
where
    Fut: std::future::Future<Output = object_store::Result<T>>,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Err(e) if attempt < TRANSIT_RETRIES && retry(&e) => {
                attempt += 1;
                tracing::info!(key, error = %super::describe::chain_text(&e), "{why}");
                tokio::time::sleep(transit_backoff(attempt)).await;
            }
            other => return other,
        }
    }
}

/// A random number without a dependency: `RandomState` is seeded from the OS per instance.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn is_aws_endpoint(endpoint: &str) -> bool {
    let host = endpoint.split("://").nth(1).unwrap_or(endpoint);
    let host = host.split(['/', ':']).next().unwrap_or(host);
    host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn")
}

/// The config key for `x-amz-server-side-encryption` (its enum is not exported).
fn sse_key() -> Result<AmazonS3ConfigKey> {
    "aws_server_side_encryption"
        .parse()
        .map_err(|e: object_store::Error| StorageError::Config(e.to_string()))
}

/// The HTTP client's options (object_store's, read by barnacle's client as
/// by reqwest) and the TLS roots barnacle's client trusts, from the same choices.
fn client_options(
    opts: &S3Options,
    endpoint: Option<&str>,
) -> Result<(ClientOptions, TrustedRoots)> {
    let read_timeout = opts.read_timeout.unwrap_or(super::DEFAULT_READ_TIMEOUT);
    let plain_http = endpoint.is_some_and(|e| e.starts_with("http://"));
    let user_agent = http::HeaderValue::from_static(BARNACLE_USER_AGENT);
    let mut client = ClientOptions::new()
        .with_allow_http(plain_http)
        .with_user_agent(user_agent)
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_read_timeout(read_timeout)
        .with_timeout(REQUEST_TIMEOUT);
    // Loading the system's root certificates costs ~3 ms per process; a plain
    // HTTP endpoint without web identity (whose STS calls use HTTPS) needs none.
    let web_identity = env("AWS_WEB_IDENTITY_TOKEN_FILE").is_some();
    if plain_http && !web_identity {
        let roots = TrustedRoots::Only(Vec::new());
        return Ok((client.with_no_system_certificates(true), roots));
    }
    let mut roots = TrustedRoots::System;
    if let Some(path) = &opts.ca_bundle {
        let pem = std::fs::read(path).map_err(|e| {
            StorageError::Config(format!("cannot read CA bundle {}: {e}", path.display()))
        })?;
        let not_pem = |e: String| {
            StorageError::Config(format!(
                "CA bundle {} is not valid PEM: {e}",
                path.display()
            ))
        };
        let certs = pem_certificates(&pem).map_err(not_pem)?;
        if certs.is_empty() {
            return Err(StorageError::Config(format!(
                "CA bundle {} holds no certificate",
                path.display()
            )));
        }
        // The bundle replaces the system's roots, as `AWS_CA_BUNDLE` does for
        // boto3 (and so for Barman); loading the 140-odd system roots was
        // about 3 ms of CPU and some heap in every call.
        client = client.with_no_system_certificates(true);
        for cert in &certs {
            let cert = Certificate::from_der(cert).map_err(|e| not_pem(e.to_string()))?;
            client = client.with_root_certificate(cert);
        }
        roots = TrustedRoots::Only(certs);
    }
    Ok((client, roots))
}

impl S3Backend {
    pub(super) async fn new(bucket: &str, opts: &S3Options) -> Result<S3Backend> {
        let explicit_profile = opts.profile.clone();
        let profile_name = explicit_profile
            .clone()
            .or_else(|| env("AWS_PROFILE"))
            .unwrap_or_else(|| "default".to_string());
        let profile = profile::load(&profile_name);
        if explicit_profile.is_some() && profile.is_none() {
            return Err(StorageError::Config(format!(
                "the config profile ({profile_name}) could not be found"
            )));
        }
        let profile = profile.unwrap_or_default();

        let endpoint = opts
            .endpoint_url
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .or_else(|| profile.endpoint_url.clone())
            .map(|e| e.trim_end_matches('/').to_string());
        if let Some(e) = &endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(StorageError::Config(format!(
                "endpoint URL '{e}' must start with http:// or https://"
            )));
        }
        let (client, roots) = client_options(opts, endpoint.as_deref())?;
        let connector = Connector::new(&roots).map_err(StorageError::Config)?;

        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_client_options(client.clone())
            .with_http_connector(connector.clone())
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(5),
                    base: 2.0,
                },
                max_retries: 4,
                retry_timeout: Duration::from_secs(120),
            });

        // Credentials, in boto3's order.
        let env_keys = env("AWS_ACCESS_KEY_ID").zip(env("AWS_SECRET_ACCESS_KEY"));
        let profile_keys = profile
            .access_key_id
            .clone()
            .zip(profile.secret_access_key.clone());
        let static_keys = if explicit_profile.is_some() {
            profile_keys
                .clone()
                .map(|k| (k, profile.session_token.clone()))
        } else {
            env_keys
                .map(|k| (k, env("AWS_SESSION_TOKEN")))
                .or_else(|| profile_keys.map(|k| (k, profile.session_token.clone())))
        };
        let has_static = static_keys.is_some();
        if let Some(((key, secret), token)) = static_keys {
            builder = builder
                .with_access_key_id(key)
                .with_secret_access_key(secret)
                .with_config(AmazonS3ConfigKey::Token, token.unwrap_or_default());
        }
        let has_web_identity =
            env("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() && env("AWS_ROLE_ARN").is_some();
        let has_container = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
            || (env("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
                && env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").is_some());
        let imds_disabled =
            env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let custom_endpoint = endpoint.as_deref().is_some_and(|e| !is_aws_endpoint(e));
        let display_endpoint = endpoint.clone().unwrap_or_else(|| "AWS S3".to_string());
        if !has_static && !has_web_identity && !has_container && (imds_disabled || custom_endpoint)
        {
            return Err(StorageError::NoCredentials {
                endpoint: display_endpoint,
            });
        }

        // Region.
        let mut region = env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .or(profile.region.clone());
        if region.is_none() && endpoint.is_none() {
            region = object_store::aws::resolve_bucket_region(bucket, &client)
                .await
                .ok();
        }
        let region = region.unwrap_or_else(|| "us-east-1".to_string());
        builder = builder.with_region(region.clone());

        // Endpoint and addressing style.
        let virtual_hosted = match opts.addressing_style {
            AddressingStyle::Path => false,
            AddressingStyle::Virtual => true,
            AddressingStyle::Auto => {
                endpoint.as_deref().is_none_or(is_aws_endpoint) && !bucket.contains('.')
            }
        };
        builder = builder.with_virtual_hosted_style_request(virtual_hosted);
        let bucket_url = match (&endpoint, virtual_hosted) {
            (Some(e), true) => {
                let (scheme, host) = e.split_once("://").unwrap_or(("https", e));
                let url = format!("{scheme}://{bucket}.{host}");
                builder = builder.with_endpoint(url.clone());
                url
            }
            (Some(e), false) => {
                builder = builder.with_endpoint(e.clone());
                format!("{e}/{bucket}")
            }
            (None, true) => format!("https://{bucket}.s3.{region}.amazonaws.com"),
            (None, false) => format!("https://s3.{region}.amazonaws.com/{bucket}"),
        };
        // Over HTTPS the signature covers `UNSIGNED-PAYLOAD` instead of a
        // SHA-256 of every body, as boto3 does for S3 over HTTPS (TLS protects
        // the body in transit; barnacle's own digest of the content is in the
        // object's metadata and checked on restore). A 3 MiB compressed
        // segment cost 2 ms of hashing. Plain HTTP keeps the signed hash.
        builder = builder.with_unsigned_payload(bucket_url.starts_with("https://"));

        match &opts.encryption {
            None => {}
            Some(Encryption::Aes256) => builder = builder.with_config(sse_key()?, "AES256"),
            Some(Encryption::Kms { key_id: Some(id) }) => {
                builder = builder.with_sse_kms_encryption(id)
            }
            Some(Encryption::Kms { key_id: None }) => {
                builder = builder.with_config(sse_key()?, "aws:kms")
            }
        }

        let store = builder
            .build()
            .map_err(|e| StorageError::Config(super::describe::chain_text(&e)))?;
        Ok(S3Backend {
            store: Arc::new(store),
            bucket: bucket.to_string(),
            endpoint: display_endpoint,
            bucket_url,
            region,
            client,
            connector,
        })
    }

    pub(super) fn location(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    pub(super) fn describe(&self) -> String {
        format!("s3://{} at {}", self.bucket, self.endpoint)
    }

    fn err(&self, e: object_store::Error, op: &'static str, key: &str) -> StorageError {
        classify(e, op, key, &self.bucket, &self.endpoint)
    }

    fn attributes(attrs: &PutAttrs) -> (Attributes, TagSet) {
        let mut attributes = Attributes::new();
        if let Some(digest) = &attrs.digest {
            attributes.insert(
                Attribute::Metadata(digest_metadata_key(digest.algorithm).into()),
                digest.hex.clone().into(),
            );
        }
        let mut tags = TagSet::default();
        for (k, v) in &attrs.tags {
            tags.push(k, v);
        }
        (attributes, tags)
    }

    pub(super) async fn put(
        &self,
        key: &str,
        payload: PutPayload,
        attrs: &PutAttrs,
        create: bool,
    ) -> Result<PutOutcome> {
        let (attributes, tags) = Self::attributes(attrs);
        let opts = PutOptions {
            mode: if create {
                PutMode::Create
            } else {
                PutMode::Overwrite
            },
            tags,
            attributes,
            ..Default::default()
        };
        let path = Path::from(key);
        // A conditional put that timed out or lost its connection is not retried by
        // object_store (not idempotent), but sending it again is safe: a copy that did land
        // answers 412, which the caller then compares.
        let sent = with_transit_retries(
            key,
            "conditional PUT interrupted; sending it again",
            |e| create && is_ambiguous(e),
            || self.store.put_opts(&path, payload.clone(), opts.clone()),
        )
        .await;
        match sent {
            Ok(_) => Ok(PutOutcome::Created),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) if create => Ok(PutOutcome::AlreadyExists),
            Err(e) => Err(self.err(e, "PUT", key)),
        }
    }

    /// The content digest barnacle stored with an object, if any.
    fn stored_digest(attributes: &object_store::Attributes) -> Option<ContentDigest> {
        recorded_digest(|algorithm| {
            attributes
                .get(&Attribute::Metadata(digest_metadata_key(algorithm).into()))
                .map(|v| v.to_string())
        })
    }

    pub(super) async fn get(&self, key: &str) -> Result<StoredObject> {
        let result = self
            .store
            .get_opts(&Path::from(key), GetOptions::default())
            .await
            .map_err(|e| self.err(e, "GET", key))?;
        let digest = Self::stored_digest(&result.attributes);
        let body = result.bytes().await.map_err(|e| self.err(e, "GET", key))?;
        Ok(StoredObject { body, digest })
    }

    pub(super) async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        let opts = GetOptions {
            head: true,
            ..Default::default()
        };
        match self.store.get_opts(&Path::from(key), opts).await {
            Ok(r) => Ok(Some(ObjectInfo {
                size: r.meta.size,
                digest: Self::stored_digest(&r.attributes),
            })),
            Err(e) => match self.err(e, "HEAD", key) {
                StorageError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    /// One page of a listing. object_store retries the request but not the reading of its
    /// answer: a page whose body breaks in transit (a reset, a truncated answer) is asked
    /// for again here, a few times.
    async fn list_page(
        &self,
        prefix: Option<&str>,
        opts: PaginatedListOptions,
    ) -> object_store::Result<PaginatedListResult> {
        with_transit_retries(
            prefix.unwrap_or(""),
            "listing answer broken in transit; asking again",
            is_body_error,
            || self.store.list_paginated(prefix, opts.clone()),
        )
        .await
    }

    pub(super) async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let opts = PaginatedListOptions {
                page_token: token,
                ..Default::default()
            };
            let page = self
                .list_page(Some(prefix), opts)
                .await
                .map_err(|e| self.err(e, "LIST", prefix))?;
            out.extend(page.result.objects.into_iter().map(|m| ListedObject {
                key: m.location.to_string(),
                size: m.size,
            }));
            token = page.page_token;
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    pub(super) async fn check_bucket(&self) -> Result<BucketState> {
        let opts = PaginatedListOptions {
            max_keys: Some(1),
            ..Default::default()
        };
        match self.list_page(None, opts).await {
            Ok(_) => Ok(BucketState::Exists),
            Err(e) => match self.err(e, "LIST", "/") {
                StorageError::NoSuchBucket { .. } | StorageError::NotFound { .. } => {
                    Ok(BucketState::Missing)
                }
                other => Err(other),
            },
        }
    }

    /// CreateBucket (object_store has none): a SigV4-signed `PUT /BUCKET`
    /// with a LocationConstraint outside us-east-1, as Barman's
    /// `barman-cloud-check-wal-archive` sends it.
    pub(super) async fn create_bucket(&self) -> Result<()> {
        use object_store::aws::AwsAuthorizer;
        use object_store::client::{HttpConnector, HttpRequestBody};
        let fail = |detail: String| StorageError::Request {
            op: "CreateBucket",
            key: self.bucket.clone(),
            detail,
        };
        let credential = self
            .store
            .credentials()
            .get_credential()
            .await
            .map_err(|e| self.err(e, "CreateBucket", ""))?;
        let body = if self.region == "us-east-1" {
            String::new()
        } else {
            format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                self.region
            )
        };
        let mut request = http::Request::builder()
            .method("PUT")
            .uri(&self.bucket_url)
            .body(HttpRequestBody::from(body))
            .map_err(|e| fail(e.to_string()))?;
        AwsAuthorizer::new(&credential, "s3", &self.region)
            .try_authorize(&mut request, None)
            .map_err(|e| self.err(e, "CreateBucket", ""))?;
        let client = self
            .connector
            .connect(&self.client)
            .map_err(|e| self.err(e, "CreateBucket", ""))?;
        let response = client
            .execute(request)
            .await
            .map_err(|e| StorageError::Unreachable {
                endpoint: self.endpoint.clone(),
                detail: super::describe::chain_text(&e),
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response
            .into_body()
            .bytes()
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        Err(fail(format!(
            "{status}: {}",
            text.replace(['\n', '\r'], " ")
        )))
    }

    pub(super) async fn list_dir(&self, prefix: &str) -> Result<DirListing> {
        let mut out = DirListing::default();
        let mut token = None;
        loop {
            let opts = PaginatedListOptions {
                page_token: token,
                delimiter: Some("/".into()),
                ..Default::default()
            };
            let page = self
                .list_page(Some(prefix), opts)
                .await
                .map_err(|e| self.err(e, "LIST", prefix))?;
            out.objects
                .extend(page.result.objects.into_iter().map(|m| ListedObject {
                    key: m.location.to_string(),
                    size: m.size,
                }));
            out.prefixes.extend(
                page.result
                    .common_prefixes
                    .into_iter()
                    .map(|p| format!("{p}/")),
            );
            token = page.page_token;
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    pub(super) async fn get_stream(&self, key: &str) -> Result<StreamedObject> {
        let result = self
            .store
            .get_opts(&Path::from(key), GetOptions::default())
            .await
            .map_err(|e| self.err(e, "GET", key))?;
        let digest = Self::stored_digest(&result.attributes);
        let (key, bucket, endpoint) = (key.to_string(), self.bucket.clone(), self.endpoint.clone());
        let chunks = result
            .into_stream()
            .map_err(move |e| classify(e, "GET", &key, &bucket, &endpoint))
            .boxed();
        Ok(StreamedObject { chunks, digest })
    }

    pub(super) async fn create_multipart(
        &self,
        key: &str,
        attrs: &PutAttrs,
    ) -> Result<S3Multipart> {
        let (attributes, tags) = Self::attributes(attrs);
        let opts = PutMultipartOptions {
            tags,
            attributes,
            ..Default::default()
        };
        let upload = self
            .store
            .put_multipart_opts(&Path::from(key), opts)
            .await
            .map_err(|e| self.err(e, "CreateMultipartUpload", key))?;
        Ok(S3Multipart {
            upload,
            key: key.to_string(),
            bucket: self.bucket.clone(),
            endpoint: self.endpoint.clone(),
        })
    }

    /// Bulk deletes (DeleteObjects with Content-MD5, which object_store always
    /// sends), [`DELETE_BATCHES_IN_FLIGHT`] batches at a time, falling back to
    /// one DeleteObject per key where a store refuses bulk deletes, as Barman
    /// does. The keys of one call are deleted in no particular order; the call
    /// returns once all of them are gone (or at the first error).
    pub(super) async fn delete_many(&self, keys: &[String], batch_size: usize) -> Result<()> {
        // The futures made first, not in a stream closure: a closure over
        // borrowed batches makes the sidecar's boxed future not `Send`-general.
        let batches: Vec<_> = (keys.chunks(batch_size.max(1)))
            .map(|batch| self.delete_batch(batch))
            .collect();
        futures::stream::iter(batches)
            .buffer_unordered(DELETE_BATCHES_IN_FLIGHT)
            .try_collect::<()>()
            .await
    }

    /// One DeleteObjects request (or single deletes where it is refused).
    async fn delete_batch(&self, batch: &[String]) -> Result<()> {
        let paths: Vec<object_store::Result<Path>> =
            batch.iter().map(|k| Ok(Path::from(k.as_str()))).collect();
        let results: Vec<object_store::Result<Path>> = self
            .store
            .delete_stream(futures::stream::iter(paths).boxed())
            .collect()
            .await;
        let mut refused = false;
        for (key, result) in batch.iter().zip(results) {
            match result {
                Ok(_) => {}
                Err(e) => match self.err(e, "DELETE", key) {
                    StorageError::NotFound { .. } => {}
                    StorageError::Request { detail, .. }
                        if detail.contains("MissingContentMD5")
                            || detail.to_ascii_lowercase().contains("content-md5")
                            || detail.contains("NotImplemented") =>
                    {
                        refused = true;
                    }
                    other => return Err(other),
                },
            }
        }
        if refused {
            for key in batch {
                tracing::warn!(key = %key, "bulk delete refused; deleting this file individually");
                match self.store.delete(&Path::from(key.as_str())).await {
                    Ok(()) => {}
                    Err(e) => match self.err(e, "DELETE", key) {
                        StorageError::NotFound { .. } => {}
                        other => return Err(other),
                    },
                }
            }
        }
        Ok(())
    }
}

/// DeleteObjects requests one [`S3Backend::delete_many`] call keeps in flight:
/// a bulk delete is slow on the server's side (SeaweedFS removes ~2 000
/// objects a second per request stream), so several at once use its cores.
const DELETE_BATCHES_IN_FLIGHT: usize = 8;

/// An S3 multipart upload.
pub(super) struct S3Multipart {
    upload: Box<dyn object_store::MultipartUpload>,
    key: String,
    bucket: String,
    endpoint: String,
}

impl S3Multipart {
    pub(super) fn put_part(&mut self, data: Bytes) -> BoxFuture<'static, Result<()>> {
        let part = self.upload.put_part(data.into());
        let (key, bucket, endpoint) =
            (self.key.clone(), self.bucket.clone(), self.endpoint.clone());
        Box::pin(async move {
            part.await
                .map_err(|e| classify(e, "UploadPart", &key, &bucket, &endpoint))
        })
    }

    pub(super) async fn complete(mut self) -> Result<()> {
        self.upload.complete().await.map(drop).map_err(|e| {
            classify(
                e,
                "CompleteMultipartUpload",
                &self.key,
                &self.bucket,
                &self.endpoint,
            )
        })
    }

    pub(super) async fn abort(mut self) -> Result<()> {
        self.upload.abort().await.map_err(|e| {
            classify(
                e,
                "AbortMultipartUpload",
                &self.key,
                &self.bucket,
                &self.endpoint,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transit_backoff_doubles_with_bounded_jitter() {
        for n in 1..=2 {
            let base = Duration::from_millis(100 << n);
            let pauses: Vec<Duration> = (0..64).map(|_| transit_backoff(n)).collect();
            assert!(pauses.iter().all(|p| *p >= base && *p <= base * 3 / 2));
            assert!(pauses.iter().any(|p| *p != pauses[0]), "no jitter");
        }
    }
}

//! The HTTP client under `object_store`: hyper's own client, with each
//! connection's read buffer bounded to [`READ_BUFFER_MAX`].
//!
//! Why not reqwest (object_store's default): hyper grows a connection's read
//! buffer to 408 KiB whenever data arrive faster than they are taken, which is
//! every download on a fast network (the decoder is the slower side), and
//! reqwest offers no way to bound it (`http1_max_buf_size` is hyper's, and
//! reqwest's `connector_layer` cannot wrap the connection). `restore -p 4`
//! downloads four segments at once; with 64 KiB buffers its peak RSS on
//! poorly compressible WAL fell from 11.8 to 9.8 MiB (median of 9 interleaved
//! calls; docs/benchmarks.md, "hyper's read buffer bounded").
//!
//! What reqwest did for object_store, this does the same way:
//! * TLS through rustls with AWS-LC: the system's roots (rustls's platform
//!   verifier, as reqwest) or only the CA bundle's (`--ca-bundle`,
//!   `AWS_CA_BUNDLE`), the one choice made here ([`Connector::new`]).
//! * Everything else from the `ClientOptions` object_store passes for each
//!   client it makes, as reqwest took them: the store's (plain `http://` only
//!   for an `http://` endpoint), or the credential services' (plain HTTP
//!   allowed for the instance metadata and container credential endpoints,
//!   1 s to connect to the former; HTTPS only for STS).
//! * Timeouts as reqwest applies them: the connect timeout per connection
//!   attempt; the response's head within the read timeout (and the total) of
//!   the request's start; then each piece of its body within the read timeout
//!   of the one before, and the whole within the total.
//! * Errors sorted into `object_store`'s kinds the way its reqwest glue sorts
//!   them, so its retries (and `describe`) behave the same.
//! * `Host` from the URL, `Content-Length` from the body's exact size,
//!   connections kept alive 90 s, TCP_NODELAY, HTTP/1.1 only (as reqwest is
//!   built here).
//!
//! * Proxies from the environment, as reqwest reads them (`http_proxy`):
//!   `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`. A proxy this
//!   client cannot reach (over TLS, or SOCKS) leaves the store to reqwest,
//!   which implements those, with its unbounded read buffers.

use std::error::Error as StdError;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, USER_AGENT};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::rt::TokioExecutor;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody,
    HttpResponse, HttpResponseBody, HttpService, ReqwestConnector,
};
use object_store::{ClientConfigKey, ClientOptions};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::time::{Instant, Sleep};

use super::http_proxy::{Proxies, ProxyConnector};

/// The most hyper reads into a connection's buffer at once (its default is
/// 408 KiB; hyper's floor is 8 KiB). 64 KiB is four TLS records, and a
/// download's 64 KiB pieces (`ChunkReader`) are copied from it.
const READ_BUFFER_MAX: usize = 64 * 1024;

/// How long an idle connection stays in the pool (reqwest's default).
const POOL_IDLE: Duration = Duration::from_secs(90);

/// The `User-Agent` of every request.
pub(super) const BARNACLE_USER_AGENT: &str = concat!("barnacle/", env!("CARGO_PKG_VERSION"));

/// Which certificates a server's must chain to.
#[derive(Debug, Clone)]
pub(super) enum TrustedRoots {
    /// The system's, through rustls's platform verifier.
    System,
    /// Only these (DER), from a CA bundle; none when no HTTPS is expected.
    Only(Vec<CertificateDer<'static>>),
}

/// The certificates of a PEM bundle (DER), parsed once for both clients.
pub(super) fn pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

/// The time to connect, when `ClientOptions` name none.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most a request may take in all, when `ClientOptions` name none.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The duration `options` hold for `key` (object_store formats them with
/// humantime), else `default`.
fn duration_option(options: &ClientOptions, key: ClientConfigKey, default: Duration) -> Duration {
    options
        .get_config_value(&key)
        .and_then(|v| humantime::parse_duration(&v).ok())
        .unwrap_or(default)
}

/// Builds the client for `object_store` (`AmazonS3Builder::with_http_connector`):
/// hyper's with bounded buffers, or reqwest behind a proxy only it can reach.
#[derive(Debug, Clone)]
pub(super) struct Connector {
    /// The TLS settings of every client this makes (the store's and the
    /// credential services'), built once; `None`: reqwest, from `object_store`'s
    /// `ClientOptions`.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The environment's proxies, read once.
    proxies: Proxies,
}

impl Connector {
    /// Hyper's client trusting `roots`, through the environment's proxies;
    /// reqwest if one of them is not an `http://` proxy.
    pub(super) fn new(roots: &TrustedRoots) -> Result<Connector, String> {
        let proxies = Proxies::from_env();
        if proxies.needs_reqwest() {
            return Ok(Connector { tls: None, proxies });
        }
        Connector::trusting(roots, proxies)
    }

    /// Hyper's client trusting `roots`, through `proxies`.
    fn trusting(roots: &TrustedRoots, proxies: Proxies) -> Result<Connector, String> {
        let tls = Self::tls_config(roots)?;
        Ok(Connector {
            tls: Some(Arc::new(tls)),
            proxies,
        })
    }

    fn tls_config(roots: &TrustedRoots) -> Result<rustls::ClientConfig, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        Ok(match roots {
            TrustedRoots::System => {
                let verifier = rustls_platform_verifier::Verifier::new(provider)
                    .map_err(|e| format!("cannot load the system's root certificates: {e}"))?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verifier))
                    .with_no_client_auth()
            }
            TrustedRoots::Only(certs) => {
                let mut store = rustls::RootCertStore::empty();
                for cert in certs {
                    store
                        .add(cert.clone())
                        .map_err(|e| format!("a CA certificate is not usable: {e}"))?;
                }
                builder.with_root_certificates(store).with_no_client_auth()
            }
        })
    }
}

impl HttpConnector for Connector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let Some(tls) = &self.tls else {
            return ReqwestConnector::default().connect(options);
        };
        let allow_http = options
            .get_config_value(&ClientConfigKey::AllowHttp)
            .is_some_and(|v| v == "true");
        let user_agent = options
            .get_config_value(&ClientConfigKey::UserAgent)
            .and_then(|v| HeaderValue::from_str(&v).ok())
            .unwrap_or(HeaderValue::from_static(BARNACLE_USER_AGENT));
        let mut tcp = TcpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(duration_option(
            options,
            ClientConfigKey::ConnectTimeout,
            CONNECT_TIMEOUT,
        )));
        let tcp = ProxyConnector::new(tcp, self.proxies.clone());
        let schemes = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config((**tls).clone());
        let connector = if allow_http {
            schemes.https_or_http().enable_http1().wrap_connector(tcp)
        } else {
            schemes.https_only().enable_http1().wrap_connector(tcp)
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .http1_max_buf_size(READ_BUFFER_MAX)
            .build(connector);
        Ok(HttpClient::new(BoundedClient {
            client,
            proxies: self.proxies.clone(),
            user_agent,
            read_timeout: duration_option(
                options,
                ClientConfigKey::ReadTimeout,
                super::DEFAULT_READ_TIMEOUT,
            ),
            timeout: duration_option(options, ClientConfigKey::Timeout, REQUEST_TIMEOUT),
        }))
    }
}

#[derive(Debug)]
struct BoundedClient {
    client: Client<HttpsConnector<ProxyConnector>, HttpRequestBody>,
    /// For the credentials of a proxy plain-HTTP requests are sent to.
    proxies: Proxies,
    /// Sent unless the request has its own.
    user_agent: HeaderValue,
    read_timeout: Duration,
    timeout: Duration,
}

#[async_trait::async_trait]
impl HttpService for BoundedClient {
    async fn call(&self, mut request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let start = Instant::now();
        let deadline = start + self.timeout;
        if !request.headers().contains_key(USER_AGENT) {
            request
                .headers_mut()
                .insert(USER_AGENT, self.user_agent.clone());
        }
        self.proxies.authorize(&mut request);
        let head_by = deadline.min(start + self.read_timeout);
        let response = match tokio::time::timeout_at(head_by, self.client.request(request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => {
                let kind = if e.is_connect() {
                    HttpErrorKind::Connect
                } else {
                    kind_of(&e)
                };
                return Err(HttpError::new(kind, Transport::Request(e)));
            }
            Err(_) => {
                let waited = head_by - start;
                return Err(HttpError::new(
                    HttpErrorKind::Timeout,
                    TimedOut::Response(waited),
                ));
            }
        };
        let (parts, body) = response.into_parts();
        let body = TimedBody {
            body,
            read_timeout: self.read_timeout,
            next_by: Box::pin(tokio::time::sleep(self.read_timeout)),
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            total: self.timeout,
        };
        Ok(HttpResponse::from_parts(parts, HttpResponseBody::new(body)))
    }
}

/// A transport failure, named as reqwest names it, its cause as its source:
/// object_store's messages end with this name, and the one-line errors
/// (`describe::chain_text`) then show the causes below it, as they did over
/// reqwest ("client error (Connect): tcp connect error: Connection refused").
#[derive(Debug, thiserror::Error)]
enum Transport {
    #[error("error sending request")]
    Request(#[source] hyper_util::client::legacy::Error),
    #[error("error reading the response body")]
    Body(#[source] hyper::Error),
}

/// A timeout, named for the one-line error.
#[derive(Debug, thiserror::Error)]
enum TimedOut {
    #[error("timed out: no response from the server within {0:?}")]
    Response(Duration),
    #[error("timed out: no data from the server for {0:?}")]
    Body(Duration),
    #[error("timed out: the request took longer than {0:?}")]
    Total(Duration),
}

/// A response body that fails when a piece takes longer than `read_timeout`
/// after the one before, or the request longer than its total.
struct TimedBody {
    body: Incoming,
    read_timeout: Duration,
    next_by: Pin<Box<Sleep>>,
    deadline: Pin<Box<Sleep>>,
    total: Duration,
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            let next_by = Instant::now() + this.read_timeout;
            this.next_by.as_mut().reset(next_by);
            let failed = |e: hyper::Error| HttpError::new(kind_of(&e), Transport::Body(e));
            return Poll::Ready(frame.map(|f| f.map_err(failed)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            let e = TimedOut::Total(this.total);
            return Poll::Ready(Some(Err(HttpError::new(HttpErrorKind::Timeout, e))));
        }
        ready!(this.next_by.as_mut().poll(cx));
        let e = TimedOut::Body(this.read_timeout);
        Poll::Ready(Some(Err(HttpError::new(HttpErrorKind::Timeout, e))))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The kind `object_store`'s reqwest glue gives an error with these causes:
/// a connection closed or a message cut short is a request that may be sent
/// again; a reset or broken connection, an interruption; else unknown.
fn kind_of(err: &(dyn StdError + 'static)) -> HttpErrorKind {
    let mut source = Some(err);
    while let Some(e) = source {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_closed() || h.is_incomplete_message() || h.is_body_write_aborted() {
                return HttpErrorKind::Request;
            }
            if h.is_timeout() {
                return HttpErrorKind::Timeout;
            }
        }
        if let Some(e) = e.downcast_ref::<io::Error>() {
            match e.kind() {
                io::ErrorKind::TimedOut => return HttpErrorKind::Timeout,
                io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof => return HttpErrorKind::Interrupted,
                _ => {}
            }
        }
        source = e.source();
    }
    HttpErrorKind::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper_util::client::proxy::matcher::Matcher;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// The options of a store at an `http://` endpoint.
    fn settings(read_timeout: Duration) -> ClientOptions {
        ClientOptions::new()
            .with_allow_http(true)
            .with_connect_timeout(Duration::from_secs(5))
            .with_read_timeout(read_timeout)
            .with_timeout(Duration::from_secs(60))
    }

    fn client(options: ClientOptions) -> HttpClient {
        // Not `Connector::new`: a proxy in the test's environment must not change the client.
        Connector::trusting(&TrustedRoots::Only(Vec::new()), Proxies::default())
            .unwrap()
            .connect(&options)
            .unwrap()
    }

    /// A server on loopback that answers one request with `head`, then
    /// `body`, then (if `stall`) keeps the connection open and silent. Its
    /// task ends with the request's head, lowercased.
    async fn serve_once(
        head: String,
        body: Vec<u8>,
        stall: bool,
    ) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/bucket/key", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let request = String::from_utf8_lossy(&request).to_lowercase();
            if socket.write_all(head.as_bytes()).await.is_ok() {
                let _ = socket.write_all(&body).await;
                if stall {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
            }
            request
        });
        (url, server)
    }

    fn get(url: &str) -> HttpRequest {
        http::Request::get(url)
            .body(HttpRequestBody::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn body_frames_never_exceed_the_bounded_read_buffer() {
        let body: Vec<u8> = (0..4 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
        let (url, _) = serve_once(head, body.clone(), false).await;
        let response = client(settings(Duration::from_secs(10)))
            .execute(get(&url))
            .await
            .unwrap();
        // The server has written ahead into the socket by now: unbounded,
        // hyper would read (and hand on) up to 408 KiB at once.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut frames = response.into_body();
        let mut received = Vec::new();
        let mut largest = 0;
        while let Some(frame) =
            std::future::poll_fn(|cx| Pin::new(&mut frames).poll_frame(cx)).await
        {
            let data = frame.unwrap().into_data().unwrap();
            largest = largest.max(data.len());
            received.extend_from_slice(&data);
        }
        assert_eq!(received, body);
        // hyper reads into all of the buffer's spare room, which `BytesMut`
        // may round up to twice what was reserved.
        assert!(largest <= 2 * READ_BUFFER_MAX, "a frame of {largest} bytes");
    }

    #[tokio::test]
    async fn a_body_that_stops_arriving_fails_after_the_read_timeout() {
        let head = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n".to_string();
        let (url, _) = serve_once(head, vec![7u8; 40], true).await;
        let response = client(settings(Duration::from_millis(300)))
            .execute(get(&url))
            .await
            .unwrap();
        let err = response.into_body().bytes().await.unwrap_err();
        assert_eq!(err.kind(), HttpErrorKind::Timeout, "{err}");
        assert!(err.to_string().contains("no data from the server"), "{err}");
    }

    #[tokio::test]
    async fn a_response_that_never_comes_fails_after_the_read_timeout() {
        let (url, _) = serve_once(String::new(), Vec::new(), true).await;
        let started = Instant::now();
        let err = client(settings(Duration::from_millis(300)))
            .execute(get(&url))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), HttpErrorKind::Timeout, "{err}");
        assert!(err.to_string().contains("no response"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/b/k", listener.local_addr().unwrap());
        drop(listener);
        let err = client(settings(Duration::from_secs(5)))
            .execute(get(&url))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), HttpErrorKind::Connect, "{err}");
        // The one-line error shows the causes, as over reqwest.
        let text = super::super::describe::chain_text(&err);
        assert!(
            text.starts_with("client error (Connect): tcp connect error: "),
            "{text}"
        );
    }

    #[tokio::test]
    async fn plain_http_is_refused_unless_allowed() {
        let (url, _) = serve_once(
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".into(),
            Vec::new(),
            false,
        )
        .await;
        let https_only = settings(Duration::from_secs(5)).with_allow_http(false);
        assert!(client(https_only).execute(get(&url)).await.is_err());
        let allowed = client(settings(Duration::from_secs(5)))
            .execute(get(&url))
            .await;
        assert_eq!(allowed.unwrap().status(), 200);
    }

    #[tokio::test]
    async fn requests_carry_barnacle_s_user_agent() {
        let no_content = "HTTP/1.1 204 No Content\r\n\r\n".to_string();
        let (url, server) = serve_once(no_content, Vec::new(), false).await;
        let response = client(settings(Duration::from_secs(5)))
            .execute(get(&url))
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
        let request = server.await.unwrap();
        assert!(
            request.contains(&format!("user-agent: {BARNACLE_USER_AGENT}").to_lowercase()),
            "{request}"
        );
    }

    /// A client whose proxies are `matcher`'s (not the environment's).
    fn proxied_client(matcher: Matcher) -> HttpClient {
        Connector::trusting(
            &TrustedRoots::Only(Vec::new()),
            Proxies::from_matcher(matcher),
        )
        .unwrap()
        .connect(&settings(Duration::from_secs(5)))
        .unwrap()
    }

    /// `HOST:PORT` of the server at `url`.
    fn authority_of(url: &str) -> &str {
        url.trim_start_matches("http://").split('/').next().unwrap()
    }

    /// `http://user:secret@HOST:PORT` of the server at `url`.
    fn proxy_url(url: &str) -> String {
        format!("http://user:secret@{}", authority_of(url))
    }

    /// The proxy got `line` first, and the credentials of [`proxy_url`]:
    /// base64("user:secret"), lowercased with the rest of the head.
    fn assert_proxy_request(request: &str, line: &str) {
        assert!(request.starts_with(&format!("{line}\r\n")), "{request}");
        assert!(
            request.contains("proxy-authorization: basic dxnlcjpzzwnyzxq="),
            "{request}"
        );
    }

    #[tokio::test]
    async fn plain_http_goes_whole_to_the_proxy_with_its_credentials() {
        let no_content = "HTTP/1.1 204 No Content\r\n\r\n".to_string();
        let (url, proxy) = serve_once(no_content, Vec::new(), false).await;
        let client = proxied_client(Matcher::builder().http(proxy_url(&url)).build());
        let response = client
            .execute(get("http://barnacle.invalid:9000/bucket/key"))
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
        let request = proxy.await.unwrap();
        assert_proxy_request(
            &request,
            "get http://barnacle.invalid:9000/bucket/key http/1.1",
        );
    }

    #[tokio::test]
    async fn https_goes_through_a_connect_tunnel_and_a_refusal_names_the_proxy() {
        let forbidden = "HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n".to_string();
        let (url, proxy) = serve_once(forbidden, Vec::new(), false).await;
        let client = proxied_client(Matcher::builder().https(proxy_url(&url)).build());
        let err = client
            .execute(get("https://barnacle.invalid:9443/bucket/key"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), HttpErrorKind::Connect, "{err}");
        let text = super::super::describe::chain_text(&err);
        let expected = format!("through the proxy at {}: tunnel error", authority_of(&url));
        assert!(text.contains(&expected), "{text}");
        assert!(!text.contains("secret"), "{text}");
        let request = proxy.await.unwrap();
        assert_proxy_request(&request, "connect barnacle.invalid:9443 http/1.1");
    }

    #[tokio::test]
    async fn no_proxy_hosts_are_reached_directly() {
        let no_content = "HTTP/1.1 204 No Content\r\n\r\n".to_string();
        let (url, _) = serve_once(no_content, Vec::new(), false).await;
        // Nothing listens at the proxy's port 9 (discard) on loopback.
        let matcher = Matcher::builder()
            .all("http://127.0.0.1:9")
            .no("127.0.0.1")
            .build();
        let response = proxied_client(matcher).execute(get(&url)).await.unwrap();
        assert_eq!(response.status(), 204);
    }

    #[test]
    fn proxies_over_tls_or_socks_are_left_to_reqwest() {
        let needs = |proxy: &str| {
            Proxies::from_matcher(Matcher::builder().all(proxy).build()).needs_reqwest()
        };
        assert!(!needs("http://proxy.example:3128"));
        assert!(needs("https://proxy.example:3128"));
        assert!(needs("socks5://proxy.example:1080"));
        assert!(!Proxies::from_matcher(Matcher::builder().build()).needs_reqwest());
    }

    #[test]
    fn durations_are_read_back_from_object_store_s_options() {
        let options = ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(1))
            .with_timeout(Duration::from_secs(15 * 60 + 30));
        let read = |key| duration_option(&options, key, Duration::from_secs(7));
        assert_eq!(
            read(ClientConfigKey::ConnectTimeout),
            Duration::from_secs(1)
        );
        assert_eq!(read(ClientConfigKey::Timeout), Duration::from_secs(930));
        assert_eq!(read(ClientConfigKey::ReadTimeout), Duration::from_secs(7));
    }

    #[test]
    fn errors_are_sorted_as_object_store_sorts_reqwest_s() {
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(kind_of(&reset), HttpErrorKind::Interrupted);
        let timed_out = io::Error::from(io::ErrorKind::TimedOut);
        assert_eq!(kind_of(&timed_out), HttpErrorKind::Timeout);
        let other = io::Error::other("something else");
        assert_eq!(kind_of(&other), HttpErrorKind::Unknown);
    }

    #[test]
    fn a_pem_bundle_gives_only_its_certificates() {
        let certs = pem_certificates(b"not a certificate").unwrap();
        assert!(certs.is_empty());
    }
}

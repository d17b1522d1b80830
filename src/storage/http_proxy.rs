//! HTTP proxies for barnacle's HTTP client (`http_client`), read from the
//! environment as reqwest (and curl) read them: `HTTPS_PROXY`, `HTTP_PROXY`,
//! `ALL_PROXY` and `NO_PROXY`, upper or lower case.
//!
//! An `https://` request goes through a `CONNECT` tunnel (TLS end to end, the
//! proxy sees only the host and port); an `http://` request is sent to the
//! proxy whole, its target in absolute form. Both send the proxy URL's user
//! and password as `Proxy-Authorization: Basic`.
//!
//! Only `http://` proxies are served here. A proxy reached over TLS
//! (`https://`) or SOCKS is left to reqwest ([`Proxies::needs_reqwest`]),
//! which implements them, with its unbounded read buffers.

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use http::header::{HeaderValue, PROXY_AUTHORIZATION};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

/// The proxy rules of the environment; none when no proxy is set.
#[derive(Debug, Clone, Default)]
pub(super) struct Proxies {
    matcher: Option<Arc<Matcher>>,
}

/// Hosts no real request goes to, to learn which proxy each scheme takes.
const PROBES: [&str; 2] = ["http://barnacle.invalid/", "https://barnacle.invalid/"];

impl Proxies {
    /// The rules of the environment's variables.
    pub(super) fn from_env() -> Proxies {
        Proxies::from_matcher(Matcher::from_env())
    }

    pub(super) fn from_matcher(matcher: Matcher) -> Proxies {
        let any = PROBES
            .iter()
            .any(|p| matcher.intercept(&Uri::from_static(p)).is_some());
        Proxies {
            matcher: any.then(|| Arc::new(matcher)),
        }
    }

    /// Whether a proxy is named that this client cannot reach (`https://`,
    /// `socks5://`): reqwest must serve the store then.
    pub(super) fn needs_reqwest(&self) -> bool {
        let Some(matcher) = &self.matcher else {
            return false;
        };
        PROBES
            .iter()
            .filter_map(|p| matcher.intercept(&Uri::from_static(p)))
            .any(|proxy| proxy.uri().scheme_str() != Some("http"))
    }

    /// The proxy `dst` goes through, if any: its URI and credentials.
    fn for_destination(&self, dst: &Uri) -> Option<(Uri, Option<HeaderValue>)> {
        let proxy = self.matcher.as_ref()?.intercept(dst)?;
        Some((proxy.uri().clone(), proxy.basic_auth().cloned()))
    }

    /// Adds `Proxy-Authorization` to a plain-HTTP request sent whole to a
    /// proxy that has credentials (a tunnelled one sent them on `CONNECT`).
    /// Without proxies, one branch.
    pub(super) fn authorize<B>(&self, request: &mut http::Request<B>) {
        if self.matcher.is_none()
            || request.uri().scheme_str() != Some("http")
            || request.headers().contains_key(PROXY_AUTHORIZATION)
        {
            return;
        }
        if let Some((_, Some(auth))) = self.for_destination(request.uri()) {
            request.headers_mut().insert(PROXY_AUTHORIZATION, auth);
        }
    }
}

/// The TCP connector under TLS: straight to the server, through a `CONNECT`
/// tunnel, or to the proxy that forwards plain-HTTP requests.
#[derive(Debug, Clone)]
pub(super) struct ProxyConnector {
    tcp: TcpConnector,
    proxies: Proxies,
}

impl ProxyConnector {
    pub(super) fn new(tcp: TcpConnector, proxies: Proxies) -> ProxyConnector {
        ProxyConnector { tcp, proxies }
    }
}

type BoxError = Box<dyn StdError + Send + Sync>;

impl Service<Uri> for ProxyConnector {
    type Response = ProxiedStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<ProxiedStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.tcp.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let mut tcp = self.tcp.clone();
        let proxy = self.proxies.for_destination(&dst);
        Box::pin(async move {
            let Some((proxy, auth)) = proxy else {
                let stream = tcp.call(dst).await?;
                return Ok(ProxiedStream {
                    stream,
                    forwarded: false,
                });
            };
            let via = |source: BoxError| ViaProxy {
                proxy: authority(&proxy),
                source,
            };
            if dst.scheme_str() != Some("https") {
                let stream = tcp.call(proxy.clone()).await.map_err(|e| via(e.into()))?;
                return Ok(ProxiedStream {
                    stream,
                    forwarded: true,
                });
            }
            let mut tunnel = Tunnel::new(proxy.clone(), tcp);
            if let Some(auth) = auth {
                tunnel = tunnel.with_auth(auth);
            }
            let stream = async {
                std::future::poll_fn(|cx| tunnel.poll_ready(cx)).await?;
                tunnel.call(dst).await
            };
            let stream = stream.await.map_err(|e| via(e.into()))?;
            Ok(ProxiedStream {
                stream,
                forwarded: false,
            })
        })
    }
}

/// The proxy's host and port, never its credentials.
fn authority(proxy: &Uri) -> String {
    let host = proxy.host().unwrap_or("?");
    match proxy.port_u16() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// A failure to connect through a proxy, naming it (without its credentials).
#[derive(Debug, thiserror::Error)]
#[error("through the proxy at {proxy}")]
struct ViaProxy {
    proxy: String,
    #[source]
    source: BoxError,
}

/// A connection, marked as one to a proxy when requests are sent to it whole
/// (hyper then writes their targets in absolute form).
#[derive(Debug)]
pub(super) struct ProxiedStream {
    stream: TokioIo<TcpStream>,
    forwarded: bool,
}

impl Connection for ProxiedStream {
    fn connected(&self) -> Connected {
        self.stream.connected().proxy(self.forwarded)
    }
}

impl Read for ProxiedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl Write for ProxiedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
}

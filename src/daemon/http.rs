//! The sidecar's HTTP endpoints: `/metrics` (Prometheus text format),
//! `/healthz` (the process runs) and `/readyz` (the store answers). Nothing else: other
//! paths answer 404, other methods than GET and HEAD 405; no request changes anything.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::metrics::Metrics;

/// What the endpoints read.
pub struct HttpState {
    pub metrics: Arc<Metrics>,
    /// The restore spool whose hits are exported.
    pub spool_dir: Option<PathBuf>,
}

fn response(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn handle(state: &HttpState, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    // Read-only endpoints: anything but GET (and HEAD, which hyper answers without a body)
    // is refused before the path is looked at.
    if !matches!(*req.method(), hyper::Method::GET | hyper::Method::HEAD) {
        let mut r = response(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "method not allowed\n".into(),
        );
        r.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("GET, HEAD"),
        );
        return r;
    }
    match req.uri().path() {
        "/metrics" => {
            if let Some(spool) = &state.spool_dir {
                let hits = crate::archive::spool_hits(spool);
                state.metrics.restore_spool_hits.set(hits as i64);
            }
            response(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                state.metrics.render(),
            )
        }
        "/healthz" => response(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" if state.metrics.is_reachable() => {
            response(StatusCode::OK, "text/plain", "ready\n".into())
        }
        "/readyz" => response(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "the object store does not answer\n".into(),
        ),
        _ => response(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

/// Binds `addr` (so errors surface at start-up) and returns the serving future.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    state: Arc<HttpState>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, &req)) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "HTTP connection ended");
            }
        });
    }
}

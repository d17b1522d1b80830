//! Turning `object_store` errors into [`StorageError`]s with one-line details.
//!
//! `object_store`'s messages are long and the useful part (the S3 error code,
//! the rustls reason for a TLS failure, "Connection refused") sits at the end
//! of the `source()` chain. We walk the chain once, keep each distinct message,
//! pull `<Code>`/`<Message>` out of S3 XML bodies, and classify.

use std::error::Error as StdError;

use object_store::client::{HttpError, HttpErrorKind};

use super::StorageError;

/// The S3 error code and message of an XML error body, if any.
fn s3_error(text: &str) -> Option<(String, String)> {
    let tag = |name: &str| -> Option<String> {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&close)? + start;
        Some(text[start..end].to_string())
    };
    let code = tag("Code")?;
    Some((code, tag("Message").unwrap_or_default()))
}

/// All messages of an error chain, joined on one line, without repeats.
pub(super) fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        let text = e.to_string().replace(['\n', '\r'], " ");
        if !parts.iter().any(|p| p.contains(text.trim())) {
            parts.push(text.trim().to_string());
        }
        cur = e.source();
    }
    // Keep the most specific messages: the tail of the chain.
    let tail: Vec<String> = parts.iter().rev().take(3).rev().cloned().collect();
    tail.join(": ")
}

fn http_kind(err: &(dyn StdError + 'static)) -> Option<HttpErrorKind> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(h) = e.downcast_ref::<HttpError>() {
            return Some(h.kind());
        }
        cur = e.source();
    }
    None
}

/// Whether a request failed in a way that leaves its effect unknown: a timeout, or the
/// connection cut once the request was (perhaps) sent. `object_store` retries these only for
/// idempotent requests, so never for a conditional `PutObject` (`If-None-Match: *`), which
/// is nevertheless safe to send again: a copy that did land answers 412.
pub(super) fn is_ambiguous(err: &object_store::Error) -> bool {
    matches!(
        http_kind(err),
        Some(HttpErrorKind::Timeout | HttpErrorKind::Interrupted)
    )
}

/// Whether reading a response body failed in transit (a reset or a truncated answer).
/// `object_store` retries sending a request, and re-reads object bodies, but it gives up at
/// once when the body of a list (or multipart) answer breaks: its errors then read
/// "Error getting … response body" with the transport error below.
pub(super) fn is_body_error(err: &object_store::Error) -> bool {
    if http_kind(err).is_none() {
        return false;
    }
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.to_string().contains("response body") {
            return true;
        }
        cur = e.source();
    }
    false
}

/// The innermost message of the chain that names a TLS certificate failure (rustls's
/// "invalid peer certificate: …"), if any.
fn certificate_failure(err: &(dyn StdError + 'static)) -> Option<String> {
    let mut found = None;
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        let text = e.to_string();
        if let Some(i) = text.find("invalid peer certificate") {
            found = Some(text[i..].replace(['\n', '\r'], " "));
        }
        cur = e.source();
    }
    found
}

/// A short detail: the S3 code and message when there is one, the certificate failure for
/// TLS, else the chain.
fn detail(err: &object_store::Error) -> (Option<String>, String) {
    if let Some(tls) = certificate_failure(err) {
        return (None, format!("TLS certificate not accepted: {tls}"));
    }
    let full = chain_text(err);
    match s3_error(&full) {
        Some((code, message)) if message.is_empty() => (Some(code.clone()), code),
        Some((code, message)) => (Some(code.clone()), format!("{code}: {message}")),
        None => (None, full),
    }
}

/// Classifies an `object_store` error from operation `op` on `key`.
pub(super) fn classify(
    err: object_store::Error,
    op: &'static str,
    key: &str,
    bucket: &str,
    endpoint: &str,
) -> StorageError {
    let (code, text) = detail(&err);
    if code.as_deref() == Some("NoSuchBucket") {
        return StorageError::NoSuchBucket {
            bucket: bucket.to_string(),
            endpoint: endpoint.to_string(),
        };
    }
    let denied_codes = [
        "AccessDenied",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
    ];
    if code.as_deref().is_some_and(|c| denied_codes.contains(&c)) {
        return StorageError::Denied {
            op,
            key: key.to_string(),
            detail: text,
        };
    }
    if matches!(err, object_store::Error::NotImplemented { .. })
        || code.as_deref() == Some("NotImplemented")
    {
        return StorageError::ConditionalUnsupported {
            op,
            key: key.to_string(),
            detail: text,
        };
    }
    match err {
        object_store::Error::NotFound { .. } => StorageError::NotFound {
            key: key.to_string(),
        },
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => StorageError::Denied {
            op,
            key: key.to_string(),
            detail: text,
        },
        ref other => match http_kind(other) {
            Some(HttpErrorKind::Connect | HttpErrorKind::Timeout | HttpErrorKind::Request) => {
                StorageError::Unreachable {
                    endpoint: endpoint.to_string(),
                    detail: text,
                }
            }
            _ => StorageError::Request {
                op,
                key: key.to_string(),
                detail: text,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_failure_is_named_without_the_request_chain() {
        #[derive(Debug)]
        struct Chain(&'static str, Option<Box<Chain>>);
        impl std::fmt::Display for Chain {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl StdError for Chain {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                self.1.as_deref().map(|c| c as &(dyn StdError + 'static))
            }
        }
        let err = Chain(
            "Error performing GET https://h/b?list-type=2 in 700ms, after 4 retries",
            Some(Box::new(Chain(
                "client error (Connect): invalid peer certificate: UnknownIssuer",
                Some(Box::new(Chain(
                    "invalid peer certificate: UnknownIssuer",
                    None,
                ))),
            ))),
        );
        assert_eq!(
            certificate_failure(&err).as_deref(),
            Some("invalid peer certificate: UnknownIssuer")
        );
        assert_eq!(
            certificate_failure(&Chain("connection refused", None)),
            None
        );
    }

    #[test]
    fn extracts_the_s3_code_and_message() {
        let body = "Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\"?>\
                    <Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>";
        assert_eq!(
            s3_error(body),
            Some((
                "NoSuchBucket".into(),
                "The specified bucket does not exist".into()
            ))
        );
        assert_eq!(s3_error("plain text"), None);
    }

    #[test]
    fn not_found_is_classified() {
        let err = object_store::Error::NotFound {
            path: "k".into(),
            source: "404".into(),
        };
        assert!(matches!(
            classify(err, "GET", "k", "b", "e"),
            StorageError::NotFound { .. }
        ));
    }

    #[derive(Debug, thiserror::Error)]
    #[error("Error getting list response body: {source}")]
    struct ListBody {
        source: HttpError,
    }

    #[test]
    fn body_errors_and_ambiguous_failures_are_recognised() {
        let cut = || {
            HttpError::new(
                HttpErrorKind::Interrupted,
                std::io::Error::from(std::io::ErrorKind::ConnectionReset),
            )
        };
        let body = object_store::Error::Generic {
            store: "S3",
            source: Box::new(ListBody { source: cut() }),
        };
        assert!(is_body_error(&body));
        assert!(is_ambiguous(&body));
        let refused = object_store::Error::Generic {
            store: "S3",
            source: Box::new(HttpError::new(
                HttpErrorKind::Connect,
                std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
            )),
        };
        assert!(!is_body_error(&refused));
        assert!(!is_ambiguous(&refused));
        let missing = object_store::Error::NotFound {
            path: "k".into(),
            source: "404 response body".into(),
        };
        assert!(!is_body_error(&missing));
    }

    #[test]
    fn no_such_bucket_wins_over_not_found() {
        let err = object_store::Error::NotFound {
            path: "k".into(),
            source: "<Error><Code>NoSuchBucket</Code><Message>gone</Message></Error>".into(),
        };
        assert!(matches!(
            classify(err, "GET", "k", "b", "e"),
            StorageError::NoSuchBucket { .. }
        ));
    }
}

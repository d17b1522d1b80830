//! Logs on stderr, as text in Barman's shape or as JSON lines (CloudNativePG
//! logs JSON), with every known credential value masked.
//!
//! Text: `2026-11-27 21:51:02,123 [16588] ERROR: message key=value`.
//! Levels follow Barman: WARNING by default, each `-v` one step more verbose,
//! each `-q` one step quieter. `BARNACLE_LOG` (an `EnvFilter` directive, e.g.
//! `debug` or `barnacle=debug,object_store=info`) overrides.

use std::fmt;
use std::io::{self, Write};
use std::sync::Arc;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Environment variables whose values are credentials.
const SECRET_VARS: [&str; 6] = [
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "ACCESS_SECRET_KEY",
    "ACCESS_KEY_ID",
    "PGPASSWORD",
];

/// Masks credential values in text.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Arc<Vec<String>>,
}

impl Redactor {
    /// Collects the credential values present in the environment.
    pub fn from_env() -> Redactor {
        let mut secrets: Vec<String> = SECRET_VARS
            .iter()
            .filter_map(|v| std::env::var(v).ok())
            .filter(|s| s.len() >= 4)
            .collect();
        // Longest first, so that a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor {
            secrets: Arc::new(secrets),
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in self.secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
            }
        }
        out
    }
}

/// A stderr writer that masks credentials in each line it is given.
pub struct RedactingWriter {
    redactor: Redactor,
}

impl Write for RedactingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        io::stderr().write_all(self.redactor.redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for Redactor {
    type Writer = RedactingWriter;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            redactor: self.clone(),
        }
    }
}

/// Barman's `%(asctime)s [%(process)s] %(levelname)s: %(message)s`.
struct BarmanFormat;

impl<S, N> FormatEvent<S, N> for BarmanFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let now = chrono::Local::now();
        let level = match *event.metadata().level() {
            Level::ERROR => "ERROR",
            Level::WARN => "WARNING",
            Level::INFO => "INFO",
            Level::DEBUG | Level::TRACE => "DEBUG",
        };
        write!(
            writer,
            "{},{:03} [{}] {}: ",
            now.format("%Y-%m-%d %H:%M:%S"),
            now.timestamp_subsec_millis(),
            std::process::id(),
            level
        )?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

fn level_for(verbosity: i8) -> &'static str {
    match verbosity {
        i8::MIN..=-2 => "off",
        -1 => "error",
        0 => "warn",
        1 => "info",
        _ => "debug",
    }
}

/// The default filter: `level` for everything but rustls-platform-verifier, which logs an
/// ERROR line of its own for every failed certificate check, once per retry; the error
/// barnacle finally reports names the same rustls reason, on one line.
fn default_directives(level: &str) -> String {
    format!("{level},rustls_platform_verifier=off")
}

/// Installs the global subscriber. Safe to call once per process.
pub fn init(verbosity: i8, format: LogFormat, redactor: Redactor) {
    let filter = EnvFilter::try_from_env("BARNACLE_LOG")
        .unwrap_or_else(|_| EnvFilter::new(default_directives(level_for(verbosity))));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(redactor);
    let _ = match format {
        LogFormat::Text => builder.event_format(BarmanFormat).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redactor_masks_every_secret() {
        let r = Redactor {
            secrets: Arc::new(vec!["s3cr3t-longer".into(), "s3cr3t".into()]),
        };
        assert_eq!(r.redact("key s3cr3t-longer and s3cr3t"), "key *** and ***");
        assert_eq!(r.redact("nothing here"), "nothing here");
    }

    #[test]
    fn verbosity_maps_like_barman() {
        assert_eq!(level_for(0), "warn");
        assert_eq!(level_for(1), "info");
        assert_eq!(level_for(3), "debug");
        assert_eq!(level_for(-1), "error");
        assert_eq!(level_for(-2), "off");
    }

    #[test]
    fn certificate_failures_are_reported_once_not_per_retry() {
        assert_eq!(
            default_directives("warn"),
            "warn,rustls_platform_verifier=off"
        );
        assert!(EnvFilter::try_new(default_directives("off")).is_ok());
    }
}

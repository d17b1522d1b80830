//! The PostgreSQL side of an online base backup, on one tokio-postgres
//! session, as `barman-cloud-backup` drives it (spec §4):
//!
//! 1. facts: `data_directory`, `server_version_num`, `wal_segment_size`, the
//!    configuration files, tablespaces, `data_checksums`, the cluster size and
//!    the system identifier;
//! 2. `SET idle_session_timeout TO 0` (PG ≥ 14), then
//!    `pg_backup_start(label, fast)` (`pg_start_backup(label, fast, false)`
//!    before 15) with the checkpoint timeline and `now()`;
//! 3. after the copy, `RESET idle_session_timeout` and `pg_backup_stop()`
//!    (`pg_stop_backup(false)` before 15), which waits for the WAL to be archived;
//! 4. `pg_switch_wal()` and `pg_create_restore_point('barman_<ID>')` unless in recovery.
//!
//! Times are read as text in the session's time zone, so they keep the offset
//! Barman records. Connection parameters follow libpq: `-h/-p/-U/-d`, a whole
//! conninfo in `-d`, and the `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`
//! environment defaults. Connections are plain (unix socket or TCP without TLS).

use std::str::FromStr;

use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use super::{Lsn, LsnParseError};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot connect to PostgreSQL ({target}): {detail}")]
    Connect { target: String, detail: String },
    #[error("PostgreSQL query failed ({query}): {detail}")]
    Query { query: String, detail: String },
    #[error("unexpected answer from PostgreSQL to {query}: {detail}")]
    Answer { query: String, detail: String },
    #[error(transparent)]
    Lsn(#[from] LsnParseError),
}

type Result<T, E = SessionError> = std::result::Result<T, E>;

/// `-h/-p/-U/-d` of `barman-cloud-backup`.
#[derive(Debug, Clone, Default)]
pub struct ConnectArgs {
    pub host: Option<String>,
    pub port: Option<String>,
    pub user: Option<String>,
    /// A database name, or a whole conninfo when it contains `=`.
    pub dbname: Option<String>,
}

fn quote(value: &str) -> String {
    if !value.is_empty() && !value.contains([' ', '\'', '\\']) {
        return value.to_string();
    }
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The conninfo Barman's `build_conninfo` makes, with libpq's environment
/// defaults filled in where the arguments are silent.
pub fn conninfo(args: &ConnectArgs) -> String {
    if let Some(db) = &args.dbname
        && (db.is_empty() || db.contains('='))
    {
        return db.clone();
    }
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut parts = Vec::new();
    let host = args.host.clone().or_else(|| env("PGHOST")).or_else(|| {
        ["/var/run/postgresql", "/tmp"]
            .into_iter()
            .find(|d| std::path::Path::new(d).is_dir())
            .map(str::to_string)
    });
    if let Some(h) = host {
        parts.push(format!("host={}", quote(&h)));
    }
    if let Some(p) = args.port.clone().or_else(|| env("PGPORT")) {
        parts.push(format!("port={}", quote(&p)));
    }
    if let Some(u) = args
        .user
        .clone()
        .or_else(|| env("PGUSER"))
        .or_else(|| env("USER"))
    {
        parts.push(format!("user={}", quote(&u)));
    }
    let db = args
        .dbname
        .clone()
        .or_else(|| env("PGDATABASE"))
        .unwrap_or_else(|| "postgres".into());
    parts.push(format!("dbname={}", quote(&db)));
    parts.join(" ")
}

/// What the backup records about the server.
#[derive(Debug, Clone)]
pub struct ServerFacts {
    pub data_directory: String,
    pub version_num: i64,
    pub wal_segment_size: u64,
    pub config_file: Option<String>,
    pub hba_file: Option<String>,
    pub ident_file: Option<String>,
    pub included_files: Vec<String>,
    /// `(name, oid, location)` of every tablespace with a location.
    pub tablespaces: Vec<(String, i64, String)>,
    pub data_checksums: Option<String>,
    pub summarize_wal: Option<String>,
    pub cluster_size: Option<i64>,
    pub systemid: Option<String>,
    pub in_recovery: bool,
}

/// Where the backup started.
#[derive(Debug, Clone)]
pub struct BackupStart {
    pub lsn: Lsn,
    pub timeline: u32,
    /// `now()` as text in the session's time zone.
    pub time: String,
}

/// Where it stopped, and the backup label PostgreSQL produced.
#[derive(Debug, Clone)]
pub struct BackupStop {
    pub lsn: Lsn,
    pub timeline: u32,
    pub label: String,
    pub time: String,
}

/// One connection used for a whole backup.
pub struct Session {
    client: Client,
    version_num: i64,
}

impl Session {
    pub async fn connect(args: &ConnectArgs) -> Result<Session> {
        let info = conninfo(args);
        let connect_err = |detail: String| SessionError::Connect {
            target: redact_password(&info),
            detail,
        };
        let mut config =
            tokio_postgres::Config::from_str(&info).map_err(|e| connect_err(e.to_string()))?;
        if config.get_application_name().is_none() {
            config.application_name("barman_cloud_backup");
        }
        if config.get_password().is_none()
            && let Ok(pw) = std::env::var("PGPASSWORD")
        {
            config.password(pw);
        }
        let (client, connection) = config
            .connect(NoTls)
            .await
            .map_err(|e| connect_err(one_line(&e)))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "PostgreSQL connection ended");
            }
        });
        let mut session = Session {
            client,
            version_num: 0,
        };
        session.version_num = session
            .value("SHOW server_version_num")
            .await?
            .parse()
            .map_err(|_| SessionError::Answer {
                query: "SHOW server_version_num".into(),
                detail: "not a number".into(),
            })?;
        Ok(session)
    }

    pub fn version_num(&self) -> i64 {
        self.version_num
    }

    /// Rows of text values of `sql`.
    async fn rows(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        let messages = self
            .client
            .simple_query(sql)
            .await
            .map_err(|e| SessionError::Query {
                query: sql.to_string(),
                detail: one_line(&e),
            })?;
        Ok(messages
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    }

    /// The first column of the first row, which must not be null.
    async fn value(&self, sql: &str) -> Result<String> {
        self.optional(sql)
            .await?
            .ok_or_else(|| SessionError::Answer {
                query: sql.to_string(),
                detail: "no value".into(),
            })
    }

    async fn optional(&self, sql: &str) -> Result<Option<String>> {
        Ok(self
            .rows(sql)
            .await?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten()))
    }

    pub async fn facts(&self) -> Result<ServerFacts> {
        let setting = |name: &'static str| async move {
            self.optional(&format!(
                "SELECT setting FROM pg_settings WHERE name = '{name}'"
            ))
            .await
        };
        let mut wal_segment_size: u64 = setting("wal_segment_size")
            .await?
            .and_then(|s| s.parse().ok())
            .unwrap_or(crate::pg::DEFAULT_SEGMENT_SIZE);
        if self.version_num < 110000 {
            let block: u64 = setting("wal_block_size")
                .await?
                .and_then(|s| s.parse().ok())
                .unwrap_or(8192);
            wal_segment_size *= block;
        }
        let included_files = self
            .rows(
                "SELECT DISTINCT sourcefile FROM pg_settings WHERE sourcefile IS NOT NULL \
                 AND sourcefile NOT IN (SELECT setting FROM pg_settings WHERE name = 'config_file') ORDER BY 1",
            )
            .await
            .unwrap_or_default()
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect();
        let tablespaces = self
            .rows(
                "SELECT spcname, oid, pg_tablespace_location(oid) FROM pg_tablespace \
                 WHERE pg_tablespace_location(oid) != ''",
            )
            .await?
            .into_iter()
            .filter_map(|r| match r.as_slice() {
                [Some(name), Some(oid), Some(loc)] => {
                    Some((name.clone(), oid.parse().ok()?, loc.clone()))
                }
                _ => None,
            })
            .collect();
        let summarize_wal = if self.version_num >= 170000 {
            setting("summarize_wal").await?
        } else {
            None
        };
        Ok(ServerFacts {
            data_directory: self.value("SHOW data_directory").await?,
            version_num: self.version_num,
            wal_segment_size,
            config_file: setting("config_file").await?,
            hba_file: setting("hba_file").await?,
            ident_file: setting("ident_file").await?,
            included_files,
            tablespaces,
            data_checksums: self.optional("SHOW data_checksums").await?,
            summarize_wal,
            cluster_size: self
                .optional("SELECT sum(pg_tablespace_size(oid)) FROM pg_tablespace")
                .await
                .ok()
                .flatten()
                .and_then(|s| s.parse().ok()),
            systemid: self
                .optional("SELECT system_identifier FROM pg_control_system()")
                .await
                .ok()
                .flatten(),
            in_recovery: self.value("SELECT pg_is_in_recovery()").await? == "t",
        })
    }

    /// Starts a non-exclusive backup.
    pub async fn start_backup(&self, label: &str, fast: bool) -> Result<BackupStart> {
        if self.version_num >= 140000 {
            self.rows("SET idle_session_timeout TO 0").await?;
        }
        let call = if self.version_num >= 150000 {
            format!("pg_backup_start({}, {fast})", sql_literal(label))
        } else {
            format!("pg_start_backup({}, {fast}, false)", sql_literal(label))
        };
        let sql = format!(
            "SELECT location, (SELECT timeline_id FROM pg_control_checkpoint()), now()::text FROM {call} AS location"
        );
        let row = self
            .rows(&sql)
            .await?
            .into_iter()
            .next()
            .unwrap_or_default();
        match row.as_slice() {
            [Some(lsn), Some(tli), Some(time)] => Ok(BackupStart {
                lsn: lsn.parse()?,
                timeline: parse_num(tli, &sql)?,
                time: time.clone(),
            }),
            _ => Err(SessionError::Answer {
                query: sql,
                detail: format!("{row:?}"),
            }),
        }
    }

    /// Stops the backup; waits for PostgreSQL to archive the WAL it needs.
    pub async fn stop_backup(&self) -> Result<BackupStop> {
        if self.version_num >= 140000 {
            self.rows("RESET idle_session_timeout").await?;
        }
        let call = if self.version_num >= 150000 {
            "pg_backup_stop()"
        } else {
            "pg_stop_backup(false)"
        };
        let sql = format!(
            "SELECT end_row.lsn, (SELECT CASE WHEN pg_is_in_recovery() THEN min_recovery_end_timeline \
             ELSE timeline_id END FROM pg_control_checkpoint(), pg_control_recovery()), \
             end_row.labelfile, now()::text FROM {call} AS end_row"
        );
        let row = self
            .rows(&sql)
            .await?
            .into_iter()
            .next()
            .unwrap_or_default();
        match row.as_slice() {
            [Some(lsn), Some(tli), Some(label), Some(time)] => Ok(BackupStop {
                lsn: lsn.parse()?,
                timeline: parse_num(tli, &sql)?,
                label: label.clone(),
                time: time.clone(),
            }),
            _ => Err(SessionError::Answer {
                query: sql,
                detail: format!("{row:?}"),
            }),
        }
    }

    /// `pg_switch_wal()` and the restore point `barman_<ID>`, unless in recovery.
    pub async fn after_backup(&self, backup_id: &str) -> Result<()> {
        if self.value("SELECT pg_is_in_recovery()").await? == "t" {
            return Ok(());
        }
        let switch = if self.version_num >= 100000 {
            "pg_switch_wal"
        } else {
            "pg_switch_xlog"
        };
        self.rows(&format!("SELECT {switch}()")).await?;
        self.rows(&format!(
            "SELECT pg_create_restore_point({})",
            sql_literal(&format!("barman_{backup_id}"))
        ))
        .await?;
        Ok(())
    }
}

fn parse_num(text: &str, query: &str) -> Result<u32> {
    text.parse().map_err(|_| SessionError::Answer {
        query: query.to_string(),
        detail: format!("'{text}' is not a number"),
    })
}

fn sql_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn one_line(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = s.source();
    }
    text.replace(['\n', '\r'], " ")
}

fn redact_password(conninfo: &str) -> String {
    conninfo
        .split(' ')
        .map(|p| {
            if p.starts_with("password=") {
                "password=***"
            } else {
                p
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conninfo_like_barman() {
        let args = ConnectArgs {
            host: Some("/run/pg".into()),
            port: Some("5433".into()),
            user: Some("postgres".into()),
            dbname: None,
        };
        assert_eq!(
            conninfo(&args),
            "host=/run/pg port=5433 user=postgres dbname=postgres"
        );
        let whole = ConnectArgs {
            dbname: Some("host=x dbname=y".into()),
            ..Default::default()
        };
        assert_eq!(conninfo(&whole), "host=x dbname=y");
        assert_eq!(quote("a b"), "'a b'");
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            redact_password("host=x password=secret user=u"),
            "host=x password=*** user=u"
        );
    }
}

//! PostgreSQL 15 clusters for the tests, one per test, run as the `postgres` user.
//!
//! `postgres -D` runs in the foreground as a child of the service thread (no pg_ctl), so it
//! dies with the test process. The cluster listens on 127.0.0.1 and on a socket in its own run
//! directory, on a free port. Settings are appended to `postgresql.conf` (later lines win).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::service::Service;
use super::{
    as_postgres, bin_dir, chown_postgres, free_port, log_tail, poll, run_ok, scratch, set_mode,
};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// Settings and environment for a cluster, filled in by the caller of [`PgCluster::new`].
#[derive(Default)]
pub struct PgConf {
    settings: Vec<(String, String)>,
    env: Vec<(String, String)>,
}

impl PgConf {
    /// Sets a `postgresql.conf` parameter; the value is quoted for you (`archive_mode`, `on`).
    pub fn set(&mut self, name: &str, value: impl ToString) -> &mut Self {
        self.settings.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets an environment variable of the postmaster, inherited by archive_command and
    /// restore_command (S3 credentials, say).
    pub fn env(&mut self, name: impl ToString, value: impl ToString) -> &mut Self {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets every variable of `vars` (such as [`super::S3Server::env`]).
    pub fn envs(&mut self, vars: impl IntoIterator<Item = (String, String)>) -> &mut Self {
        self.env.extend(vars);
        self
    }
}

/// A running PostgreSQL 15 cluster. Stopped (fast shutdown) when dropped.
pub struct PgCluster {
    data: PathBuf,
    run_dir: PathBuf,
    port: u16,
    server: Option<Service>,
}

impl PgCluster {
    /// initdb's a new cluster in `dir/data` and starts it, with the harness's settings
    /// (loopback, free port, socket in `dir`, `wal_level = replica`, `fsync = off`) and then
    /// the caller's. `dir` is given to `postgres`.
    pub fn new(dir: &Path, configure: impl FnOnce(&mut PgConf)) -> PgCluster {
        Self::new_with_initdb(dir, &[], configure)
    }

    /// Like [`Self::new`], with extra `initdb` arguments (`--wal-segsize=1`, say).
    pub fn new_with_initdb(
        dir: &Path,
        initdb_args: &[&str],
        configure: impl FnOnce(&mut PgConf),
    ) -> PgCluster {
        fs::create_dir_all(dir).expect("create cluster dir");
        chown_postgres(dir);
        set_mode(dir, 0o755);
        let data = dir.join("data");
        let mut initdb = Command::new(format!("{PG_BIN}/initdb"));
        let args = "-A trust -U postgres --no-sync -E UTF8 --locale=C -D".split(' ');
        run_ok(
            as_postgres(&mut initdb)
                .args(initdb_args)
                .args(args)
                .arg(&data),
        );
        let mut conf = PgConf::default();
        conf.set("wal_level", "replica").set("fsync", "off");
        configure(&mut conf);
        Self::start(data, dir.to_path_buf(), conf).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts an existing data directory (a restored backup, or a cluster with recovery.signal
    /// or standby.signal and a restore_command) with the harness's settings and the caller's.
    /// Waits until it accepts connections.
    pub fn from_data_dir(data: &Path, configure: impl FnOnce(&mut PgConf)) -> PgCluster {
        Self::try_from_data_dir(data, configure).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Self::from_data_dir`], but gives back the server log's tail when PostgreSQL
    /// exits (or does not get ready in 120 s) instead of panicking.
    pub fn try_from_data_dir(
        data: &Path,
        configure: impl FnOnce(&mut PgConf),
    ) -> Result<PgCluster, String> {
        run_ok(
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(data),
        );
        set_mode(data, 0o700);
        let mut conf = PgConf::default();
        configure(&mut conf);
        let run_dir = scratch("pg-run");
        chown_postgres(&run_dir);
        set_mode(&run_dir, 0o755);
        Self::start(data.to_path_buf(), run_dir, conf)
    }

    fn start(data: PathBuf, run_dir: PathBuf, conf: PgConf) -> Result<PgCluster, String> {
        let port = free_port();
        let mut text = format!(
            "\n# barnacle integration harness\nlisten_addresses = '127.0.0.1'\nport = {port}\n\
             unix_socket_directories = '{}'\nlogging_collector = off\n",
            run_dir.display()
        );
        for (name, value) in &conf.settings {
            text.push_str(&format!("{name} = '{}'\n", value.replace('\'', "''")));
        }
        let conf_file = data.join("postgresql.conf");
        let mut all = fs::read_to_string(&conf_file)
            .map_err(|e| format!("read {}: {e}", conf_file.display()))?;
        all.push_str(&text);
        fs::write(&conf_file, all).map_err(|e| format!("write {}: {e}", conf_file.display()))?;

        let mut cmd = Command::new(format!("{PG_BIN}/postgres"));
        as_postgres(&mut cmd)
            .arg("-D")
            .arg(&data)
            .envs(postgres_env(&run_dir))
            .envs(conf.env);
        let log = run_dir.join("postgres.log");
        let server = Service::start("postgres", cmd, &log);
        let mut cluster = PgCluster {
            data,
            run_dir,
            port,
            server: Some(server),
        };
        let ready = poll(Duration::from_secs(120), Duration::from_millis(50), || {
            if cluster.server.as_ref().and_then(Service::exited).is_some() {
                return Some(false);
            }
            let mut cmd = cluster.pg_command("pg_isready");
            cmd.args(["-q", "-d", "postgres"]);
            cmd.status().ok().filter(|s| s.success()).map(|_| true)
        });
        if ready != Some(true) {
            let status = cluster
                .server
                .take()
                .map(|s| s.stop(libc::SIGKILL, Duration::from_secs(5)));
            return Err(format!(
                "PostgreSQL in {} did not get ready (exit: {status:?})\n{}",
                cluster.data.display(),
                log_tail(&log, 60)
            ));
        }
        Ok(cluster)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The directory of the server's socket and its log (`postgres.log`).
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    pub fn log_file(&self) -> PathBuf {
        self.run_dir.join("postgres.log")
    }

    /// A connection string for libpq / tokio-postgres (over TCP on 127.0.0.1).
    pub fn conninfo(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    /// A PostgreSQL client program (`psql`, `pgbench`, `pg_basebackup`…) pointed at this cluster
    /// (socket, port, user `postgres`), run as `postgres`.
    pub fn pg_command(&self, program: &str) -> Command {
        let mut cmd = Command::new(format!("{PG_BIN}/{program}"));
        as_postgres(&mut cmd)
            .envs(postgres_env(&self.run_dir))
            .envs([
                ("PGHOST", self.run_dir.display().to_string()),
                ("PGPORT", self.port.to_string()),
                ("PGUSER", "postgres".to_string()),
            ]);
        cmd
    }

    /// Runs `sql` with `psql -qAt` and returns its output without the last newline.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql)
            .unwrap_or_else(|e| panic!("psql {sql:?} failed: {e}"))
    }

    /// Like [`Self::psql`], but gives back psql's stderr on failure.
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        let out = self
            .pg_command("psql")
            .args([
                "-X",
                "-qAt",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                "postgres",
                "-c",
                sql,
            ])
            .output()
            .map_err(|e| format!("run psql: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text.strip_suffix('\n').unwrap_or(&text).to_string())
    }

    /// Runs pgbench with `args` against database `postgres`; returns its output.
    pub fn pgbench(&self, args: &[&str]) -> String {
        run_ok(self.pg_command("pgbench").args(args).arg("postgres"))
    }

    /// Writes a WAL record, switches to a new segment and returns the name of the one closed.
    pub fn switch_wal(&self) -> String {
        self.psql("select pg_logical_emit_message(false, 'barnacle-it', 'switch')");
        self.psql("select pg_walfile_name(pg_switch_wal())")
    }

    /// Waits until the archiver has archived `wal_name` (its `.done` status file, or the
    /// archiver got past it); panics with pg_stat_archiver and the log after `timeout`.
    pub fn wait_archived(&self, wal_name: &str, timeout: Duration) {
        let status = self.data.join("pg_wal/archive_status");
        let archived = poll(timeout, Duration::from_millis(100), || {
            if status.join(format!("{wal_name}.done")).exists() {
                return Some(());
            }
            // Recycled since? Then the archiver is past it (a `.backup` or `.partial` file of the
            // same segment is archived before the segment itself, hence the strict comparison).
            let pending = status.join(format!("{wal_name}.ready")).exists();
            let last = self.psql("select coalesce(last_archived_wal, '') from pg_stat_archiver");
            let past = last == wal_name || last.get(..24).is_some_and(|seg| seg > wal_name);
            (!pending && past).then_some(())
        });
        if archived.is_none() {
            panic!(
                "{wal_name} not archived after {timeout:?}; pg_stat_archiver: {}\n{}",
                self.psql("select row(archived_count, last_archived_wal, failed_count, last_failed_wal) from pg_stat_archiver"),
                log_tail(&self.log_file(), 40)
            );
        }
    }

    /// Promotes a standby or a cluster in archive recovery and waits until it accepts writes.
    pub fn promote(&self) {
        let done = self.psql("select pg_promote(true, 60)");
        assert_eq!(
            done,
            "t",
            "pg_promote did not finish\n{}",
            log_tail(&self.log_file(), 40)
        );
        let out = poll(Duration::from_secs(60), Duration::from_millis(50), || {
            (self.psql("select pg_is_in_recovery()") == "f").then_some(())
        });
        assert!(
            out.is_some(),
            "still in recovery after promotion\n{}",
            log_tail(&self.log_file(), 40)
        );
    }

    /// Fast shutdown (SIGINT), waiting up to 60 s (then SIGKILL). Idempotent; also on drop.
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop(libc::SIGINT, Duration::from_secs(60));
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The environment of `postgres` processes: a home they can write to and a PATH with barnacle.
fn postgres_env(home: &Path) -> Vec<(String, String)> {
    vec![
        ("HOME".to_string(), home.display().to_string()),
        (
            "PATH".to_string(),
            format!(
                "{}:{PG_BIN}:/usr/local/bin:/usr/bin:/bin",
                bin_dir().display()
            ),
        ),
    ]
}

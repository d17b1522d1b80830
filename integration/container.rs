//! The container images, built for real with rootful podman + buildah (Debian's packages) and run
//! the way the reference deployment runs them: `--read-only --user 65534:65534 --cap-drop ALL
//! --security-opt no-new-privileges`.
//!
//! - The barnacle image (`scripts/build-image.sh` → `docker/rootfs.sh` + `docker/Dockerfile.prebuilt`,
//!   FROM scratch): `walpush` and `restore` inside it round-trip a real WAL segment through the
//!   SeaweedFS server on the host's loopback (`--network host`: it leaves no netavark/iptables
//!   state behind, unlike the default bridge); the root filesystem is read-only; files are written
//!   as 65534; every command name answers inside exactly as outside.
//! - The CloudNativePG-style image (`docker/cnpg-postgres/Dockerfile`) over a stand-in base (CNPG's
//!   PostgreSQL image cannot be pulled here): static busybox and a fake Barman
//!   `barman-cloud-wal-archive` in /usr/local/bin, as on CNPG's images. barnacle's names win on the
//!   PATH, `--version` says `barman-cloud-wal-archive 3.19.1`, and the argument vectors
//!   CloudNativePG builds (docker/README.md) check, archive, restore, list and prune through them.
//!
//! The binary in the image is the one this test process was built with (a glibc build: rootfs.sh
//! copies its loader and libraries into the scratch image), so CI compiles nothing more. Set
//! `BARNACLE_IT_STATIC_IMAGE=1` to build the static release binary users get (`+crt-static`,
//! a few minutes on 2 cores) and run the same tests on it.
//! Images live in a podman storage under this run's root, removed with it by the next run.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use crate::harness::{self, BARNACLE_NAMES, S3Kind};
use crate::support::{Archive, Ran, file_name, real_wal, run};

/// What the fake Barman of the stand-in CNPG base prints.
const STUB_BARMAN: &str =
    "barman-cloud-wal-archive 3.12.1 (stand-in for the Python Barman of the base image)";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

struct Images {
    /// The barnacle image (FROM scratch).
    barnacle: String,
    /// docker/cnpg-postgres/Dockerfile over the stand-in CNPG base.
    cnpg: String,
    /// CONTAINERS_CONF, CONTAINERS_STORAGE_CONF and BUILDAH_ISOLATION for every podman command.
    env: Vec<(String, String)>,
}

fn elapsed(since: Instant) -> String {
    format!("{:.1} s", since.elapsed().as_secs_f64())
}

fn require(program: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{program} is not installed: scripts/test.sh installs podman, buildah, runc and busybox-static"
    );
}

/// Builds both images once per test process.
fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        for program in ["podman", "buildah", "runc"] {
            require(program);
        }
        assert!(
            Path::new("/bin/busybox").is_file(),
            "/bin/busybox is missing: install busybox-static (scripts/test.sh)"
        );
        let dir = harness::scratch("containers");
        // The workarounds this kind of host needs (docker/README.md): the hard open-files limit is
        // 20000 and conmon's nproc limit 32768; crun fails on hybrid cgroups, runc works; build
        // steps run with chroot isolation. Storage under the run root, nothing shared with the host.
        fs::write(
            dir.join("containers.conf"),
            "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
             [engine]\nruntime = \"runc\"\n",
        )
        .expect("write containers.conf");
        fs::write(
            dir.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                dir.join("storage").display(),
                dir.join("run").display()
            ),
        )
        .expect("write storage.conf");
        let env = vec![
            (
                "CONTAINERS_CONF".to_string(),
                dir.join("containers.conf").display().to_string(),
            ),
            (
                "CONTAINERS_STORAGE_CONF".to_string(),
                dir.join("storage.conf").display().to_string(),
            ),
            ("BUILDAH_ISOLATION".to_string(), "chroot".to_string()),
        ];
        let pid = std::process::id();
        let images = Images {
            barnacle: format!("localhost/barnacle-it:{pid}"),
            cnpg: format!("localhost/barnacle-it-cnpg-postgres:{pid}"),
            env,
        };
        let mut timings = Vec::new();

        let binary = if std::env::var_os("BARNACLE_IT_STATIC_IMAGE").is_some_and(|v| v == "1") {
            let started = Instant::now();
            let target = "x86_64-unknown-linux-gnu";
            harness::run_ok(
                Command::new(env!("CARGO"))
                    .current_dir(repo())
                    .env("RUSTFLAGS", "-C target-feature=+crt-static")
                    .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
                    .args([
                        "build",
                        "--release",
                        "--locked",
                        "--target",
                        target,
                        "--bin",
                        "barnacle",
                    ]),
            );
            timings.push(format!("static release build {}", elapsed(started)));
            repo().join("target").join(target).join("release/barnacle")
        } else {
            PathBuf::from(env!("CARGO_BIN_EXE_barnacle"))
        };

        // The stand-in for CNPG's PostgreSQL image: a shell, and Barman's command where CNPG's
        // images have it, first on a Debian-like PATH, running as CNPG's postgres uid.
        let started = Instant::now();
        let base = dir.join("cnpg-base");
        let rootfs = base.join("rootfs");
        fs::create_dir_all(rootfs.join("bin")).unwrap();
        fs::create_dir_all(rootfs.join("usr/local/bin")).unwrap();
        fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy busybox");
        // CNPG's images are Debian bookworm, with glibc: a glibc-linked barnacle finds its loader
        // and libraries there (the static release binary needs none).
        for lib in shared_libraries(&binary) {
            let to = rootfs.join(lib.strip_prefix("/").unwrap());
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::copy(&lib, &to).unwrap_or_else(|e| panic!("copy {}: {e}", lib.display()));
        }
        symlink("busybox", rootfs.join("bin/sh")).unwrap();
        let stub = rootfs.join("usr/local/bin/barman-cloud-wal-archive");
        fs::write(&stub, format!("#!/bin/sh\necho '{STUB_BARMAN}'\n")).unwrap();
        fs::set_permissions(&stub, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(
            base.join("Containerfile"),
            "FROM scratch\nCOPY rootfs/ /\n\
             ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nUSER 26:26\n",
        )
        .unwrap();
        let base_image = format!("localhost/barnacle-it-cnpg-base:{pid}");
        harness::run_ok(
            Command::new("podman")
                .envs(images.env.clone())
                .args(["build", "--pull=never", "-q", "-t", &base_image])
                .arg(&base),
        );
        timings.push(format!("stand-in CNPG base {}", elapsed(started)));

        // What users run: scripts/build-image.sh with the binary, then the CNPG recipe on the base.
        let started = Instant::now();
        let out = harness::run_ok(
            Command::new(repo().join("scripts/build-image.sh"))
                .current_dir(repo())
                .envs(images.env.clone())
                .env("IMAGE_BUILD_FLAGS", "--pull=never")
                .arg("--binary")
                .arg(&binary)
                .args(["--engine", "podman", "--tag", &images.barnacle])
                .args(["--cnpg-base", &base_image, "--cnpg-tag", &images.cnpg]),
        );
        timings.push(format!(
            "scripts/build-image.sh (both images) {}",
            elapsed(started)
        ));
        for line in out.lines().filter(|l| l.starts_with("build-image.sh:")) {
            timings.push(line.to_string());
        }
        for image in [&images.barnacle, &images.cnpg] {
            let size = harness::run_ok(Command::new("podman").envs(images.env.clone()).args([
                "image",
                "inspect",
                "--format",
                "{{.Size}}",
                image,
            ]));
            timings.push(format!("{image}: {} bytes", size.trim()));
        }
        eprintln!(
            "container: binary {}\ncontainer: {}",
            binary.display(),
            timings.join("\ncontainer: ")
        );
        images
    })
}

/// The ELF loader and shared libraries of a dynamically linked binary (none for a static one).
fn shared_libraries(binary: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(binary).output().expect("run ldd");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [_, "=>", path, ..] if path.starts_with('/') => Some(PathBuf::from(path)),
                [path, ..] if path.starts_with('/') => Some(PathBuf::from(path)),
                _ => None,
            }
        })
        .collect()
}

/// `podman run` the way the reference deployment runs containers. `env` is passed by name only
/// (`--env NAME`, the value from podman's own environment): no credential on a command line.
struct Run<'a> {
    image: &'a str,
    entrypoint: Option<&'a str>,
    workdir: Option<&'a str>,
    volumes: Vec<(PathBuf, &'a str)>,
    env: Vec<(String, String)>,
}

impl<'a> Run<'a> {
    fn new(image: &'a str) -> Run<'a> {
        Run {
            image,
            entrypoint: None,
            workdir: None,
            volumes: Vec::new(),
            env: Vec::new(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("podman");
        cmd.envs(images().env.clone()).envs(self.env.clone()).args([
            "run",
            "--rm",
            "--read-only",
            "--user",
            "65534:65534",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--network",
            "host",
        ]);
        for (name, _) in &self.env {
            cmd.args(["--env", name]);
        }
        for (host, inside) in &self.volumes {
            cmd.arg("--volume")
                .arg(format!("{}:{inside}", host.display()));
        }
        if let Some(e) = self.entrypoint {
            cmd.args(["--entrypoint", e]);
        }
        if let Some(w) = self.workdir {
            cmd.args(["--workdir", w]);
        }
        cmd.arg(self.image).args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Ran {
        run(&mut self.command(args))
    }
}

/// The store of `archive` as seen from inside a container on the host network, by name
/// (`localhost`), so that name resolution works in the scratch image too.
fn endpoint_inside(archive: &Archive) -> String {
    archive.s3.endpoint().replace("127.0.0.1", "localhost")
}

/// A directory laid out like PGDATA/pg_wal, holding a copy of a real WAL segment.
fn pg_wal_with_segment(name: &str) -> (PathBuf, String) {
    let segment = &real_wal()[0];
    let wal_name = file_name(segment);
    let pgdata = harness::scratch(name);
    fs::create_dir(pgdata.join("pg_wal")).unwrap();
    harness::set_mode(&pgdata.join("pg_wal"), 0o777);
    fs::copy(segment, pgdata.join("pg_wal").join(&wal_name)).expect("copy WAL segment");
    harness::set_mode(&pgdata.join("pg_wal").join(&wal_name), 0o644);
    (pgdata, wal_name)
}

#[test]
fn barnacle_image_round_trips_wal_read_only_as_nobody() {
    let images = images();
    let archive = Archive::new(S3Kind::SeaweedHttp, "container-roundtrip");
    let (pgdata, wal) = pg_wal_with_segment("container-pgdata");
    let endpoint = endpoint_inside(&archive);
    let url = archive.url();

    let mut push = Run::new(&images.barnacle);
    push.entrypoint = Some("/usr/local/bin/walpush");
    push.volumes.push((pgdata.join("pg_wal"), "/pg_wal"));
    push.env = archive.s3.env();
    let wal_path = format!("/pg_wal/{wal}");
    let started = Instant::now();
    push.run(&[
        "--endpoint-url",
        &endpoint,
        &url,
        &archive.server,
        &wal_path,
    ])
    .ok("walpush in the container");
    eprintln!(
        "container: walpush of a 16 MiB segment {}",
        elapsed(started)
    );
    assert!(
        archive.keys().contains(&archive.wal_key(&wal, ".gz")),
        "walpush stored gzip by default: {:?}",
        archive.keys()
    );

    let out = harness::scratch("container-restored");
    let mut restore = Run::new(&images.barnacle);
    restore.entrypoint = Some("/usr/local/bin/restore");
    restore.volumes.push((out.clone(), "/restore"));
    restore.env = archive.s3.env();
    let dest = format!("/restore/{wal}");
    restore
        .run(&[
            "--endpoint-url",
            &endpoint,
            &url,
            &archive.server,
            &wal,
            &dest,
        ])
        .ok("restore in the container");
    let restored = out.join(&wal);
    assert!(
        fs::read(&restored).unwrap() == fs::read(pgdata.join("pg_wal").join(&wal)).unwrap(),
        "the restored segment differs from the pushed one"
    );
    let meta = fs::metadata(&restored).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (65534, 65534),
        "written as nobody"
    );

    // Only mounted volumes are writable.
    let into_root = format!("/{wal}");
    let refused = restore.run(&[
        "--endpoint-url",
        &endpoint,
        &url,
        &archive.server,
        &wal,
        &into_root,
    ]);
    assert_ne!(refused.code, 0, "restore into / succeeded: {refused:#?}");
    refused.one_line_error("read-only file system");

    // A WAL that is not there: Barman's exit code 1, which CloudNativePG reads as "not found".
    let missing = restore.run(&[
        "--endpoint-url",
        &endpoint,
        &url,
        &archive.server,
        "0000000100000000000000FF",
        "/restore/x",
    ]);
    assert_eq!(missing.code, 1, "{missing:#?}");
}

#[test]
fn barnacle_image_answers_to_every_name_as_the_binary_does() {
    let images = images();
    let listed: Vec<String> = fs::read_to_string(repo().join("docker/commands.txt"))
        .expect("read docker/commands.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    let mut want: Vec<&str> = BARNACLE_NAMES.to_vec();
    let mut have: Vec<&str> = listed.iter().map(String::as_str).collect();
    want.sort_unstable();
    have.sort_unstable();
    assert_eq!(
        have, want,
        "docker/commands.txt and the binary's names (harness BARNACLE_NAMES) differ"
    );

    for name in std::iter::once("barnacle").chain(listed.iter().map(String::as_str)) {
        let mut inside = Run::new(&images.barnacle);
        let entrypoint = format!("/usr/local/bin/{name}");
        inside.entrypoint = Some(&entrypoint);
        let ran = inside.run(&["--version"]);
        let outside = run(harness::barnacle(name).env_clear().arg("--version"));
        assert_eq!(
            (ran.code, &ran.stdout),
            (outside.code, &outside.stdout),
            "{name} --version"
        );
    }

    // The image's own settings: nobody, the binary as entrypoint, help by default.
    let config = harness::run_ok(Command::new("podman").envs(images.env.clone()).args([
        "image",
        "inspect",
        "--format",
        "{{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}",
        &images.barnacle,
    ]));
    assert_eq!(
        config.trim(),
        r#"65534:65534 ["/usr/local/bin/barnacle"] ["--help"]"#
    );
    let help = Run::new(&images.barnacle)
        .run(&[])
        .ok("barnacle --help by default");
    assert!(help.stdout.contains("Usage: barnacle"), "{help:#?}");
}

#[test]
fn cnpg_image_runs_barnacle_for_cloudnative_pg_calls() {
    let images = images();
    let cnpg = Run::new(&images.cnpg);

    // What CloudNativePG's instance manager finds on the PATH (Go's exec.LookPath, as `command -v`).
    let found = cnpg
        .run(&["sh", "-c", "command -v barman-cloud-wal-archive"])
        .ok("command -v");
    assert_eq!(
        found.stdout.trim(),
        "/opt/barnacle/bin/barman-cloud-wal-archive"
    );
    let version = cnpg
        .run(&["barman-cloud-wal-archive", "--version"])
        .ok("--version");
    assert_eq!(version.stdout, "barman-cloud-wal-archive 3.19.1\n");
    let help = cnpg
        .run(&["barman-cloud-wal-archive", "--help"])
        .ok("--help");
    // (Help shows the values of options' environment variables: compare with none set.)
    let host_help = run(harness::barnacle("barman-cloud-wal-archive")
        .env_clear()
        .arg("--help"));
    assert_eq!(help.stdout, host_help.stdout, "--help comes from barnacle");
    // The base image's own Barman is still there, only shadowed.
    let stub = cnpg
        .run(&["/usr/local/bin/barman-cloud-wal-archive", "--version"])
        .ok("stub");
    assert_eq!(stub.stdout.trim(), STUB_BARMAN);
    for name in BARNACLE_NAMES {
        let found = cnpg
            .run(&["sh", "-c", &format!("command -v {name}")])
            .ok("command -v");
        assert_eq!(found.stdout.trim(), format!("/opt/barnacle/bin/{name}"));
    }

    // The argument vectors CloudNativePG builds for the bare-metal Cluster of docker/k8s
    // (docker/README.md), run by their names in the image, with PGDATA as working directory.
    let archive = Archive::new(S3Kind::SeaweedHttp, "container-cnpg");
    let (pgdata, wal) = pg_wal_with_segment("container-cnpg-pgdata");
    let endpoint = endpoint_inside(&archive);
    let dest = archive.url();
    let server = archive.server.as_str();
    let mut instance = Run::new(&images.cnpg);
    instance
        .volumes
        .push((pgdata.clone(), "/var/lib/postgresql/data/pgdata"));
    instance.workdir = Some("/var/lib/postgresql/data/pgdata");
    instance.env = archive.s3.env();
    let provider = ["--cloud-provider", "aws-s3"];

    let check = [
        &[
            "barman-cloud-check-wal-archive",
            "--endpoint-url",
            &endpoint,
        ][..],
        &provider,
        &[&dest, server],
    ]
    .concat();
    instance
        .run(&check)
        .ok("barman-cloud-check-wal-archive on an empty archive");

    let wal_path = format!("pg_wal/{wal}");
    let push = [
        &[
            "barman-cloud-wal-archive",
            "--gzip",
            "--addressing-style=path",
            "--endpoint-url",
            &endpoint,
        ][..],
        &provider,
        &[&dest, server, &wal_path],
    ]
    .concat();
    instance.run(&push).ok("barman-cloud-wal-archive");
    let key = format!("{}/{server}/wals/{}/{wal}.gz", archive.prefix, &wal[..16]);
    assert!(
        archive.keys().contains(&key),
        "{key} not in {:?}",
        archive.keys()
    );

    let restore = |name: &str| {
        // %p of restore_command: relative to PGDATA, the working directory.
        let target = "pg_wal/RECOVERYXLOG";
        let argv = [
            &["barman-cloud-wal-restore", "--endpoint-url", &endpoint][..],
            &provider,
            &[&dest, server, "--addressing-style=path", name, target],
        ]
        .concat();
        instance.run(&argv)
    };
    restore(&wal).ok("barman-cloud-wal-restore");
    assert!(
        fs::read(pgdata.join("pg_wal/RECOVERYXLOG")).unwrap()
            == fs::read(pgdata.join("pg_wal").join(&wal)).unwrap(),
        "the restored segment differs"
    );
    assert_eq!(
        restore("0000000100000000000000FF").code,
        1,
        "a missing WAL is exit code 1"
    );

    let list = [
        &[
            "barman-cloud-backup-list",
            "--format",
            "json",
            "--endpoint-url",
            &endpoint,
        ][..],
        &provider,
        &[&dest, server],
    ]
    .concat();
    let listed = instance.run(&list).ok("barman-cloud-backup-list");
    assert_eq!(listed.stdout.trim(), r#"{"backups_list": []}"#);

    // Retention after a backup, as CNPG runs it for retentionPolicy "30d": with no base backup
    // yet, nothing is obsolete and the WAL stays.
    let delete = [
        &["barman-cloud-backup-delete", "--endpoint-url", &endpoint][..],
        &provider,
        &[
            "--retention-policy",
            "RECOVERY WINDOW OF 30 DAYS",
            &dest,
            server,
        ],
    ]
    .concat();
    instance.run(&delete).ok("barman-cloud-backup-delete");
    assert!(archive.keys().contains(&key), "retention deleted {key}");

    // The archive is no longer empty: a new cluster must not start archiving into it.
    let again = instance.run(&check);
    assert_eq!(
        again.code, 1,
        "check-wal-archive on a used archive: {again:#?}"
    );
}

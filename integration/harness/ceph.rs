//! A real single-host Ceph cluster with the RADOS Gateway (S3), on loopback.
//!
//! Debian 12 ships Ceph 16.2 (Pacific), whose RGW has no standalone backend: this runs one
//! monitor, one OSD on memstore (RAM-backed) and radosgw, with auth none, each in the
//! foreground (`-f`) as a child of the service thread. User `testkey`/`testsecret`.
//!
//! Startup takes under 2 s instead of ~13 s because `paxos propose interval` is cut from 1 s
//! to 10 ms: with the default, every osdmap change (OSD boot, each of the pools radosgw creates
//! on first start) waits a full second for the single monitor to propose it.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::s3::{Running, wait_http};
use super::service::Service;
use super::tls::tls;
use super::{free_port, log_tail, scratch};

/// RAM the OSD may use for object data (memstore): the whole test suite's Ceph objects.
const MEMSTORE_BYTES: u64 = 8 << 30;

pub(crate) fn ceph() -> &'static Running {
    static CEPH: OnceLock<Running> = OnceLock::new();
    CEPH.get_or_init(start)
}

fn start() -> Running {
    let started = Instant::now();
    let dir = scratch("ceph");
    for sub in ["mon", "osd0", "run", "log", "rgw"] {
        fs::create_dir_all(dir.join(sub)).expect("create ceph dirs");
    }
    let (mon_port, http, https) = (free_port(), free_port(), free_port());
    let fsid = uuid();
    let conf = dir.join("ceph.conf");
    fs::write(&conf, config(&dir, &fsid, mon_port, http, https)).expect("write ceph.conf");
    let log = |name: &str| dir.join("log").join(name);
    let ceph_cmd = |prog: &str, args: &[&str]| {
        let mut cmd = Command::new(prog);
        cmd.arg("-c").arg(&conf).args(args);
        cmd
    };
    let run = |prog: &str, args: &[&str]| step(&dir, &mut ceph_cmd(prog, args));

    let monmap = dir.join("monmap");
    let monmap = monmap.to_str().expect("UTF-8 path");
    let mon_addr = format!("[v1:127.0.0.1:{mon_port}]");
    let mut monmaptool = Command::new("monmaptool");
    monmaptool.args([
        "--create", "--addv", "a", &mon_addr, "--fsid", &fsid, monmap,
    ]);
    step(&dir, &mut monmaptool);
    run("ceph-mon", &["--mkfs", "-i", "a", "--monmap", monmap]);
    let mon_cmd = ceph_cmd("ceph-mon", &["-f", "-i", "a"]);
    let mon = Service::start("ceph-mon", mon_cmd, &log("mon.out"));

    let osd_uuid = uuid();
    run(
        "ceph",
        &["--connect-timeout", "30", "osd", "new", &osd_uuid],
    );
    // The OSD would place itself in the CRUSH map at start, but its first monitor command can
    // race the monmap and fail with "wrong fsid" (then ceph-osd exits): place it here instead.
    run(
        "ceph",
        &["osd", "crush", "add", "osd.0", "1.0", "root=default"],
    );
    run("ceph-osd", &["-i", "0", "--mkfs", "--osd-uuid", &osd_uuid]);
    let osd_cmd = ceph_cmd("ceph-osd", &["-f", "-i", "0"]);
    let osd = Service::start("ceph-osd", osd_cmd, &log("osd.out"));

    // radosgw creates its pools itself and waits for the OSD to come up.
    let rgw_cmd = ceph_cmd("radosgw", &["-f", "-n", "client.rgw"]);
    let rgw = Service::start("radosgw", rgw_cmd, &log("rgw.out"));
    wait_http(&[&mon, &osd, &rgw], http, https, Duration::from_secs(120));
    let user = [
        "--uid=test",
        "--display-name=test",
        "--access-key=testkey",
        "--secret=testsecret",
    ];
    run("radosgw-admin", &[&["user", "create"][..], &user].concat());
    let elapsed = started.elapsed();
    eprintln!("harness: Ceph RGW ready on :{http} / :{https} in {elapsed:.1?}");
    Running {
        http_port: http,
        https_port: https,
        access_key: "testkey",
        secret_key: "testsecret",
        services: Arc::new(vec![rgw, osd, mon]),
    }
}

/// Runs one setup command; panics with its output and the daemons' logs if it fails.
/// A monitor still starting answers its first commands with "EPERM: problem getting
/// command descriptions" (seen on a loaded machine): those are sent again, for up to 60 s.
fn step(dir: &Path, cmd: &mut Command) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let out = loop {
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (apt-get install ceph-common?)"));
        let starting =
            String::from_utf8_lossy(&out.stderr).contains("problem getting command descriptions");
        if out.status.success() || !starting || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    if !out.status.success() {
        let logs: Vec<String> = [
            "mon.out",
            "ceph-mon.a.log",
            "osd.out",
            "ceph-osd.0.log",
            "rgw.out",
        ]
        .iter()
        .map(|n| dir.join("log").join(n))
        .filter(|p| p.exists())
        .map(|p| log_tail(&p, 30))
        .collect();
        panic!(
            "Ceph setup step {cmd:?} failed ({}):\n{}{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            logs.join("\n")
        );
    }
}

fn uuid() -> String {
    fs::read_to_string("/proc/sys/kernel/random/uuid")
        .expect("read a uuid")
        .trim()
        .to_string()
}

fn config(dir: &Path, fsid: &str, mon_port: u16, http: u16, https: u16) -> String {
    let d = dir.display();
    let tls = tls();
    let (cert, key) = (tls.cert.display(), tls.key.display());
    format!(
        "[global]
fsid = {fsid}
mon host = v1:127.0.0.1:{mon_port}
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
ms bind ipv4 = true
ms bind msgr2 = false
mon data avail warn = 1
mon data avail crit = 1
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 1
osd pool default pgp num = 1
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
paxos propose interval = 0.01
paxos min wait = 0.001
run dir = {d}/run
log file = {d}/log/$cluster-$name.log
admin socket = {d}/run/$name.asok
[mon.a]
mon data = {d}/mon
[osd.0]
osd data = {d}/osd0
osd objectstore = memstore
memstore device bytes = {MEMSTORE_BYTES}
osd journal size = 0
osd crush update on start = false
osd class update on start = false
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:{http} ssl_endpoint=127.0.0.1:{https} ssl_certificate={cert} ssl_private_key={key}
rgw data = {d}/rgw
rgw enable usage log = false
"
    )
}

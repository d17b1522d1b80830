"""Regenerates the retention fixtures by running Barman 3.19.1's own
barman-cloud-backup-delete (barman.clients.cloud_backup_delete.main) against an
in-memory bucket, with the clock and the local time zone pinned.

Run from the repository root:
    /opt/bt/venv/bin/python src/retention/testdata/gen_retention.py

Writes src/retention/testdata/scenarios/<name>.json, one file per bucket:
    {"name", "url", "path", "server", "tz", "now" (UTC instant, ISO),
     "objects": {key: body} (bodies are text; a keep body that is not UTF-8 is
                 {"hex": "..."}),
     "runs": [{"argv": [...], "dry_run": bool, "exit": int, "stdout": str,
               "log": ["LEVEL: message", ...] (WARNING and above),
               "calls": [["delete", [keys]] | ["prefix", p] | ["snapshots", id]]}]}
Each run starts from the same bucket. The calls are what the fake cloud
interface was asked to do (real runs); dry runs make none.
"""
import contextlib
import datetime
import io
import json
import logging
import os
import random
import shutil
import sys
import time

import barman.output  # noqa: F401  (breaks the infofile <-> output import cycle)
import barman.retention_policies as retention_policies
from barman.clients import cloud_backup_delete
from barman.infofile import BackupInfo, Tablespace

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "scenarios")
INFO = os.path.join(HERE, "..", "..", "layout", "testdata", "backup_info")
SEG = 1 << 24


class FakeCloud:
    """The parts of a CloudInterface barman-cloud-backup-delete uses, listing
    like one page of S3 ListObjectsV2 (common prefixes, then keys, sorted)."""

    def __init__(self, objects, path):
        self.path = path
        self.objects = dict(objects)
        self.calls = []

    def list_bucket(self, prefix="", delimiter="/"):
        dirs, files = [], []
        for key in sorted(self.objects):
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix):]
            if delimiter and delimiter in rest:
                d = prefix + rest.split(delimiter, 1)[0] + delimiter
                if d not in dirs:
                    dirs.append(d)
            else:
                files.append(key)
        return iter(dirs + files)

    def get_prefixes(self, prefix):
        for p in self.list_bucket(prefix + "/", delimiter="/"):
            if p.endswith("/"):
                yield p

    def remote_open(self, key, decompressor=None):
        data = self.objects.get(key)
        return None if data is None else io.BytesIO(data)

    def delete_objects(self, paths, **kwargs):
        self.calls.append(["delete", list(paths)])
        for p in paths:
            self.objects.pop(p, None)

    def delete_under_prefix(self, prefix, **kwargs):
        self.calls.append(["prefix", prefix])
        for k in [k for k in self.objects if k.startswith(prefix)]:
            del self.objects[k]

    def close(self):
        pass


class FakeSnapshots:
    def __init__(self, cloud):
        self.cloud = cloud

    def delete_snapshot_backup(self, backup_info):
        self.cloud.calls.append(["snapshots", backup_info.backup_id])


class Capture(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append("%s: %s" % (record.levelname, record.getMessage()))


def pin_clock(now_utc):
    class Pinned(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return now_utc.astimezone(tz) if tz else now_utc.replace(tzinfo=None)

    retention_policies.datetime = Pinned


def run(objects, path, url, server, argv, dry_run):
    cloud = FakeCloud(objects, path)
    cloud_backup_delete.get_cloud_interface = lambda config: cloud
    cloud_backup_delete.get_snapshot_interface_from_backup_info = (
        lambda backup_info, config=None: FakeSnapshots(cloud)
    )
    cloud_backup_delete.configure_logging = lambda config: None
    handler = Capture()
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.WARNING)
    out = io.StringIO()
    code = 0
    full = [url, server] + argv + (["--dry-run"] if dry_run else [])
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        try:
            cloud_backup_delete.main(full)
        except SystemExit as e:
            code = e.code
    return {
        "argv": argv,
        "dry_run": dry_run,
        "exit": code,
        "stdout": out.getvalue(),
        "log": handler.messages,
        "calls": cloud.calls,
    }


# --------------------------------------------------------------------------
# Building buckets


def segname(tli, lsn):
    return "%08X%08X%08X" % (tli, lsn >> 32, (lsn >> 24) & 0xFF)


def info_text(**fields):
    bi = BackupInfo(None)
    base = dict(server_name="cloud", version=150018, xlog_segment_size=SEG)
    base.update(fields)
    for k, v in base.items():
        bi.set_attribute(k, v)
    out = io.BytesIO()
    bi.save(file_object=out)
    return out.getvalue()


def wal_key(prefix, name, ext=""):
    if name.endswith(".history"):
        return "%s/wals/%s%s" % (prefix, name, ext)
    return "%s/wals/%s/%s%s" % (prefix, name[:16].upper(), name, ext)


class Bucket:
    def __init__(self, path, server):
        self.path = path
        self.server = server
        self.prefix = os.path.join(path, server)
        self.objects = {}

    def backup(self, backup_id, files=("data.tar",), keep=None, **fields):
        base = "%s/base/%s/" % (self.prefix, backup_id)
        self.objects[base + "backup.info"] = info_text(**fields)
        for f in files:
            self.objects[base + f] = b""
        if keep is not None:
            self.objects[base + "annotations/keep"] = keep

    def wal(self, name, ext=""):
        self.objects[wal_key(self.prefix, name, ext)] = b""

    def segments(self, tli, first, last, ext=""):
        for seg in range(first, last + 1):
            self.wal("%08X%08X%08X" % (tli, seg >> 8, seg & 0xFF), ext)


def utc(*args):
    return datetime.datetime(*args, tzinfo=datetime.timezone.utc)


def done(tli, begin, end, when, **extra):
    """A DONE backup on `tli` from segment number `begin` to `end`."""
    fields = dict(
        status="DONE",
        timeline=tli,
        begin_wal="%08X%08X%08X" % (tli, begin >> 8, begin & 0xFF),
        end_wal="%08X%08X%08X" % (tli, end >> 8, end & 0xFF),
        begin_time=when,
        end_time=when + datetime.timedelta(minutes=5),
        begin_offset=40,
        end_offset=256,
    )
    fields.update(extra)
    return fields


def scenario(name, bucket, tz, now, runs, url=None):
    return dict(name=name, bucket=bucket, tz=tz, now=now, runs=runs, url=url)


def handmade():
    out = []
    t0 = utc(2026, 1, 10, 12)
    day = datetime.timedelta(days=1)

    # The deleted backup's own timeline stays protected (identity comparison
    # in get_timelines_to_protect never matches the freshly loaded object).
    b = Bucket("", "pg")
    b.backup("20260101T000000", **done(1, 2, 2, t0 - 9 * day))
    b.backup("20260102T000000", **done(2, 5, 5, t0 - 8 * day))
    b.segments(1, 1, 7)
    b.segments(2, 1, 7)
    b.wal("00000002.history")
    out.append(scenario("timeline_identity", b, "UTC", t0, [
        ["-b", "20260101T000000"], ["-r", "REDUNDANCY 1"], ["-b", "20260102T000000"],
    ]))

    # Standalone archival backups before the obsolete ones: their ranges are
    # protected; keep:full blocks everything; -b skips WAL cleanup.
    b = Bucket("bucket/path", "main")
    b.backup("20251201T000000", keep=b"standalone", **done(1, 0x105, 0x106, t0 - 40 * day))
    b.backup("20251205T000000", **done(1, 0x1F0, 0x1F1, t0 - 36 * day))
    b.backup("20251210T000000", keep=b"standalone", **done(1, 0x2F0, 0x2F2, t0 - 31 * day))
    b.backup("20251215T000000", **done(1, 0x300, 0x300, t0 - 26 * day))
    b.backup("20251220T000000", **done(1, 0x410, 0x411, t0 - 21 * day))
    b.backup("20260105T000000", **done(1, 0x420, 0x420, t0 - 5 * day))
    b.segments(1, 0x100, 0x110)
    b.segments(1, 0x1EE, 0x1F3, ".gz")
    b.segments(1, 0x2EE, 0x302)
    b.segments(1, 0x40F, 0x421)
    b.wal("0000000100000001000000F0.00000028.backup")
    b.wal("000000010000000400000020.00000028.backup")
    b.wal("000000010000000200000000.partial")
    out.append(scenario("standalone_ranges", b, "Europe/Rome", t0, [
        ["-r", "REDUNDANCY 1"], ["-r", "REDUNDANCY 2", "-m", "1"],
        ["-r", "RECOVERY WINDOW OF 10 DAYS"], ["-r", "RECOVERY WINDOW OF 3 WEEKS", "-m", "3"],
        ["-b", "20251205T000000"], ["-b", "oldest"], ["-b", "20251201T000000"],
    ]))

    b = Bucket("", "pg")
    b.backup("20251201T000000", keep=b"full", **done(1, 3, 3, t0 - 40 * day))
    b.backup("20251202T000000", **done(1, 6, 6, t0 - 39 * day))
    b.backup("20251203T000000", keep=b"", **done(1, 8, 8, t0 - 38 * day))
    b.backup("20251204T000000", keep=b"full\n", **done(1, 10, 10, t0 - 37 * day))
    b.backup("20251205T000000", keep=b"bogus", **done(1, 12, 12, t0 - 36 * day))
    b.backup("20251206T000000", **done(1, 14, 14, t0 - 35 * day))
    b.segments(1, 1, 16)
    out.append(scenario("keep_values", b, "UTC", t0, [
        ["-r", "REDUNDANCY 1"], ["-r", "RECOVERY WINDOW OF 1 DAY"],
        ["-b", "20251203T000000"], ["-b", "20251202T000000"], ["-b", "20251206T000000"],
    ]))

    # A bucket path ending in "/": backups live under "deep/pg/base/", but
    # AnnotationManagerCloud reads keep annotations under "deep//pg/base/".
    b = Bucket("deep/", "pg")
    b.backup("20251201T000000", **done(1, 2, 2, t0 - 40 * day))
    b.backup("20251202T000000", keep=b"full", **done(1, 4, 4, t0 - 39 * day))
    b.backup("20251203T000000", **done(1, 6, 6, t0 - 38 * day))
    b.backup("20251204T000000", **done(1, 8, 8, t0 - 37 * day))
    b.objects["deep//pg/base/20251203T000000/annotations/keep"] = b"standalone"
    b.segments(1, 1, 9)
    out.append(scenario("trailing_slash_keep", b, "UTC", t0, [
        ["-r", "REDUNDANCY 1"], ["-b", "20251202T000000"], ["-b", "20251203T000000"],
    ]))

    # Minimum redundancy: OBSOLETE* and its warning, REDUNDANCY below -m,
    # REDUNDANCY 0 deletes every DONE backup, -b refusals (FAILED counts).
    b = Bucket("", "pg")
    for i in range(6):
        b.backup("2025120%dT000000" % (i + 1), **done(1, 2 + 3 * i, 3 + 3 * i, t0 - (30 - i) * day))
    b.backup("20251207T000000", status="FAILED", error="failure uploading data (boom)")
    b.backup("20251208T000000", status="STARTED", timeline=1, begin_wal="000000010000000000000020")
    b.segments(1, 1, 0x22)
    out.append(scenario("minimum_redundancy", b, "America/New_York", t0, [
        ["-r", "REDUNDANCY 2", "-m", "4"], ["-r", "REDUNDANCY 0"], ["-r", "REDUNDANCY 0", "-m", "1"],
        ["-r", "RECOVERY WINDOW OF 1 DAYS", "-m", "3"], ["-r", "RECOVERY WINDOW OF 1 DAYS", "-m", "9"],
        ["-r", "RECOVERY WINDOW OF 0 DAYS"],
        ["-b", "20251203T000000", "-m", "6"], ["-b", "20251203T000000", "-m", "7"],
        ["-b", "20251207T000000"], ["-b", "20251208T000000"], ["-b", "last-failed"],
        ["-b", "latest"], ["-b", "first"], ["-b", "20991231T235959"],
        ["-b", "20991231T235959", "-m", "9"], ["-b", "no-such-name"],
    ]))

    # FAILED backup without begin_wal, oldest, nothing after it: Barman deletes
    # its files and then crashes comparing WAL names with None.
    b = Bucket("", "pg")
    b.backup("20251201T000000", status="FAILED", error="failure uploading data (x)")
    b.backup("20251202T000000", status="FAILED", error="x", timeline=1,
             begin_wal="000000010000000000000004")
    b.segments(1, 1, 6)
    b.wal("00000001.history")
    out.append(scenario("failed_without_wal", b, "UTC", t0, [
        ["-b", "20251201T000000"], ["-b", "20251202T000000"], ["-r", "REDUNDANCY 1"],
    ]))
    b = Bucket("", "pg")
    b.backup("20251201T000000", status="FAILED", error="failure uploading data (x)")
    b.wal("00000001.history")
    out.append(scenario("failed_without_wal_no_segments", b, "UTC", t0, [["-b", "20251201T000000"]]))
    b = Bucket("", "pg")
    b.backup("20251201T000000", status="FAILED", error="failure uploading data (x)")
    b.backup("20251202T000000", status="STARTED")
    b.segments(1, 1, 3)
    b.segments(1, 0x100, 0x101)
    out.append(scenario("failed_without_wal_crash", b, "UTC", t0, [
        ["-b", "20251201T000000"], ["-b", "20251202T000000"],
    ]))
    b = Bucket("", "pg")
    b.backup("20251201T000000", status="FAILED", error="failure uploading data (x)")
    b.objects["pg/wals/000000010000000000000001"] = b""
    out.append(scenario("failed_without_wal_crash_per_wal", b, "UTC", t0, [
        ["-b", "20251201T000000"],
    ]))

    # Files of a backup: tablespaces by OID (0 and negative ones sort with or
    # before PGDATA), parts, unknown extensions, missing tars, spurious names.
    b = Bucket("", "pg")
    ts = [Tablespace("a", 16390, "/a"), Tablespace("b", 16384, "/b"), Tablespace("z", 0, "/z"),
          Tablespace("n", -7, "/n"), Tablespace("dup", 16384, "/dup"), Tablespace("m", 1, "/m")]
    b.backup("20251201T000000", files=(
        "data.tar", "data.tar.gz", "data_0002.tar.gz", "data_0001.tar.gz", "data_x.tar.bz2",
        "16384.tar.lz4", "16384_0001.tar.lz4", "16390.tar.zst", "163900.tar", "0.tar.snappy",
        "-7.tar", "1.tar", "10.tar", "README", "backup_label", "database.tar",
    ), tablespaces=ts, **done(1, 2, 2, t0 - 20 * day))
    b.backup("20251202T000000", files=(), **done(1, 4, 4, t0 - 19 * day))
    b.backup("20251203T000000", files=("data_0001.tar", "data.tar.zst", "16384_0001.tar"),
             tablespaces=[Tablespace("b", 16384, "/b")], **done(1, 6, 6, t0 - 18 * day))
    b.backup("20251204T000000", files=("data.tar", "data_0001.tar", "data_0002/x"),
             **done(1, 8, 8, t0 - 17 * day))
    b.backup("20251205T000000", files=("data.tar", "data_0001.tar.zst", "data_0002.tar.zst"),
             **done(1, 10, 10, t0 - 16 * day))
    b.backup("20251206T000000", **done(1, 12, 12, t0 - 15 * day))
    b.segments(1, 1, 13)
    out.append(scenario("backup_files", b, "UTC", t0, [
        ["-b", "20251201T000000"], ["-b", "20251202T000000"], ["-b", "20251203T000000"],
        ["-b", "20251204T000000"], ["-b", "20251205T000000"], ["-r", "REDUNDANCY 1"],
        ["-r", "REDUNDANCY 3"],
    ], url="s3://bucket"))

    # Snapshot backups: snapshots and backup_label first.
    b = Bucket("p", "pg")
    snap = open(os.path.join(INFO, "snapshot_aws.info"), "rb").read()
    b.objects["p/pg/base/20260601T120000/backup.info"] = snap
    b.objects["p/pg/base/20260601T120000/backup_label"] = b""
    b.backup("20260602T000000", **done(1, 0x10, 0x10, utc(2026, 6, 2)))
    b.segments(1, 0xC, 0x11, ".zst")
    out.append(scenario("snapshot", b, "Europe/Rome", utc(2026, 6, 10), [
        ["-b", "20260601T120000"], ["-r", "REDUNDANCY 1"],
    ]))

    # The fast path: whole hash dirs under the next backup's log go by prefix;
    # malformed prefixes warn on every pass; a dry run lists the same prefix
    # again for every deleted backup (nothing was deleted), a real run lists it
    # no more but deletes the cached WALs under it again, one by one.
    b = Bucket("", "pg")
    b.backup("20251201T000000", **done(1, 0x105, 0x105, t0 - 40 * day))
    b.backup("20251202T000000", **done(1, 0x305, 0x306, t0 - 39 * day))
    b.backup("20251203T000000", **done(1, 0x510, 0x510, t0 - 38 * day))
    b.backup("20251204T000000", **done(2, 0x610, 0x610, t0 - 37 * day))
    b.backup("20251205T000000", **done(2, 0x615, 0x615, t0 - 36 * day))
    for lo in (0x0FE, 0x1FD, 0x2FE, 0x3FE, 0x4FE, 0x5FE):
        b.segments(1, lo, lo + 4)
    b.segments(2, 0x5FE, 0x616, ".bz2")
    b.wal("00000002.history")
    b.wal("00000002.history", ".gz")
    b.objects["pg/wals/junk/file"] = b""
    b.objects["pg/wals/0000000100000001/README"] = b""
    b.objects["pg/wals/0000000100000002/sub/000000010000000200000099"] = b""
    b.objects["pg/wals/0000000100000003/"] = b""
    b.objects["pg/wals/00000001000000zz/000000010000000300000001"] = b""
    out.append(scenario("fast_path", b, "UTC", t0, [
        ["-r", "REDUNDANCY 1"], ["-r", "REDUNDANCY 2"], ["-r", "REDUNDANCY 3"],
        ["-b", "20251201T000000"], ["-b", "20251204T000000"],
    ]))

    # Names: compressed and plain copies of one segment, lower case, a
    # trailing newline, misplaced files, .partial and .backup around begin_wal.
    b = Bucket("", "pg")
    b.backup("20251201T000000", **done(1, 2, 2, t0 - 40 * day))
    b.backup("20251202T000000", **done(1, 8, 9, t0 - 39 * day))
    b.segments(1, 1, 10)
    b.wal("000000010000000000000003", ".gz")
    b.wal("000000010000000000000004", ".GZ")
    b.objects["pg/wals/0000000100000000/00000001000000000000000a"] = b""
    b.objects["pg/wals/0000000100000000/00000001000000000000000A"] = b""
    b.objects["pg/wals/0000000100000000/000000010000000000000005\n"] = b""
    b.objects["pg/wals/000000010000000000000006"] = b""
    b.objects["pg/wals/0000000200000000/000000010000000000000006.partial"] = b""
    b.wal("000000010000000000000008.00000028.backup")
    b.wal("000000010000000000000007.partial")
    b.wal("000000010000000000000008.partial", ".xz")
    b.wal("000000010000000000000002.00000028.backup", ".lz4")
    b.wal("00000001.history")
    b.objects["pg/wals/0000000100000000/00000003.history"] = b""
    out.append(scenario("wal_names", b, "UTC", t0, [
        ["-b", "20251201T000000"], ["-r", "REDUNDANCY 1"],
    ]))

    # WAITING_FOR_WALS counts as a neighbour (copy done) but is never reported.
    b = Bucket("", "pg")
    b.backup("20251201T000000", **done(1, 2, 2, t0 - 40 * day))
    b.backup("20251202T000000", **done(1, 4, 4, t0 - 39 * day, status="WAITING_FOR_WALS"))
    b.backup("20251203T000000", **done(1, 6, 6, t0 - 38 * day))
    b.backup("20251204T000000", **done(1, 8, 8, t0 - 37 * day))
    b.segments(1, 1, 9)
    out.append(scenario("waiting_for_wals", b, "UTC", t0, [
        ["-r", "REDUNDANCY 1"], ["-b", "20251201T000000"], ["-b", "20251202T000000"],
    ]))

    # Report crashes: incremental fields, a DONE backup without end_time, huge windows.
    b = Bucket("", "pg")
    b.backup("20251201T000000", **done(1, 2, 2, t0 - 40 * day))
    b.backup("20251202T000000", **done(1, 4, 4, t0 - 39 * day, parent_backup_id="20251201T000000"))
    b.backup("20251203T000000", **done(1, 6, 6, t0 - 38 * day))
    b.segments(1, 1, 7)
    out.append(scenario("incremental_parent", b, "UTC", t0, [
        ["-r", "REDUNDANCY 1"], ["-r", "RECOVERY WINDOW OF 2 DAYS"],
    ]))
    b = Bucket("", "pg")
    b.backup("20251201T000000", **done(1, 2, 2, t0 - 40 * day))
    b.backup("20251202T000000", **done(1, 4, 4, t0 - 39 * day, children_backup_ids=["x"]))
    b.backup("20251203T000000", **done(1, 6, 6, t0 - 38 * day))
    out.append(scenario("incremental_children", b, "UTC", t0, [
        ["-r", "REDUNDANCY 2"], ["-r", "RECOVERY WINDOW OF 2 DAYS"], ["-b", "20251201T000000"],
    ]))
    b = Bucket("", "pg")
    b.backup("20251201T000000", **done(1, 2, 2, t0 - 40 * day))
    b.backup("20251202T000000", **done(1, 4, 4, t0 - 39 * day, end_time=None))
    b.backup("20251203T000000", **done(1, 6, 6, t0 - 1 * day))
    b.segments(1, 1, 7)
    out.append(scenario("window_errors", b, "UTC", t0, [
        ["-r", "RECOVERY WINDOW OF 2 DAYS"], ["-r", "RECOVERY WINDOW OF 0 DAYS"],
        ["-r", "RECOVERY WINDOW OF 999999999 DAYS"], ["-r", "RECOVERY WINDOW OF 1000000000 DAYS"],
        ["-r", "RECOVERY WINDOW OF 200000000 WEEKS"], ["-r", "recovery  window of 3  months "],
        ["-r", "RECOVERY WINDOW OF 1 DAYSS"], ["-r", "REDUNDANCY -1"], ["-r", "main"],
        ["-r", "redundancy 99999999999999999999999"], ["-r", "RECOVERY WINDOW OF 1 WEE\u212aS"],
    ]))
    b = Bucket("", "pg")
    b.backup("20251201T000000", status="FAILED")
    out.append(scenario("window_overflow_no_done", b, "UTC", t0, [
        ["-r", "RECOVERY WINDOW OF 999999999 DAYS"],
    ]))

    # An unreadable backup.info stops everything; so does a keep that is not UTF-8.
    b = Bucket("", "pg")
    b.backup("20251201T000000", **done(1, 2, 2, t0 - 40 * day))
    b.objects["pg/base/20251202T000000/backup.info"] = b"no equals sign here\n"
    out.append(scenario("unreadable_backup_info", b, "UTC", t0, [
        ["-r", "REDUNDANCY 1"], ["-r", "not a policy"], ["-b", "20251201T000000"],
    ]))
    b = Bucket("", "pg")
    b.backup("20251201T000000", **done(1, 2, 2, t0 - 40 * day))
    b.backup("20251202T000000", keep=b"\xff\xfe", **done(1, 4, 4, t0 - 39 * day))
    b.backup("20251203T000000", **done(1, 6, 6, t0 - 38 * day))
    b.objects["pg/base/20251209T000000/annotations/keep"] = b"full"
    b.segments(1, 1, 7)
    out.append(scenario("keep_not_utf8", b, "UTC", t0, [
        ["-r", "REDUNDANCY 1"], ["-b", "20251202T000000"], ["-b", "20251201T000000"],
        ["-b", "20251203T000000"], ["-b", "20251209T000000"],
    ]))

    # Begin/end WAL values Barman cannot decode in a protected range or as remove_until.
    b = Bucket("", "pg")
    b.backup("20251201T000000", keep=b"standalone",
             **done(1, 2, 2, t0 - 40 * day, begin_wal="00000001.history"))
    b.backup("20251202T000000", **done(1, 4, 4, t0 - 39 * day))
    b.backup("20251203T000000", **done(1, 6, 6, t0 - 38 * day, begin_wal="garbage"))
    b.backup("20251204T000000", **done(1, 8, 8, t0 - 37 * day))
    b.segments(1, 1, 9)
    b.segments(1, 0x100, 0x101)
    out.append(scenario("bad_wal_fields", b, "UTC", t0, [
        ["-r", "REDUNDANCY 1"], ["-r", "REDUNDANCY 2"], ["-b", "20251202T000000"],
    ]))

    # Windows around DST changes: the point of recoverability is computed on
    # the local wall clock and takes the offset in force at that wall time.
    for name, tz, now, window in [
        ("dst_new_york_spring", "America/New_York", utc(2026, 3, 15, 16, 0), "7 DAYS"),
        ("dst_new_york_gap", "America/New_York", utc(2026, 3, 9, 6, 30), "1 DAYS"),
        ("dst_new_york_fold", "America/New_York", utc(2026, 11, 2, 5, 30), "1 DAYS"),
        ("dst_rome_autumn", "Europe/Rome", utc(2026, 11, 20, 10, 0), "4 WEEKS"),
    ]:
        b = Bucket("", "pg")
        local_now = now.astimezone(datetime.timezone.utc)
        for i, minutes in enumerate([-200, -90, -70, -61, -60, -59, -30, 0, 30, 59, 61, 90]):
            days = int(window.split()[0]) * (7 if "WEEK" in window else 1)
            end = local_now - datetime.timedelta(days=days) + datetime.timedelta(minutes=minutes)
            start = end - datetime.timedelta(minutes=1)
            bid = start.strftime("%Y%m%dT%H%M%S")
            b.backup(bid, **done(1, 2 * i + 2, 2 * i + 2, start, end_time=end))
        b.segments(1, 1, 26)
        out.append(scenario(name, b, tz, now, [
            ["-r", "RECOVERY WINDOW OF %s" % window], ["-r", "RECOVERY WINDOW OF %s" % window, "-m", "8"],
        ]))
    return out


# --------------------------------------------------------------------------
# Random realistic histories


def random_bucket(rng, now):
    path = rng.choice(["", "", "some/path", "deep/", "a//b"])
    server = rng.choice(["pg", "cluster-example"])
    b = Bucket(path, server)
    ext = rng.choice(["", "", ".gz", ".bz2", ".zst", ".lz4", ".snappy", ".xz"])
    n = rng.randint(0, 11)
    starts = sorted(now - datetime.timedelta(seconds=rng.randint(3600, 90 * 86400)) for _ in range(n))
    tli = 1
    lsn = rng.randint(1, 40) * SEG + rng.randint(0, SEG - 1)
    listed = set()  # (tli, segment number): the archive keeps only what is near backups
    tz_local = datetime.timezone(datetime.timedelta(hours=rng.choice([0, 1, -5])))
    ids = set()
    for start in starts:
        if rng.random() < 0.2:
            # promotion: the old timeline's last segment is archived as .partial
            b.wal(segname(tli, lsn) + ".partial", ext)
            listed.update((tli, s) for s in range((lsn >> 24) - rng.randint(0, 3), lsn >> 24))
            tli += rng.choice([1, 1, 2])
            b.wal("%08X.history" % tli, ext)
        r = rng.random()
        if r < 0.15:
            lsn = (((lsn >> 32) + 1) << 32) - rng.randint(1, 3) * SEG  # near a log boundary
        elif r < 0.25:
            lsn += rng.randint(200, 700) * SEG
        else:
            lsn += rng.randint(0, 6) * SEG + rng.randint(0, SEG - 1)
        begin = lsn
        end = begin + rng.randint(0, 3) * SEG + rng.randint(0, SEG - 1)
        lsn = end + rng.randint(1, 4) * SEG
        listed.update((tli, s) for s in range((begin >> 24) - rng.randint(0, 6),
                                              (end >> 24) + rng.randint(1, 4)))
        bid = start.astimezone(tz_local).strftime("%Y%m%dT%H%M%S")
        if bid in ids:
            continue
        ids.add(bid)
        status = rng.choices(["DONE", "FAILED", "STARTED"], [0.75, 0.15, 0.1])[0]
        fields = dict(status=status, timeline=tli, begin_wal=segname(tli, begin),
                      end_wal=segname(tli, end), begin_time=start,
                      end_time=start + datetime.timedelta(minutes=rng.randint(1, 180)),
                      begin_offset=begin % SEG, end_offset=end % SEG)
        if status == "FAILED" and rng.random() < 0.5:
            fields.update(timeline=None, begin_wal=None, end_wal=None, begin_offset=None,
                          end_offset=None, end_time=None)
            fields["error"] = "failure uploading data (KeyboardInterrupt)"
        if status == "STARTED":
            fields.update(end_wal=None, end_time=None, end_offset=None)
        keep = None
        if status == "DONE" and rng.random() < 0.35:
            keep = rng.choice([b"full", b"standalone", b"standalone", b"", b"bogus"])
        files = [rng.choice(["data.tar", "data.tar.gz", "data.tar.bz2", "data.tar.lz4"])]
        if rng.random() < 0.2:
            files.append(files[0].replace("data", "data_0001"))
        tablespaces = None
        if rng.random() < 0.2:
            tablespaces = [Tablespace("ts", 16384, "/ts")]
            files.append("16384.tar")
        if status != "DONE" and rng.random() < 0.5:
            files = []
        if rng.random() < 0.05:
            files.append("junk.txt")
        b.backup(bid, files=files, keep=keep, tablespaces=tablespaces, **fields)
        if fields["begin_wal"]:
            b.wal("%s.%08X.backup" % (fields["begin_wal"], begin % SEG), ext)
    for t, seg in sorted(listed):
        if seg >= 0 and rng.random() < 0.97:
            b.wal("%08X%08X%08X" % (t, seg >> 8, seg & 0xFF),
                  ext if rng.random() < 0.97 else rng.choice(["", ".gz"]))
    if rng.random() < 0.1:
        b.objects["%s/wals/lost+found/x" % b.prefix] = b""
    return b, sorted(ids)


def random_runs(rng, ids):
    runs = []
    for _ in range(rng.randint(2, 4)):
        m = rng.choice([0, 0, 0, 1, 2, 3])
        r = rng.random()
        if r < 0.4:
            argv = ["-r", "REDUNDANCY %d" % rng.randint(0, 5)]
        elif r < 0.8:
            unit, value = rng.choice([("DAYS", rng.randint(0, 95)), ("DAY", rng.randint(0, 3)),
                                      ("WEEKS", rng.randint(1, 13)), ("MONTHS", rng.randint(1, 3))])
            argv = ["-r", "RECOVERY WINDOW OF %d %s" % (value, unit)]
        else:
            choice = rng.choice(ids + ["latest", "oldest", "20000101T000000"]) if ids else "latest"
            argv = ["-b", choice]
        if m:
            argv += ["-m", str(m)]
        runs.append(argv)
    return runs


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    scenarios = handmade()
    rng = random.Random(20261127)
    for i in range(60):
        now = utc(2026, 1, 1) + datetime.timedelta(seconds=rng.randint(0, 365 * 86400),
                                                   microseconds=rng.choice([0, 123456]))
        tz = rng.choice(["UTC", "Europe/Rome", "America/New_York", "Asia/Kolkata"])
        bucket, ids = random_bucket(rng, now)
        scenarios.append(scenario("random_%02d" % i, bucket, tz, now, random_runs(rng, ids)))
    for sc in scenarios:
        os.environ["TZ"] = sc["tz"]
        time.tzset()
        pin_clock(sc["now"])
        b = sc["bucket"]
        url = sc["url"] or ("s3://bucket/" + b.path)
        results = []
        for argv in sc["runs"]:
            for dry in (True, False):
                results.append(run(b.objects, b.path, url, b.server, argv, dry))
        objects = {}
        for k, v in sorted(b.objects.items()):
            try:
                objects[k] = v.decode("utf-8")
            except UnicodeDecodeError:
                objects[k] = {"hex": v.hex()}
        doc = dict(name=sc["name"], url=url, path=b.path, server=b.server, tz=sc["tz"],
                   now=sc["now"].isoformat(), objects=objects, runs=results)
        with open(os.path.join(OUT, sc["name"] + ".json"), "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=0, ensure_ascii=False, sort_keys=True)
            f.write("\n")
    print("%d scenarios written to %s" % (len(scenarios), OUT), file=sys.stderr)


main()

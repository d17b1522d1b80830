"""Regenerates the backup.info fixtures with Barman 3.19.1's own BackupInfo.

Run from the repository root:
    /opt/bt/venv/bin/python src/layout/testdata/gen_backup_info.py

* backup_info/<name>.info: files as barman-cloud-backup writes them (BackupInfo.save);
  the spec's example is copied verbatim as spec_example.info and checked to be a fixed point.
* backup_info/<name>.in -> <name>.out: hand-written inputs and what Barman's load + save
  writes back for them.
"""
import datetime
import io
import os

import barman.output  # noqa: F401  (breaks the infofile <-> output import cycle)
from barman.infofile import BackupInfo, Tablespace, load_snapshots_info

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "backup_info")


def tz(hours=0, minutes=0):
    return datetime.timezone(datetime.timedelta(hours=hours, minutes=minutes))


def save(bi):
    out = io.BytesIO()
    bi.save(file_object=out)
    return out.getvalue()


def load(text):
    bi = BackupInfo("20000101T000000")
    bi.load(file_object=io.BytesIO(text))
    return bi


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


LABEL = (
    "START WAL LOCATION: 0/{lsn} (file {wal})\nCHECKPOINT LOCATION: 0/{ckpt}\n"
    "BACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: {start}\n"
    "LABEL: Barman backup cloud {id}\nSTART TIMELINE: {tli}\n"
)


def cloud_backup(**fields):
    bi = BackupInfo(None)
    base = dict(
        server_name="cloud",
        pgdata="/var/lib/postgresql/data/pgdata",
        config_file="/var/lib/postgresql/data/pgdata/postgresql.conf",
        hba_file="/var/lib/postgresql/data/pgdata/pg_hba.conf",
        ident_file="/var/lib/postgresql/data/pgdata/pg_ident.conf",
        data_checksums="off",
        systemid="7712971483224465399",
        version=150018,
        xlog_segment_size=16777216,
        cluster_size=30006985,
    )
    base.update(fields)
    for k, v in base.items():
        bi.set_attribute(k, v)
    return bi


def main():
    os.makedirs(HERE, exist_ok=True)
    spec = open(os.path.join(HERE, "spec_example.info"), "rb").read()
    assert save(load(spec)) == spec, "the spec example is not a fixed point"

    files = {}
    files["done_pg17_gzip"] = cloud_backup(
        status="DONE",
        backup_label=LABEL.format(lsn="9000028", wal="000000020000000000000009", ckpt="9000060",
                                  start="2026-11-28 01:00:00 CET", id="20261128T010000", tli=2),
        begin_time=datetime.datetime(2026, 11, 28, 1, 0, 0, 12, tzinfo=tz(2)),
        end_time=datetime.datetime(2026, 11, 28, 2, 2, 5, tzinfo=tz(2)),
        begin_xlog="0/9000028", end_xlog="0/A0001B8",
        begin_wal="000000020000000000000009", end_wal="00000002000000000000000A",
        begin_offset=40, end_offset=440, timeline=2, version=170002,
        summarize_wal="on", data_checksums="on", compression="gzip",
        deduplicated_size=123456789, size=123456789, cluster_size=5 * 1024 ** 3 + 1,
        copy_stats={"total_time": 3727.25, "number_of_workers": 4, "analysis_time": 1.5,
                    "analysis_time_per_item": {"data": 1.5}, "copy_time_per_item": {"data": 3725.5},
                    "serialized_copy_time_per_item": {"data": 3725.5}, "copy_time": 3725.5,
                    "serialized_copy_time": 3725.5},
        backup_name="nightly été",
    )
    files["failed_after_start"] = cloud_backup(
        status="FAILED",
        error="failure uploading data (KeyboardInterrupt)",
        begin_time=datetime.datetime(2026, 11, 27, 21, 50, 20, 500000, tzinfo=tz(0)),
        begin_xlog="0/6000028", begin_wal="000000010000000000000006", begin_offset=40,
        timeline=1, backup_name="failing",
        tablespaces=[Tablespace("ts1", 16384, "/var/lib/postgresql/tablespaces/ts1")],
    )
    files["failed_in_start"] = cloud_backup(
        status="FAILED",
        error="failure starting backup (ERROR:  could not access \"x\")",
        cluster_size=None,
    )
    files["started"] = cloud_backup(
        status="STARTED",
        begin_time=datetime.datetime(2026, 11, 28, 3, 0, 0, 1, tzinfo=tz(-5, -30)),
        begin_xlog="0/B000028", begin_wal="00000002000000000000000B", begin_offset=40,
        timeline=2,
    )
    files["quoted_label"] = cloud_backup(
        status="DONE",
        backup_label="LABEL: it's \u00e9t\u00e9\tTAB\x7f\u200b\U0001F600\n",
        begin_time=datetime.datetime(2026, 1, 5, 9, 3, 4, tzinfo=tz(-5, -30)),
        end_time=datetime.datetime(2026, 1, 5, 9, 3, 4, 999999, tzinfo=tz(-5, -30)),
        begin_xlog="0/C000028", end_xlog="0/C000100",
        begin_wal="00000002000000000000000C", end_wal="00000002000000000000000C",
        begin_offset=40, end_offset=256, timeline=2, cluster_size=1023,
        copy_stats={"copy_time": 0.25, "analysis_time": 0, "number_of_workers": 1},
        tablespaces=[Tablespace("a'b", 16385, "/ts/a"), Tablespace("b\"c", 16386, "/ts/b")],
        included_files=["/etc/postgresql/extra.conf"],
        backup_name="quoted",
    )
    files["waiting_postgres_mode"] = cloud_backup(
        status="WAITING_FOR_WALS", mode="postgres", server_name="pg-main",
        encryption="gpg", children_backup_ids=["20261201T000000", "20261202T000000"],
        parent_backup_id=None,
        begin_time=datetime.datetime(2026, 11, 30, 23, 59, 59, tzinfo=tz(0)),
        end_time=datetime.datetime(2026, 12, 1, 0, 0, 1, tzinfo=tz(0)),
        begin_xlog="0/D000028", end_xlog="0/D000100",
        begin_wal="00000003000000000000000D", end_wal="00000003000000000000000D",
        begin_offset=40, end_offset=256, timeline=3, cluster_size=1024 ** 6 * 3 + 1024 ** 5 * 512,
        copy_stats={"copy_time": 90061, "analysis_time": 0.5},
        data_checksums=None,
    )
    files["snapshot_aws"] = cloud_backup(
        status="DONE", mode="concurrent", server_name="pg-snap",
        snapshots_info=load_snapshots_info(repr({
            "provider": "aws",
            "provider_info": {"account_id": "123456789012", "region": "eu-west-1"},
            "snapshots": [{
                "mount": {"mount_options": "rw,noatime", "mount_point": "/opt/disk0"},
                "provider": {"device_name": "/dev/sdf", "snapshot_name": "snap0",
                             "snapshot_id": "snap-0123"},
            }],
        })),
        begin_time=datetime.datetime(2026, 6, 1, 12, 0, 0, tzinfo=tz(1)),
        end_time=datetime.datetime(2026, 6, 1, 12, 0, 30, tzinfo=tz(1)),
        begin_xlog="0/E000028", end_xlog="0/E000100",
        begin_wal="00000001000000000000000E", end_wal="00000001000000000000000E",
        begin_offset=40, end_offset=256, timeline=1,
    )
    for name, bi in files.items():
        data = save(bi)
        assert save(load(data)) == data, name
        write(name + ".info", data)

    messy = {
        "messy": (
            b"# written by hand\n"
            b"\n"
            b"   \n"
            b"  version = 15_0018  \n"
            b"tablespaces=[['a', 1, '/x'], ('b', 2, '/y')]\n"
            b"copy_stats={}\n"
            b"backup_label=\"a\\nb\" 'c'\n"
            b"begin_time=2026-11-27T21:49:06.9411975Z\n"
            b"end_time=2026-11-27 21:49:08 +0530\n"
            b"children_backup_ids=a,b\n"
            b"included_files=[]\n"
            b"timeline=+2\n"
            b"backup_id=OVERRIDDEN\n"
            b"backup_version=1\n"
            b"server_name=x=y\r\n"
            b"status=DONE\n"
            b"status=FAILED\n"
            b"snapshots_info={'provider': 'aws', 'snapshots': [{'provider': {'snapshot_id': 'i', 'extra': 1}}], 'x': 2}\n"
            b"backup_name=None\n"
            b"size=-0"
        ),
        "defaults": b"",
        "nulls": b"status=None\nxlog_segment_size=None\ncopy_stats=None\nbackup_name=n\n",
    }
    for name, text in messy.items():
        write(name + ".in", text)
        write(name + ".out", save(load(text)))


main()

"""Regenerates the catalogue fixtures by running Barman 3.19.1's own clients
(barman-cloud-backup-list, -show, -keep -s) against an in-memory bucket.

Run from the repository root:
    /opt/bt/venv/bin/python src/catalog/testdata/gen_catalog.py

Each scenario directory holds `bucket/<server>/base/<id>/backup.info` (and
`annotations/keep`) copied from src/layout/testdata/backup_info, plus
`expected/`: one file per command with its exact stdout. A command that fails
writes `exit=<code>` and the ERROR log messages instead, in a `.error` file.
"""
import contextlib
import datetime
import io
import random
import logging
import os
import shutil
import sys
import urllib.parse

import barman.output  # noqa: F401  (breaks the infofile <-> output import cycle)
from barman.clients import cloud_backup_keep, cloud_backup_list, cloud_backup_show
from barman.infofile import BackupInfo, Tablespace, load_snapshots_info

HERE = os.path.dirname(os.path.abspath(__file__))
INFO = os.path.join(HERE, "..", "..", "layout", "testdata", "backup_info")


class FakeCloud:
    """The parts of a CloudInterface the list/show/keep clients use."""

    def __init__(self, objects):
        self.path = ""
        self.objects = objects

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

    def remote_open(self, key, decompressor=None):
        data = self.objects.get(key)
        return None if data is None else io.BytesIO(data)

    def close(self):
        pass


class Capture(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append("%s: %s" % (record.levelname, record.getMessage()))


def run(module, objects, argv):
    cloud = FakeCloud(objects)
    module.get_cloud_interface = lambda config: cloud
    handler = Capture()
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.WARNING)
    module.configure_logging = lambda config: None
    out = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out):
        try:
            module.main(argv)
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), handler.messages


SCENARIOS = {
    "mixed": {
        "server": "pg",
        "backups": {
            "20261126T000000": ("failed_in_start.info", None),
            "20261127T214906": ("spec_example.info", b"standalone"),
            "20261127T215020": ("failed_after_start.info", None),
            "20261128T010000": ("done_pg17_gzip.info", b"full"),
            "20261128T030000": ("started.info", None),
            "20261129T000000": ("quoted_label.info", b"full\nsecond line"),
            "20261130T000000": ("waiting_postgres_mode.info", b""),
            "20261201T000000": ("snapshot_aws.info", b"bogus"),
            "20261202T000000": (None, None),  # a directory without backup.info
        },
        "show": [
            "20261126T000000", "20261127T214906", "20261127T215020", "20261128T010000",
            "20261128T030000", "20261129T000000", "20261130T000000", "20261201T000000",
            "first-backup", "failing", "nightly été", "quoted",
            "latest", "last", "oldest", "first", "last-failed", "latest-full",
            "nope", "20991231T235959", "20261202T000000",
        ],
    },
    "empty": {"server": "pg", "backups": {}, "show": ["latest", "20261127T214906"]},
    "oddities": {
        "server": "srv",
        "backups": {
            "20261127T214906": ("spec_example.info", None),
            "20261127T220000": ("spec_example.info", b"standalone"),
            "20261203T000000": ("messy.in", b"full"),
            "20261204T000000": ("defaults.in", None),
        },
        "show": ["first-backup", "20261203T000000", "20261204T000000", "OVERRIDDEN", "latest"],
    },
    "status_none": {
        "server": "pg",
        "backups": {"20261127T214906": ("nulls.in", None)},
        "show": ["20261127T214906", "n", "latest"],
    },
}


POOLS = [
    (0x20, 0x7E), (0x20, 0x7E), (0x20, 0x7E), (0x00, 0x1F), (0x7F, 0xFF), (0x100, 0x3FF),
    (0x2000, 0x206F), (0xE000, 0xE00F), (0xFFF0, 0xFFFF), (0x1F300, 0x1F6FF), (0xE0000, 0xE007F),
]


def rand_text(rng, n_max=12, line=True):
    """Random text; `line` texts avoid \n and edge whitespace (backup.info lines)."""
    while True:
        chars = []
        for _ in range(rng.randint(1, n_max)):
            lo, hi = rng.choice(POOLS)
            c = rng.randint(lo, hi)
            if not 0xD800 <= c <= 0xDFFF:
                chars.append(chr(c))
        chars += rng.choice([[], ["'"], ['"'], ["'", '"'], ["\\"]])
        rng.shuffle(chars)
        text = "".join(chars)
        if not line:
            return text
        if "\n" not in text and text == text.strip() and text and text != "None":
            return text


def rand_time(rng):
    if rng.random() < 0.15:
        return None
    offset = datetime.timedelta(minutes=rng.choice([0, 0, 60, 120, -300, -330, 345, 840, -720]))
    t = datetime.datetime(rng.randint(2000, 2099), rng.randint(1, 12), rng.randint(1, 28),
                          rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59),
                          rng.choice([0, rng.randint(0, 999999)]), tzinfo=datetime.timezone(offset))
    return t


def rand_number(rng):
    return rng.choice([
        0, 1, rng.randint(-5, 100000), round(rng.uniform(0, 200000), rng.randint(0, 6)),
        rng.uniform(0, 1), True, 0.0, rng.uniform(0.5, 1.5),
    ])


def rand_backup(rng):
    """A random BackupInfo as barman-cloud-backup (or a hook) could write it."""
    bi = BackupInfo(None)
    status = rng.choice(["DONE", "DONE", "DONE", "FAILED", "STARTED", "WAITING_FOR_WALS",
                         "EMPTY", "SYNCING"])
    maybe = lambda v: v if rng.random() < 0.75 else None  # noqa: E731
    fields = dict(
        status=status,
        backup_label=maybe(rand_text(rng, 40, line=False) + "\n"),
        backup_name=maybe(rand_text(rng)),
        begin_time=rand_time(rng), end_time=rand_time(rng),
        begin_offset=maybe(rng.randint(0, 16777215)), end_offset=maybe(rng.randint(0, 16777215)),
        begin_wal=maybe("%024X" % rng.getrandbits(64)), end_wal=maybe("%024X" % rng.getrandbits(64)),
        begin_xlog=maybe("%X/%X" % (rng.getrandbits(8), rng.getrandbits(32))),
        end_xlog=maybe("%X/%X" % (rng.getrandbits(8), rng.getrandbits(32))),
        cluster_size=maybe(rng.choice([0, rng.randint(1, 1023), rng.getrandbits(rng.randint(10, 62))])),
        deduplicated_size=maybe(rng.choice([0, rng.getrandbits(rng.randint(1, 50))])),
        size=maybe(rng.getrandbits(40)),
        compression=maybe(rng.choice(["gzip", "bzip2", "none", "lz4", "snappy"])),
        encryption=maybe(rng.choice(["gpg", None])),
        mode=rng.choice([None, None, "postgres", "concurrent", "rsync-concurrent"]),
        error=maybe(rand_text(rng, 30)) if status == "FAILED" else None,
        server_name=rng.choice(["cloud", "cloud", rand_text(rng, 8)]),
        systemid=maybe(str(rng.getrandbits(63))),
        pgdata=maybe("/" + rand_text(rng, 10)), config_file=maybe("/etc/pg.conf"),
        hba_file=maybe("/etc/hba.conf"), ident_file=maybe("/etc/ident.conf"),
        data_checksums=rng.choice(["on", "off", None]), summarize_wal=rng.choice(["on", "off", None]),
        timeline=maybe(rng.randint(1, 300)), version=maybe(rng.choice([90624, 130011, 150018, 170002])),
        xlog_segment_size=rng.choice([16777216, 1048576, 1073741824]),
        children_backup_ids=rng.choice([None, None, ["20260101T000000"], ["a", "b", "c"]]),
        copy_stats=rng.choice([
            None, {},
            {"copy_time": rand_number(rng), "analysis_time": rand_number(rng),
             "number_of_workers": rng.randint(1, 8),
             "copy_time_per_item": {"data": rand_number(rng), "16384": rand_number(rng)},
             rand_text(rng, 5): [rand_number(rng), None, (1, "x")], 7: rng.uniform(-1e30, 1e30)},
            {"total_time": rand_number(rng)},
        ]),
        tablespaces=rng.choice([None, [
            Tablespace(rand_text(rng, 8), rng.randint(16384, 4294967295), "/" + rand_text(rng, 8))
            for _ in range(rng.randint(1, 3))
        ]]),
        included_files=rng.choice([None, [], ["/" + rand_text(rng, 10)]]),
    )
    if rng.random() < 0.1:
        fields["snapshots_info"] = load_snapshots_info(repr({
            "provider": "aws", "provider_info": {"account_id": "1", "region": rand_text(rng, 5)},
            "snapshots": [{"mount": {"mount_options": "rw", "mount_point": "/" + rand_text(rng, 5)},
                           "provider": {"device_name": "/dev/x", "snapshot_id": "s",
                                        "snapshot_name": rand_text(rng, 5)}}],
        }))
    for k, v in fields.items():
        bi.set_attribute(k, v)
    out = io.BytesIO()
    bi.save(file_object=out)
    return out.getvalue()


def random_scenario(seed, count):
    rng = random.Random(seed)
    backups, show = {}, []
    ids = sorted({"%04d%02d%02dT%02d%02d%02d" % (
        rng.randint(2000, 2099), rng.randint(1, 12), rng.randint(1, 28),
        rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)) for _ in range(count)})
    for backup_id in ids:
        keep = rng.choice([None, None, b"full", b"standalone", b"weird\xc3\xa9"])
        backups[backup_id] = (rand_backup(rng), keep)
        show.append(backup_id)
    return {"server": "pg", "backups": backups, "show": show + ["latest", "oldest", "last-failed"]}


SCENARIOS["random"] = random_scenario(20261127, 60)


def quote(identifier):
    return urllib.parse.quote(identifier, safe="")


def main():
    for name, sc in SCENARIOS.items():
        root = os.path.join(HERE, name)
        shutil.rmtree(root, ignore_errors=True)
        objects = {}
        for backup_id, (info, keep) in sc["backups"].items():
            base = "%s/base/%s/" % (sc["server"], backup_id)
            if info is None:
                objects[base + "data.tar"] = b"tar"
            elif isinstance(info, bytes):
                objects[base + "backup.info"] = info
            else:
                objects[base + "backup.info"] = open(os.path.join(INFO, info), "rb").read()
            if keep is not None:
                objects[base + "annotations/keep"] = keep
        for key, data in objects.items():
            path = os.path.join(root, "bucket", key)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
        expected = os.path.join(root, "expected")
        os.makedirs(expected)

        def record(fname, result):
            code, stdout, log = result
            if code:
                fname += ".error"
                stdout = "exit=%s\n%s" % (code, "".join(m + "\n" for m in log))
            elif log:
                with open(os.path.join(expected, fname + ".log"), "w") as f:
                    f.write("".join(m + "\n" for m in log))
            with open(os.path.join(expected, fname), "w", encoding="utf-8") as f:
                f.write(stdout)

        url = "s3://bucket/"
        record("list.console", run(cloud_backup_list, objects, [url, sc["server"]]))
        record("list.json", run(cloud_backup_list, objects, [url, sc["server"], "--format", "json"]))
        for ident in sc["show"]:
            q = quote(ident)
            record("show.%s.console" % q, run(cloud_backup_show, objects, [url, sc["server"], ident]))
            record("show.%s.json" % q,
                   run(cloud_backup_show, objects, [url, sc["server"], ident, "--format", "json"]))
            record("keep.%s" % q, run(cloud_backup_keep, objects, [url, sc["server"], ident, "-s"]))


main()

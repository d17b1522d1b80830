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
import io
import logging
import os
import shutil
import sys
import urllib.parse

import barman.output  # noqa: F401  (breaks the infofile <-> output import cycle)
from barman.clients import cloud_backup_keep, cloud_backup_list, cloud_backup_show

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

"""Merges the parts of a comparison run into one table with the ratios to barnacle.

    python3 table.py OUT_DIR

Reads OUT_DIR/wal_summary.csv (WAL push and restore), OUT_DIR/backup/summary.csv
(scripts/compare-backup.sh), OUT_DIR/load_summary.csv (archive_command under
pgbench load) and OUT_DIR/meta.json (the machine and versions); whichever parts
exist. Writes OUT_DIR/compare.csv (every row, with its ratios), targets.csv
(the issue's targets, measured), compare.md (the tables in Markdown) and prints
the table.

Ratios are "other's time / barnacle's time" (above 1: barnacle is faster), each
row against two barnacle references at the same gzip level class (rows at levels
1 to 3 against barnacle at its default level 2, every other row against barnacle
at 6):

* ratio_same_mode: sequential rows against barnacle's sequential one
  (walpush; restore without prefetch), rows that work ahead against barnacle's
  sidecar with as many workers (push) or restore -p 4 (restore);
* ratio_best: against the fastest barnacle row of that corpus and level class.

The RSS ratio is the row's peak RSS over barnacle's for the same reference.
"""

import csv
import json
import os
import sys

OUT = sys.argv[1]


def read(path):
    p = os.path.join(OUT, path)
    if not os.path.exists(p):
        return []
    with open(p, newline="") as f:
        return list(csv.DictReader(f))


def f(x, fmt):
    return format(x, fmt) if x is not None else ""


meta = {}
if os.path.exists(os.path.join(OUT, "meta.json")):
    meta = json.load(open(os.path.join(OUT, "meta.json")))

rows = []

# ---- WAL push and restore ------------------------------------------------------
wal = read("wal_summary.csv")
for r in wal:
    r["seconds"] = float(r["s_per_segment"])
    r["rss"] = float(r["peak_rss_mib"])


def wal_ref(op, corpus, level, pred):
    cands = [r for r in wal if r["op"] == op and r["corpus"] == corpus and r["tool"] == "barnacle"
             and (op == "restore" or int(r["level"]) == level) and pred(r)]
    return min(cands, key=lambda r: r["seconds"]) if cands else None


for r in wal:
    op, corpus = r["op"], r["corpus"]
    level = int(r["level"]) if r["level"] else 6
    lvl = 2 if level <= 3 else 6
    parallel = r["mode"] not in ("sequential",)
    if op == "push":
        same = wal_ref(op, corpus, lvl, (lambda x: x["mode"] == "sidecar" and x["workers"] == r["workers"])
                       if parallel else (lambda x: x["mode"] == "sequential"))
    else:
        same = wal_ref(op, corpus, lvl, (lambda x: x["workers"] == "4") if parallel
                       else (lambda x: x["mode"] == "sequential"))
    best = wal_ref(op, corpus, lvl, lambda x: True)
    rows.append({
        "section": f"wal-{op}", "corpus": corpus, "variant": r["variant"], "label": r["label"],
        "tool": r["tool"], "gzip_level": r["level"], "mode": r["mode"], "workers": r["workers"],
        "unit": "s/segment", "seconds": r["s_per_segment"], "min_s": r["min_s"], "max_s": r["max_s"],
        "mib_per_s": r["mib_per_s"], "cpu_s": r["cpu_s_per_segment"], "peak_rss_mib": r["peak_rss_mib"],
        "stored_mib": r["stored_mib"], "compression_ratio": r["compression_ratio"],
        "ref_same_mode": same["variant"] if same else "",
        "ratio_same_mode": f(r["seconds"] / same["seconds"], ".2f") if same else "",
        "rss_ratio_same_mode": f(r["rss"] / same["rss"], ".2f") if same else "",
        "ref_best": best["variant"] if best else "",
        "ratio_best": f(r["seconds"] / best["seconds"], ".2f") if best else "",
    })

# ---- base backup and restore (scripts/compare-backup.sh) ------------------------
bk = read("backup/summary.csv")
db_mib = None
for r in bk:
    if r["op"] == "backup" and r["stored_mib"] and r["db_over_stored"]:
        db_mib = float(r["stored_mib"]) * float(r["db_over_stored"])
        break
for r in bk:
    ref = next((x for x in bk if x["op"] == r["op"] and x["tool"] == "barnacle"), None)
    secs = float(r["median_s"])
    rss = max(float(r["maxrss_mib"]), float(r["tree_rss_mib"]))
    ref_rss = max(float(ref["maxrss_mib"]), float(ref["tree_rss_mib"])) if ref else None
    rows.append({
        "section": f"base-{r['op']}", "corpus": f"pgbench db {db_mib / 1024:.2f} GiB" if db_mib else "pgbench db",
        "variant": r["tool"], "tool": r["tool"],
        "label": {"barnacle": f"barnacle {r['op']} (gzip 6, every core)" if r["op"] == "backup" else "barnacle restore",
                  "barman": "barman-cloud-backup --gzip (9)" if r["op"] == "backup" else "barman-cloud-restore"}.get(r["tool"], r["tool"]),
        "gzip_level": ("6" if r["tool"] == "barnacle" else "9") if r["op"] == "backup" else "",
        "mode": "", "workers": r["procs"], "unit": "s", "seconds": r["median_s"], "min_s": r["min_s"],
        "max_s": r["max_s"], "mib_per_s": f(db_mib / secs, ".1f") if db_mib else "", "cpu_s": r["cpu_s"],
        "peak_rss_mib": f(rss, ".1f"), "stored_mib": r["stored_mib"], "compression_ratio": r["db_over_stored"],
        "ref_same_mode": "barnacle", "ratio_same_mode": f(secs / float(ref["median_s"]), ".2f") if ref else "",
        "rss_ratio_same_mode": f(rss / ref_rss, ".2f") if ref else "",
        "ref_best": "barnacle", "ratio_best": f(secs / float(ref["median_s"]), ".2f") if ref else "",
    })

# ---- archive_command under load ---------------------------------------------------
load = read("load_summary.csv")
pgbr = next((x for x in load if x["config"] == "pgbackrest-async2"), None)
for r in load:
    rows.append({
        "section": "archive-under-load", "corpus": "pgbench inserts", "variant": r["config"], "label": r["label"],
        "tool": "pgbackrest" if r["config"].startswith("pgbackrest") else "barnacle",
        "gzip_level": r["config"][-1] if r["config"][-2:] in ("l2", "l3", "l6") else "6",
        "mode": {"walpush": "sequential", "lookahead2": "look-ahead", "sidecar2": "sidecar",
                 "pgbackrest": "async"}.get(r["config"].split("-")[0], ""),
        "workers": "1" if r["config"].startswith("walpush") else "2", "unit": "segments/s archived",
        "seconds": r["archived_seg_per_s"], "min_s": r["archived_min"], "max_s": r["archived_max"],
        "mib_per_s": f(float(r["archived_seg_per_s"]) * 16, ".1f"), "cpu_s": r["cpu_s_per_segment"],
        "peak_rss_mib": r["peak_rss_mib"], "stored_mib": "", "compression_ratio": "",
        "ref_same_mode": "pgbackrest-async2" if pgbr else "",
        # Throughput: barnacle's over pgBackRest's (above 1: barnacle archives more).
        "ratio_same_mode": f(float(r["archived_seg_per_s"]) / float(pgbr["archived_seg_per_s"]), ".2f") if pgbr else "",
        "rss_ratio_same_mode": "", "ref_best": "", "ratio_best": "",
        "latency_p50_s": r["latency_p50_s"], "latency_p99_s": r["latency_p99_s"],
        "backlog_at_end": r["backlog_at_end"], "drain_seg_per_s": r.get("drain_seg_per_s", ""),
        "wal_seg_per_s": r["wal_seg_per_s"],
    })

fields = ["section", "corpus", "variant", "label", "tool", "gzip_level", "mode", "workers", "unit", "seconds",
          "min_s", "max_s", "mib_per_s", "cpu_s", "peak_rss_mib", "stored_mib", "compression_ratio",
          "ref_same_mode", "ratio_same_mode", "rss_ratio_same_mode", "ref_best", "ratio_best",
          "latency_p50_s", "latency_p99_s", "backlog_at_end", "drain_seg_per_s", "wal_seg_per_s"]
with open(os.path.join(OUT, "compare.csv"), "w", newline="") as fh:
    w = csv.DictWriter(fh, fieldnames=fields, restval="")
    w.writeheader()
    w.writerows(rows)

# ---- targets ------------------------------------------------------------------------


def get(section, corpus, variant):
    return next((r for r in rows if r["section"] == section and r["corpus"].startswith(corpus)
                 and r["variant"] == variant), None)


targets = []


def target(name, goal, section, corpus, other, mine, key="seconds", higher_is_better=False):
    a, b = get(section, corpus, other), get(section, corpus, mine)
    if not a or not b:
        return
    ra, rb = float(a[key]), float(b[key])
    ratio = rb / ra if higher_is_better else ra / rb
    targets.append({"target": name, "corpus": corpus, "other": other, "barnacle": mine,
                    "measured": f"{ratio:.2f}", "goal": f"{goal:g}", "met": "yes" if ratio >= goal else "NO",
                    "shortfall": "" if ratio >= goal else f"{goal / ratio:.2f}x short"})


for corpus in ("easy", "hard"):
    for mine in ("barnacle-sidecar2-l6", "barnacle-lookahead2-l6", "barnacle-sidecar2-l2"):
        target("push >= 3x faster than pgBackRest async (process-max 2)", 3, "wal-push", corpus,
               "pgbackrest-async2", mine)
    for mine in ("barnacle-walpush-l6", "barnacle-sidecar2-l6", "barnacle-walpush-l2"):
        target("push >= 10x faster than barman-cloud-wal-archive --gzip", 10, "wal-push", corpus, "barman", mine)
    for mine in ("barnacle-restore", "barnacle-restore-p4"):
        target("restore >= 5x faster than barman-cloud-wal-restore", 5, "wal-restore", corpus, "barman-restore", mine)
    for mine in ("barnacle-walpush-l2", "barnacle-walpush-l6", "barnacle-sidecar2-l2", "barnacle-sidecar2-l6"):
        target("peak RSS >= 5x lower than Barman's (WAL push)", 5, "wal-push", corpus, "barman", mine,
               key="peak_rss_mib")
    target("peak RSS >= 5x lower than Barman's (WAL restore)", 5, "wal-restore", corpus, "barman-restore",
           "barnacle-restore", key="peak_rss_mib")
for op in ("backup", "restore"):
    target(f"peak RSS >= 5x lower than Barman's (base {op})", 5, f"base-{op}", "pgbench", "barman", "barnacle",
           key="peak_rss_mib")
for mine in ("sidecar2-l2", "sidecar2-l3", "sidecar2-l6"):
    target("sidecar sustains >= 2x pgBackRest async's throughput", 2, "archive-under-load", "pgbench",
           "pgbackrest-async2", mine, key="seconds", higher_is_better=True)
if targets:
    with open(os.path.join(OUT, "targets.csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(targets[0]))
        w.writeheader()
        w.writerows(targets)

# ---- Markdown ---------------------------------------------------------------------
md = []
if meta:
    md.append(f"Machine: {meta.get('machine', '')}. {meta.get('versions', '')}. {meta.get('conditions', '')}")
    md.append("")
md.append("| operation | tool | gzip | easy s/seg | easy MiB/s | hard s/seg | hard MiB/s | peak RSS MiB | "
          "× barnacle (easy / hard) |")
md.append("|---|---|---|---|---|---|---|---|---|")
for section in ("wal-push", "wal-restore"):
    variants = []
    for r in rows:
        if r["section"] == section and r["variant"] not in variants:
            variants.append(r["variant"])
    for v in variants:
        e, h = get(section, "easy", v), get(section, "hard", v)
        any_ = e or h
        rss = max(float(x["peak_rss_mib"]) for x in (e, h) if x)
        bold = any_["tool"] == "barnacle"
        ratio = " / ".join(x["ratio_same_mode"] + "×" if x and x["ratio_same_mode"] else "–" for x in (e, h))
        name = f"**{any_['label']}**" if bold else any_["label"]
        md.append(f"| {section.replace('wal-', 'WAL ')} | {name} | {any_['gzip_level'] or '–'} | "
                  f"{e['seconds'] if e else '–'} | {e['mib_per_s'] if e else '–'} | {h['seconds'] if h else '–'} | "
                  f"{h['mib_per_s'] if h else '–'} | {rss:.1f} | {ratio} |")
for section in ("base-backup", "base-restore"):
    for r in rows:
        if r["section"] == section:
            name = f"**{r['label']}**" if r["tool"] == "barnacle" else r["label"]
            md.append(f"| {section.replace('base-', 'base ')} ({r['corpus']}) | {name} | {r['gzip_level'] or '–'} | "
                      f"{r['seconds']} s | {r['mib_per_s']} | | | {r['peak_rss_mib']} | {r['ratio_same_mode']}× |")
md.append("")
md.append("× barnacle: the tool's time over barnacle's at the same gzip level class and mode "
          "(sequential against `walpush`/`restore`, async against the sidecar with as many workers / `restore -p 4`).")
if load:
    md.append("")
    md.append("| archive_command under pgbench load | WAL written seg/s | archived seg/s during load | "
              "backlog at end | drain seg/s | latency p50 / p99 s | CPU s/seg | peak RSS MiB | × pgBackRest async |")
    md.append("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["section"] == "archive-under-load":
            md.append(f"| {r['label']} | {r['wal_seg_per_s']} | {r['seconds']} ({r['min_s']}–{r['max_s']}) | "
                      f"{r['backlog_at_end']} | {r['drain_seg_per_s']} | {r['latency_p50_s']} / {r['latency_p99_s']} | "
                      f"{r['cpu_s']} | {r['peak_rss_mib']} | {r['ratio_same_mode']}× |")
if targets:
    md.append("")
    md.append("| target | corpus | barnacle | against | measured | goal | met |")
    md.append("|---|---|---|---|---|---|---|")
    for t in targets:
        md.append(f"| {t['target']} | {t['corpus']} | {t['barnacle']} | {t['other']} | {t['measured']}× | "
                  f"{t['goal']}× | {t['met']}{' (' + t['shortfall'] + ')' if t['shortfall'] else ''} |")
with open(os.path.join(OUT, "compare.md"), "w") as fh:
    fh.write("\n".join(md) + "\n")

# ---- console ------------------------------------------------------------------------
hdr = (f"{'section':<19}{'corpus':<17}{'variant':<25}{'gz':>3} {'value':>8} {'unit':<20}{'MiB/s':>7} {'cpu s':>7} "
       f"{'RSS MiB':>8} {'x same':>7} {'x best':>7}  reference")
print(hdr)
print("-" * len(hdr))
for r in rows:
    print(f"{r['section']:<19}{r['corpus'][:16]:<17}{r['variant']:<25}{r['gzip_level']:>3} {r['seconds']:>8} "
          f"{r['unit'][:19]:<20}{r['mib_per_s']:>7} {r['cpu_s']:>7} {r['peak_rss_mib']:>8} "
          f"{r['ratio_same_mode']:>7} {r['ratio_best']:>7}  {r['ref_same_mode']}")
if targets:
    print()
    for t in targets:
        print(f"{t['met']:<4} {t['target']:<58} {t['corpus']:<8} {t['barnacle']:<24} vs {t['other']:<18} "
              f"{t['measured']:>6}x (goal {t['goal']}x) {t['shortfall']}")
print(f"\ncompare: wrote {OUT}/compare.csv, targets.csv and compare.md", file=sys.stderr)

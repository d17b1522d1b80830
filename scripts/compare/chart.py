"""Draws OUT_DIR/compare.png from the CSVs of a comparison run (table.py first).

    python chart.py OUT_DIR      # needs matplotlib (scripts/compare.sh makes its venv)
"""

import csv
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

OUT = sys.argv[1]
COLORS = {"barnacle": "#1f77b4", "barman": "#ff7f0e", "pgbackrest": "#2ca02c"}


def read(name):
    p = os.path.join(OUT, name)
    if not os.path.exists(p):
        return []
    with open(p, newline="") as f:
        return list(csv.DictReader(f))


rows = read("compare.csv")
meta = json.load(open(os.path.join(OUT, "meta.json"))) if os.path.exists(os.path.join(OUT, "meta.json")) else {}


def short(label):
    return (label.replace("barnacle ", "").replace("barman-cloud-", "barman ").replace("pgBackRest ", "pgBR ")
            .replace(", process-max 2", " pm2").replace("--max-parallel", "-P").replace("(default)", "")
            .replace("archive-push ", "push ").replace("archive-get ", "get "))


def hbars(ax, section, title):
    data = [r for r in rows if r["section"] == section]
    variants = []
    for r in data:
        if r["variant"] not in variants:
            variants.append(r["variant"])
    if not variants:
        ax.set_visible(False)
        return
    y = range(len(variants))
    h = 0.38
    xmax = 0
    for i, corpus in enumerate(("easy", "hard")):
        for j, v in enumerate(variants):
            r = next((x for x in data if x["corpus"] == corpus and x["variant"] == v), None)
            if not r:
                continue
            val = float(r["seconds"])
            xmax = max(xmax, val)
            ax.barh(j + (i - 0.5) * h, val, height=h, color=COLORS[r["tool"]], alpha=0.55 if corpus == "easy" else 1.0,
                    edgecolor="black", linewidth=0.3)
            ratio = r["ratio_same_mode"]
            txt = f"{val:.3f}" + (f"  {ratio}×" if r["tool"] != "barnacle" and ratio else "")
            ax.text(val, j + (i - 0.5) * h, " " + txt, va="center", fontsize=6)
    labels = [short(next(r["label"] for r in data if r["variant"] == v)) for v in variants]
    ax.set_yticks(list(y))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, xmax * 1.35)
    ax.set_xlabel("seconds per 16 MiB segment (light: easy corpus, dark: hard); ×: time over barnacle's", fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="x", labelsize=7)


fig, axes = plt.subplots(3, 2, figsize=(15, 15))
hbars(axes[0][0], "wal-push", "WAL push (archive_command, a backlog of one corpus), lower is better")
hbars(axes[0][1], "wal-restore", "WAL restore (restore_command, one corpus), lower is better")

# Base backup and restore.
ax = axes[1][0]
base = [r for r in rows if r["section"].startswith("base-")]
if base:
    ops = ["base-backup", "base-restore"]
    tools = ["barnacle", "barman"]
    for i, op in enumerate(ops):
        for j, t in enumerate(tools):
            r = next((x for x in base if x["section"] == op and x["tool"] == t), None)
            if not r:
                continue
            val = float(r["seconds"])
            ax.bar(i + (j - 0.5) * 0.38, val, width=0.38, color=COLORS[t], edgecolor="black", linewidth=0.3,
                   label=t if i == 0 else None)
            ax.text(i + (j - 0.5) * 0.38, val, f"{val:.2f} s" + (f"\n{r['ratio_same_mode']}×" if t != "barnacle" else ""),
                    ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(ops)))
    ax.set_xticklabels([f"{op.replace('base-', 'base ')}\n({base[0]['corpus']})" for op in ops], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("seconds (log)", fontsize=8)
    ax.legend(fontsize=7)
    ax.set_title("Base backup (gzip) and restore, lower is better", fontsize=9)
else:
    ax.set_visible(False)

# Peak RSS per operation.
ax = axes[1][1]
groups = [
    ("WAL push\n(one call)", "wal-push", {"barnacle": "barnacle-walpush-l6", "barman": "barman", "pgbackrest": "pgbackrest-sync"}),
    ("WAL push\n(sidecar / async)", "wal-push", {"barnacle": "barnacle-sidecar2-l6", "pgbackrest": "pgbackrest-async2"}),
    ("WAL restore", "wal-restore", {"barnacle": "barnacle-restore", "barman": "barman-restore", "pgbackrest": "pgbackrest-get"}),
    ("base backup", "base-backup", {"barnacle": "barnacle", "barman": "barman"}),
    ("base restore", "base-restore", {"barnacle": "barnacle", "barman": "barman"}),
]
shown = False
labelled = set()
for i, (name, section, by_tool) in enumerate(groups):
    for j, (tool, variant) in enumerate(by_tool.items()):
        vals = [float(r["peak_rss_mib"]) for r in rows if r["section"] == section and r["variant"] == variant]
        if not vals:
            continue
        shown = True
        off = {"barnacle": -0.27, "barman": 0.0, "pgbackrest": 0.27}[tool]
        ax.bar(i + off, max(vals), width=0.27, color=COLORS[tool], edgecolor="black", linewidth=0.3,
               label=None if tool in labelled else tool)
        labelled.add(tool)
        ax.text(i + off, max(vals), f"{max(vals):.0f}", ha="center", va="bottom", fontsize=7)
if shown:
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g[0] for g in groups], fontsize=8)
    ax.set_ylabel("MiB (largest process; Barman's backup: all its processes)", fontsize=7)
    ax.legend(fontsize=7)
    ax.set_title("Peak RSS, lower is better", fontsize=9)
else:
    ax.set_visible(False)

# Archive throughput under load.
ax = axes[2][0]
load = [r for r in rows if r["section"] == "archive-under-load"]
if load:
    for j, r in enumerate(load):
        val, wal = float(r["seconds"]), float(r["wal_seg_per_s"])
        ax.barh(j, val, color=COLORS[r["tool"]], edgecolor="black", linewidth=0.3)
        ax.plot([wal], [j], marker="|", color="black", markersize=14)
        ax.text(val, j, f" {val:.2f} seg/s ({r['ratio_same_mode']}× pgBR), backlog {r['backlog_at_end']}, "
                f"p50 {float(r['latency_p50_s']) * 1000:.0f} ms", va="center", fontsize=6.5)
    ax.set_yticks(range(len(load)))
    ax.set_yticklabels([short(r["label"]) for r in load], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, max(max(float(r["seconds"]), float(r["wal_seg_per_s"])) for r in load) * 1.9)
    ax.set_xlabel("16 MiB segments archived per second during pgbench (|: WAL written per second)", fontsize=7)
    ax.set_title("archive_command under pgbench load (PostgreSQL 15), higher is better", fontsize=9)
else:
    ax.set_visible(False)

# Backlog over time, first round.
ax = axes[2][1]
backlog = read("load_backlog.csv")
if backlog:
    labels = {r["variant"]: short(r["label"]) for r in load}
    for cfg in dict.fromkeys(r["config"] for r in backlog):
        pts = [(float(r["t_s"]), int(r["ready"])) for r in backlog if r["config"] == cfg and r["round"] == "0"]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=labels.get(cfg, cfg), linewidth=1.2,
                    linestyle="-" if "pgbackrest" not in cfg else "--")
    ax.set_xlabel("seconds since pgbench started (it stops at the load duration; then the drain)", fontsize=7)
    ax.set_ylabel(".ready files in pg_wal", fontsize=8)
    ax.legend(fontsize=6.5)
    ax.set_title("Archive backlog, first round", fontsize=9)
else:
    ax.set_visible(False)

title = "barnacle vs Barman 3.19 and pgBackRest: same machine, same S3 server, same WAL"
if meta:
    title += f"\n{meta.get('machine', '')}\n{meta.get('versions', '')}"
fig.suptitle(title, fontsize=9)
fig.tight_layout(rect=(0, 0, 1, 0.95))
fig.savefig(os.path.join(OUT, "compare.png"), dpi=110)
print(f"compare: wrote {OUT}/compare.png", file=sys.stderr)

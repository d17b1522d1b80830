"""Writes build/symbol-order.txt for scripts/symbol-order.sh.

  symbol_order.py BINARY ORDER DIR
      DIR holds what the workloads recorded, one file per process:
        cg.WORKLOAD.N      callgrind outputs (every function the process ran);
        faults.WORKLOAD.N  `perf script -F ip,addr,sym,dso --no-demangle` lines of
                           page faults (instruction fetches valgrind cannot see:
                           CPU-specific code such as AVX-512 AES-GCM, SHA-NI).
      WORKLOAD names the kind of process (push, restore, sidecar, base).

Each process maps the binary's code 64 KiB around every page it runs, so what
counts is how many 64 KiB blocks each kind of process touches, not how many
functions. The functions are grouped by the set of workloads that run them (all
of them, push and sidecar only, base restore only, ...), and the groups are laid
out in the order that makes each workload's code span the fewest blocks (a local
search over the at most 15 groups; within a group, the order functions first
ran). Before this, one list in first-run order over all workloads put the
sidecar's code across the whole 3.6 MiB ordered region.
"""

import collections
import os
import re
import subprocess
import sys

BLOCK = 65536
ALIGN = 16


def functions(binary):
    """name -> size of every function symbol of BINARY (0 for assembly labels nm gives no size)."""
    out = subprocess.run(["nm", "-S", "--defined-only", binary], capture_output=True, text=True, check=True).stdout
    sizes = {}
    for p in (line.split() for line in out.splitlines()):
        if len(p) == 4 and p[2] in "tTwW":
            sizes[p[3]] = max(sizes.get(p[3], 0), int(p[1], 16))
        elif len(p) == 3 and p[1] in "tTwW":
            sizes.setdefault(p[2], 0)
    return sizes


def from_callgrind(path, known):
    names, seen = [], set()
    with open(path) as f:
        for line in f:
            m = re.match(r"c?fn=\((\d+)\) (.+)", line)
            if m and m.group(1) not in seen:
                seen.add(m.group(1))
                name = m.group(2).strip()
                if name in known:
                    names.append(name)
    return names


FAULT = re.compile(r"^\s*([0-9a-f]+) (\S+) \((.*?)\)\s+([0-9a-f]+) (\S+) \((.*?)\)")


def from_faults(path, known, binary):
    names = []
    with open(path) as f:
        for line in f:
            m = FAULT.match(line)
            if m and m.group(1) == m.group(4) and m.group(6) == binary:
                sym = m.group(5).split("+")[0]
                if sym in known:
                    names.append(sym)
    return names


def recorded(directory):
    """(kind, workload, path) of DIR's files: callgrind first, in the order they ran."""
    files = []
    for name in os.listdir(directory):
        parts = name.split(".")
        if len(parts) == 3 and parts[0] in ("cg", "faults") and parts[2].isdigit():
            files.append((parts[0] != "cg", int(parts[2]), parts[0], parts[1], os.path.join(directory, name)))
    return [(kind, workload, path) for _, _, kind, workload, path in sorted(files)]


def blocks_touched(layout, sizes, workloads):
    """workload -> number of 64 KiB blocks its groups overlap, for groups laid out in LAYOUT."""
    touched = collections.defaultdict(set)
    offset = 0
    for mask in layout:
        end = offset + sizes[mask]
        for w in workloads:
            if mask & (1 << w):
                touched[w].update(range(offset // BLOCK, (end - 1) // BLOCK + 1))
        offset = end
    return {w: len(touched[w]) for w in workloads}


def best_layout(group_sizes, workloads):
    def cost(layout):
        return sum(blocks_touched(layout, group_sizes, workloads).values())

    # Start from the most shared groups first, then improve by moving one group at a time.
    layout = sorted(group_sizes, key=lambda m: (-bin(m).count("1"), m))
    best = cost(layout)
    improved = True
    while improved:
        improved = False
        for i in range(len(layout)):
            for j in range(len(layout)):
                if i == j:
                    continue
                trial = layout[:i] + layout[i + 1 :]
                trial.insert(j, layout[i])
                c = cost(trial)
                if c < best:
                    layout, best, improved = trial, c, True
    return layout


def main():
    binary, order_path, directory = sys.argv[1:4]
    sizes = functions(binary)
    first_seen, member = [], collections.defaultdict(int)
    workload_names = []
    for kind, workload, path in recorded(directory):
        if workload not in workload_names:
            workload_names.append(workload)
        bit = 1 << workload_names.index(workload)
        found = from_callgrind(path, sizes) if kind == "cg" else from_faults(path, sizes, binary)
        for name in found:
            if name not in member:
                first_seen.append(name)
            member[name] |= bit
    # A function larger than a block (AVX-512 AES-GCM: 332 KiB each) is run in a
    # few places only, and the kernel maps the blocks around those: laid out among
    # the groups it would only push them apart. Such functions go last.
    large = [n for n in first_seen if sizes[n] > BLOCK]
    groups = collections.defaultdict(list)
    for name in first_seen:
        if sizes[name] <= BLOCK:
            groups[member[name]].append(name)
    group_sizes = {m: sum(-(-max(sizes[n], 1) // ALIGN) * ALIGN for n in g) for m, g in groups.items()}
    workloads = range(len(workload_names))
    layout = best_layout(group_sizes, workloads)
    with open(order_path, "w") as f:
        f.write("".join(n + "\n" for m in layout for n in groups[m]))
        f.write("".join(n + "\n" for n in large))
    spans = blocks_touched(layout, group_sizes, workloads)
    summary = ", ".join(f"{workload_names[w]} {spans[w] * BLOCK / 2**20:.1f} MiB" for w in workloads)
    print(
        f"symbol-order: {len(first_seen)} functions in {len(groups)} groups, "
        f"{sum(group_sizes.values()) / 2**20:.1f} MiB and {len(large)} larger than a block after them; "
        f"code each workload maps: {summary}",
        file=sys.stderr,
    )


main()

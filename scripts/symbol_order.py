"""Keeps build/symbol-order.txt for scripts/symbol-order.sh.

  symbol_order.py callgrind BINARY ORDER CALLGRIND_OUT...
      ORDER := the functions of BINARY the callgrind outputs name, in the
      order they first appear (roughly the order they first run).
  symbol_order.py faults BINARY ORDER PERF_SCRIPT_OUTPUT
      appends to ORDER the functions of BINARY where an instruction fetch
      faulted (`perf script -F ip,addr,sym,dso --no-demangle` lines), those
      not in ORDER yet.
"""

import re
import subprocess
import sys


def functions(binary):
    out = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True).stdout
    return {p[2] for p in (line.split() for line in out.splitlines()) if len(p) == 3 and p[1] in "tTwW"}


def from_callgrind(paths, known):
    names = []
    for path in paths:
        ids = {}
        with open(path) as f:
            for line in f:
                m = re.match(r"c?fn=\((\d+)\) (.+)", line)
                if m and m.group(1) not in ids:
                    ids[m.group(1)] = m.group(2).strip()
        names.extend(n for n in ids.values() if n in known)
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


def main():
    mode, binary, order_path = sys.argv[1:4]
    known = functions(binary)
    if mode == "callgrind":
        order, new = [], from_callgrind(sys.argv[4:], known)
    else:
        with open(order_path) as f:
            order = [line.strip() for line in f if line.strip()]
        new = from_faults(sys.argv[4], known, binary)
    seen = set(order)
    added = 0
    for name in new:
        if name not in seen:
            seen.add(name)
            order.append(name)
            added += 1
    with open(order_path, "w") as f:
        f.write("".join(n + "\n" for n in order))
    print(f"symbol-order: {mode}: {added} functions added, {len(order)} in all", file=sys.stderr)


main()

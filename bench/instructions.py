#!/usr/bin/env python3
"""User-space instructions per request of a gantry binary, counted by callgrind.

The CPU figures of bench/run.py move by 5-15% from run to run on a shared machine, which hides a
change worth 2-5%. Instruction counts do not move: this runs gantry under `valgrind
--tool=callgrind` in the how-to's scenario (frontend TLS, mutual TLS to the nginx backend), sends
a small and a large batch of requests, and divides the difference by the difference in requests,
so start-up and the handshakes of both batches cancel out. Kernel time (system calls, loopback
TCP) is not counted: it is the part Gantry's code does not execute.

  bench/instructions.py                         # build/src/gantry, HTTP/2 and keep-alive HTTP/1.1
  bench/instructions.py --gantry /tmp/old/gantry --scenarios h2
"""
import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402
import run  # noqa: E402

SMALL, LARGE = 500, 4500


def load(scenario, port, requests):
    url = f"https://127.0.0.1:{port}/"
    if scenario == "h2":  # as bench/run.py: 5 connections x 10 streams
        cmd = ["h2load", "-c5", "-m10", "-n", str(requests), url]
    else:  # keep-alive HTTP/1.1, 50 connections
        cmd = ["h2load", "--h1", "-c50", "-n", str(requests), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    if f"{requests} succeeded" not in out:
        raise RuntimeError(f"not every request succeeded:\n{out}")


def by_object(path):
    """Instructions per shared object (and Asio's templates apart from Gantry's own code)."""
    text = subprocess.run(["callgrind_annotate", "--threshold=100", path], capture_output=True, text=True,
                          check=True).stdout
    counts = collections.Counter()
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(.*)", line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        name = m.group(2)
        obj = re.search(r"\[([^\]]+)\]\s*$", name)
        where = os.path.basename(obj.group(1)).split(".so")[0] if obj else "gantry"
        if where == "gantry" or "/gantry" in (obj.group(1) if obj else ""):
            where = "gantry (Asio)" if "boost::asio" in name else "gantry"
        counts[where] += int(m.group(1).replace(",", ""))
    return counts


def measure(env, gantry, scenario, workdir):
    """Per-object instruction counts of one batch size, for SMALL and LARGE."""
    results = {}
    for requests in (SMALL, LARGE):
        out = os.path.join(workdir, f"callgrind-{scenario}-{requests}.out")
        wrapper = os.path.join(workdir, "under-callgrind.sh")
        with open(wrapper, "w") as f:
            f.write(f"#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file={out} {gantry} \"$@\"\n")
        os.chmod(wrapper, 0o755)
        harness.GANTRY = wrapper
        proc, port, stop, _ = run.start_gantry(env, 1)
        try:
            load(scenario, port, requests)
        finally:
            stop()
        for _ in range(100):  # callgrind writes its file as the process exits
            if os.path.exists(out):
                break
            time.sleep(0.1)
        results[requests] = by_object(out)
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gantry", default=os.path.join(HERE, "..", "build", "src", "gantry"))
    ap.add_argument("--scenarios", nargs="+", default=["h2", "ka"], choices=["h2", "ka"])
    args = ap.parse_args()
    for tool in ("valgrind", "callgrind_annotate", "h2load"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed (scripts/setup.sh installs it)")
    gantry = os.path.abspath(args.gantry)
    tmp = tempfile.mkdtemp(prefix="gantry-instr-")
    env = run.Env(tmp)
    try:
        for scenario in args.scenarios:
            counts = measure(env, gantry, scenario, tmp)
            per = {k: (counts[LARGE][k] - counts[SMALL].get(k, 0)) / (LARGE - SMALL) for k in counts[LARGE]}
            total = sum(per.values())
            label = "HTTP/2 (5 conns x 10 streams)" if scenario == "h2" else "keep-alive HTTP/1.1 (50 conns)"
            print(f"{label}: {total:,.0f} user-space instructions per request")
            for k, v in sorted(per.items(), key=lambda kv: -kv[1])[:8]:
                if v >= 0.5:
                    print(f"  {k:24s} {v:8,.0f}  {100 * v / total:4.1f}%")
    finally:
        env.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

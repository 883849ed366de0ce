#!/usr/bin/env python3
"""User-space instructions per request of a gantry binary, counted by callgrind.

The CPU figures of bench/run.py move by 5-15% from run to run on a shared machine, which hides a
change worth 2-5%. Instruction counts do not move: this runs gantry under `valgrind
--tool=callgrind` in the how-to's scenario (frontend TLS, mutual TLS to the nginx backend), warms
it up until its backend pool holds as many connections as the load can use, then sends a small and
a large batch of requests (callgrind's counters zeroed before and dumped after each) and divides
the difference by the difference in requests, so the client handshakes of both batches cancel out
and no backend handshake is counted: two runs agree to about 0.1%. Kernel time (system calls, loopback
TCP) is not counted: it is the part Gantry's code does not execute.

  bench/instructions.py                         # build/src/gantry, HTTP/2 and keep-alive HTTP/1.1
  bench/instructions.py --gantry /tmp/old/gantry --scenarios h2
"""
import argparse
import collections
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402
import run  # noqa: E402

SMALL, LARGE = 500, 4500
SMALL_CONNS, LARGE_CONNS = 50, 450


def connections(port, count, ca, resume):
    """`count` new TLS connections with one HTTP/1.0 request each, as `openssl s_time` makes them;
    with `resume`, each offers the session ticket the one before received."""
    ctx = ssl.create_default_context(cafile=ca)
    session = None
    for _ in range(count):
        answer, received, reused = harness.tls_request(port, ctx, b"GET / HTTP/1.0\r\nHost: frontend.com\r\n\r\n",
                                                       session=session)
        if not answer.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"unexpected answer: {answer[:80]!r}")
        if resume:
            if session is not None and not reused:
                raise RuntimeError("the session was not resumed")
            session = received


def saturate(port, count, ca):
    """`count` requests sent on as many TLS connections before any answer is read."""
    ctx = ssl.create_default_context(cafile=ca)
    conns = [ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=60),
                             server_hostname="frontend.com") for _ in range(count)]
    for c in conns:
        c.sendall(b"GET / HTTP/1.1\r\nHost: frontend.com\r\nConnection: close\r\n\r\n")
    for c in conns:
        answer = b""
        while chunk := c.recv(65536):
            answer += chunk
        c.close()
        if not answer.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"unexpected answer: {answer[:80]!r}")


def load(scenario, port, requests, ca):
    url = f"https://127.0.0.1:{port}/"
    if scenario in ("full", "resumed"):
        return connections(port, requests, ca, resume=scenario == "resumed")
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
    total = None
    rows = []
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(.*)", line)
        if m:
            count = int(m.group(1).replace(",", ""))
            if "PROGRAM TOTALS" in line:
                total = count
            else:
                rows.append((count, m.group(2)))
    counts = collections.Counter()
    for count, name in rows:
        # A dump taken while the worker thread runs lists the frames still on its stack (clone,
        # start_thread, the thread's body) with the whole cost under them: no function of the
        # request path comes near half of the total on its own, so such rows are skipped.
        if total and count > total // 2:
            continue
        obj = re.search(r"\[([^\]]+)\]\s*$", name)
        where = os.path.basename(obj.group(1)).split(".so")[0] if obj else "gantry"
        if where == "gantry" or "/gantry" in (obj.group(1) if obj else ""):
            where = "gantry (Asio)" if "boost::asio" in name else "gantry"
        counts[where] += count
    return counts


def sizes(scenario):
    return (SMALL_CONNS, LARGE_CONNS) if scenario in ("full", "resumed") else (SMALL, LARGE)


def measure(env, gantry, scenario, workdir):
    """Per-object instruction counts of the SMALL and the LARGE batch, both run by one gantry process
    after a warm-up batch, so the backend pool is full and start-up is not counted: callgrind's
    counters are zeroed after the warm-up and dumped after each batch."""
    out = os.path.join(workdir, f"callgrind-{scenario}.out")
    wrapper = os.path.join(workdir, "under-callgrind.sh")
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file={out} {gantry} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    harness.GANTRY = wrapper
    proc, port, stop, _ = run.start_gantry(env, 1)

    def control(*args):
        subprocess.run(["callgrind_control", *args, str(proc.pid)], check=True, capture_output=True)

    admin = proc.args[proc.args.index("--admin") + 1]

    def upstream_connections():
        text = urllib.request.urlopen(f"http://{admin}/metrics", timeout=30).read().decode()
        return int(re.search(r"^gantry_upstream_connections_total (\d+)", text, re.M).group(1))

    results = {}
    try:
        small, large = sizes(scenario)
        # Warm-up. Under callgrind the load's connections reach full concurrency slowly and by
        # chance, and a backend handshake counted in one batch and not the other would move the
        # per-request figure by thousands of instructions; so first 50 requests are held in flight
        # at once (the most either load has), which leaves 50 backend connections in the pool.
        saturate(port, 50, env.certs.ca)
        load(scenario, port, small, env.certs.ca)
        opened = upstream_connections()
        control("--zero")
        for n, requests in enumerate((small, large), start=1):
            load(scenario, port, requests, env.certs.ca)
            control(f"--dump=batch-{requests}")
            dumped = f"{out}.{n}"
            for _ in range(100):
                if os.path.exists(dumped):
                    break
                time.sleep(0.1)
            results[requests] = by_object(dumped)
        extra = upstream_connections() - opened
        if extra:
            print(f"  note: {extra} backend connection(s) opened during the measured batches "
                  "(their handshakes are in the figure)")
    finally:
        stop()
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gantry", default=os.path.join(HERE, "..", "build", "src", "gantry"))
    ap.add_argument("--scenarios", nargs="+", default=["h2", "ka"], choices=["h2", "ka", "full", "resumed"])
    ap.add_argument("--keep", action="store_true",
                    help="keep the callgrind files (their folder is printed) for callgrind_annotate")
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
            small, large = sizes(scenario)
            per = {k: (counts[large][k] - counts[small].get(k, 0)) / (large - small) for k in counts[large]}
            total = sum(per.values())
            label = {"h2": "HTTP/2 (5 conns x 10 streams)", "ka": "keep-alive HTTP/1.1 (50 conns)",
                     "full": "new TLS connection, full handshake", "resumed": "new TLS connection, resumed session"}
            unit = "connection" if scenario in ("full", "resumed") else "request"
            print(f"{label[scenario]}: {total:,.0f} user-space instructions per {unit}")
            for k, v in sorted(per.items(), key=lambda kv: -kv[1])[:8]:
                if v >= 0.5:
                    print(f"  {k:24s} {v:8,.0f}  {100 * v / total:4.1f}%")
    finally:
        env.stop()
        if args.keep:
            print(f"callgrind files kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

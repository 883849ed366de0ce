#!/usr/bin/env python3
"""Does Gantry scale with its workers? 1 worker on 1 core against 2 workers on 2 cores.

On a 2-core machine the load generator and the backend cannot run elsewhere, so req/s cannot show
the scaling directly: with 2 workers the gateway shares both cores with them. What this measures
instead is what scaling depends on:
  - gateway CPU us per request with 1 worker (pinned to CPU 0) and with 2 workers (CPU 0-1): if
    workers contended (locks, shared cache lines, one accept queue) the per-request cost would rise;
  - how evenly the requests spread over the 2 workers (CPU time per worker thread, from
    /proc/<pid>/task/*/stat), since SO_REUSEPORT gives each worker its own accept queue;
  - the capacity that follows: requests per second per core = 1e6 / (us per request), times the
    cores the workers use, as a ratio of 2 workers to 1 worker.
The load is wrk with 2 threads, 100 connections, keep-alive HTTPS, the how-to's scenario.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import run  # noqa: E402  (environment, gateway starters, CPU accounting)


def thread_cpu(pid):
    """CPU seconds per thread of `pid`, keyed by thread name and id."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                raw = f.read()
            name = raw[raw.index("(") + 1:raw.rindex(")")]
            fields = raw.rsplit(")", 1)[1].split()
            out[f"{name}/{tid}"] = (int(fields[11]) + int(fields[12])) / run.CLK
        except FileNotFoundError:
            pass
    return out


def one(env, workers, cpus, seconds):
    proc, port, stop, _ = run.start_gantry(env, workers)
    try:
        run.pin(proc.pid, cpus)
        subprocess.run(["wrk", "-t2", "-c100", "-d2s", f"https://127.0.0.1:{port}/"], capture_output=True)
        before, threads_before = run.cpu_seconds(proc.pid), thread_cpu(proc.pid)
        p = subprocess.run(["wrk", "-t2", "-c100", f"-d{seconds}s", f"https://127.0.0.1:{port}/"],
                           capture_output=True, text=True)
        cpu = run.cpu_seconds(proc.pid) - before
        threads_after = thread_cpu(proc.pid)
        reqs = int(re.search(r"(\d+) requests in", p.stdout).group(1))
        busy = sorted((threads_after[t] - threads_before.get(t, 0) for t in threads_after), reverse=True)
        return {"rps": reqs / seconds, "us": cpu / reqs * 1e6, "threads": busy[:workers]}
    finally:
        stop()


def measure(seconds=8, repeat=3):
    """1 worker on CPU 0 against 2 workers on CPU 0-1: medians of req/s and gateway CPU us/request,
    the busiest worker threads' CPU seconds, and the capacity ratio (2 x us1/us2)."""
    tmp = tempfile.mkdtemp(prefix="gantry-scaling-")
    env = run.Env(tmp)
    subprocess.run(["taskset", "-a", "-p", "-c", "0-1", str(env.backend.proc.pid)], capture_output=True)
    try:
        rows = {}
        for workers, cpus in ((1, "0"), (2, "0-1")):
            results = [one(env, workers, cpus, seconds) for _ in range(repeat)]
            rows[workers] = {
                "rps": statistics.median(r["rps"] for r in results),
                "us": statistics.median(r["us"] for r in results),
                "threads": results[len(results) // 2]["threads"],
            }
    finally:
        env.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    one_w, two_w = rows[1], rows[2]
    return {"one": one_w, "two": two_w, "capacity": (2 / two_w["us"]) / (1 / one_w["us"]),
            "share": two_w["threads"][1] / two_w["threads"][0] if len(two_w["threads"]) > 1 and two_w["threads"][0] else 0,
            "seconds": seconds, "repeat": repeat}


def describe(r):
    one_w, two_w = r["one"], r["two"]
    return "\n".join([
        f"median of {r['repeat']} run(s), {r['seconds']}s each; wrk -t2 -c100 keep-alive HTTPS on the same 2 cores",
        f"1 worker on CPU 0:     {one_w['rps']:8.0f} req/s  {one_w['us']:5.1f} gateway CPU us/req",
        f"2 workers on CPU 0-1:  {two_w['rps']:8.0f} req/s  {two_w['us']:5.1f} gateway CPU us/req  "
        f"(busiest worker threads: {', '.join(f'{t:.2f}s' for t in two_w['threads'])}; the second does "
        f"{r['share']:.0%} of the first's work)",
        f"capacity of 2 workers on 2 cores vs 1 worker on 1 core (2 x us1/us2): {r['capacity']:.2f}x",
        "req/s cannot double here: the load generator and the backend take the same two cores."])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print("\n" + describe(measure(args.seconds, args.repeat)))


if __name__ == "__main__":
    main()

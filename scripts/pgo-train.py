#!/usr/bin/env python3
"""The training run of a profile-guided build (scripts/build-pgo.sh): runs an instrumented gantry
in the how-to's scenario, as bench/run.py sets it up (HTTPS in, mutual TLS to an nginx backend that
requires the client certificate), and sends it each kind of load the benchmark measures: HTTP/2,
keep-alive HTTP/1.1, new TLS connections with full and with resumed handshakes, and plain HTTP.
gantry writes its counts when it exits. Every request must succeed: the run doubles as a smoke
test of the instrumented binary, and a profile of error paths would optimise the wrong code.

  scripts/pgo-train.py build-pgo/src/gantry
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402
import instructions  # noqa: E402
import run  # noqa: E402

SECONDS = 3
HANDSHAKES = 300


def h2load(args, url):
    out = subprocess.run(["h2load", *args, "-D", str(SECONDS), url], capture_output=True, text=True).stdout
    m = re.search(r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded", out)
    if not m or int(m.group(2)) == 0 or m.group(1) != m.group(2):
        raise RuntimeError(f"training load {' '.join(args)} {url} did not all succeed:\n{out}")
    return int(m.group(2))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    harness.GANTRY = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="gantry-pgo-")
    env = run.Env(tmp)
    try:
        proc, port, stop, plain_url = run.start_gantry(env, 1)
        try:
            url = f"https://127.0.0.1:{port}/"
            done = {"HTTP/2": h2load(["-c5", "-m10"], url),
                    "keep-alive HTTP/1.1": h2load(["--h1", "-c50"], url),
                    "plain HTTP": h2load(["--h1", "-c50"], plain_url)}
            instructions.connections(port, HANDSHAKES, env.certs.ca, resume=False)
            instructions.connections(port, HANDSHAKES, env.certs.ca, resume=True)
            done["new TLS connections"] = 2 * HANDSHAKES
        finally:
            stop()  # a clean exit: the counts are written then
        if proc.returncode not in (0, None):
            raise RuntimeError(f"the instrumented gantry exited with {proc.returncode}")
        print("pgo-train: " + ", ".join(f"{n} {k}" for k, n in done.items()))
    finally:
        env.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

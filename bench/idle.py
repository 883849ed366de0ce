#!/usr/bin/env python3
"""Memory per idle keep-alive TLS client connection: Gantry in the how-to's scenario, N clients
that each make one request and then stay connected. Prints the gateway's RSS before and after and
the growth per connection. Usage: bench/idle.py [N] (default 10000)."""
import os
import resource
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import harness  # noqa: E402


def measure(n=10000):
    """Holds `n` idle keep-alive TLS client connections to a fresh Gantry; returns its RSS before and
    after (KiB) and the growth per connection."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, n * 2 + 1000)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # gantry inherits it
    with harness.Scenario(start_gantry=False) as s:
        g = s.start_gantry(workers=1)
        assert s.curl("/")[0] == 200
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        time.sleep(0.5)
        before = g.rss_kib()
        conns = []
        request = b"GET / HTTP/1.1\r\nHost: frontend.com\r\n\r\n"
        try:
            for i in range(n):
                c = ctx.wrap_socket(socket.create_connection(("127.0.0.1", g.port)), server_hostname="frontend.com")
                conns.append(c)
                c.sendall(request)
                got = b""
                while not got.endswith(b"Hello World!"):
                    chunk = c.recv(4096)
                    if not chunk:
                        raise RuntimeError(f"connection {i} closed before its answer")
                    got += chunk
            time.sleep(1.0)
            after = g.rss_kib()
        finally:
            for c in conns:
                c.close()
    return {"n": n, "before_kib": before, "after_kib": after, "per_conn_kib": (after - before) / n}


def describe(r):
    return (f"{r['n']} idle keep-alive TLS connections: gateway RSS {r['before_kib']} KiB -> {r['after_kib']} KiB, "
            f"+{r['per_conn_kib']:.1f} KiB per connection")


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    print(describe(measure(n)))


if __name__ == "__main__":
    main()

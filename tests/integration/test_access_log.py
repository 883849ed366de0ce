"""The access log (`gantry run --access-log FILE`): one JSON object per request, with the route,
the backend endpoint, the status and the duration, for HTTP/1.1 and HTTP/2 alike; what a client
sends cannot break a line."""
import json
import os
import signal
import socket
import subprocess
import unittest

from harness import HTTP_GATEWAY, Gantry, Scenario, config_dir, curl, http_backend, service, wait_for

ROUTE = """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app, namespace: apps}
spec:
  parentRefs: [{name: gw}]
  hostnames: [app.example]
  rules:
  - matches: [{path: {type: PathPrefix, value: /gone}}]
    backendRefs: [{name: missing, port: 80}]
  - backendRefs: [{name: app, port: 80}]
"""


def lines(path, n):
    def read():
        with open(path) as f:
            return f.read().splitlines()
    wait_for(lambda: os.path.exists(path) and len(read()) >= n, what=f"{n} log lines")
    return [json.loads(line) for line in read()]


class AccessLogTest(unittest.TestCase):
    def start(self):
        """Gantry on an HTTP listener with ROUTE and an access log; returns (gantry, log, base URL, app port)."""
        app = http_backend(self, lambda path, headers: (200, b"ok"))
        config = config_dir(self, HTTP_GATEWAY, ROUTE, service("app", app))
        log = os.path.join(os.path.dirname(config), "access.log")
        g = Gantry(config, listener_ports=(80,), extra_args=("--access-log", log))
        self.addCleanup(g.stop)
        return g, log, f"http://127.0.0.1:{g.offset + 80}", app

    def test_one_json_line_per_request(self):
        g, log, base, app = self.start()
        self.assertEqual(curl(f"{base}/hello?x=1", "-H", "Host: app.example")[0], 200)
        self.assertEqual(curl(f"{base}/gone", "-H", "Host: app.example")[0], 500)
        self.assertEqual(curl(f"{base}/", "-H", "Host: elsewhere.example")[0], 404)
        # A quote and a backslash in the target, a byte outside ASCII in Host: still one valid
        # JSON line each (sent raw: curl would percent-encode them).
        for raw in (b'GET /odd"\\ HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n',
                    b"GET / HTTP/1.1\r\nHost: \xffodd.example\r\nConnection: close\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", g.offset + 80), timeout=5) as c:
                c.sendall(raw)
                self.assertTrue(c.recv(100).startswith(b"HTTP/1.1 "))
        # Workers write their own batches: lines are whole, but not in request order.
        entries = {(e["host"], e["target"]): e for e in lines(log, 5)}
        ok = entries[("app.example", "/hello?x=1")]
        invalid = entries[("app.example", "/gone")]
        missing = entries[("elsewhere.example", "/")]
        self.assertEqual(entries[("app.example", '/odd"\\')]["status"], 200)
        self.assertEqual(entries[("\u00ffodd.example", "/")]["status"], 404)
        self.assertEqual((ok["method"], ok["target"], ok["host"], ok["status"], ok["protocol"]),
                         ("GET", "/hello?x=1", "app.example", 200, "HTTP/1.1"))
        self.assertEqual(ok["route"], "httproute/apps/app/rule/1/match/0")
        self.assertEqual(ok["upstream"], f"upstream service/apps/app/80 127.0.0.1:{app}")
        self.assertEqual(ok["client"], "127.0.0.1")
        self.assertGreater(ok["duration_ms"], 0)
        self.assertRegex(ok["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual((invalid["status"], invalid["route"], invalid["upstream"]),
                         (500, "httproute/apps/app/rule/0/match/0", ""))
        self.assertEqual((missing["status"], missing["route"]), (404, ""))

    def test_http2_requests_are_logged_as_such(self):
        with Scenario(start_gantry=False) as s:
            log = os.path.join(s.tmp, "access.log")
            g = s.start_gantry(extra_args=("--access-log", log))
            subprocess.run(["curl", "-sk", "--http2", s.url("/"), s.url("/echo")], capture_output=True, check=True)
            entries = sorted(lines(log, 2), key=lambda e: e["target"])
            self.assertEqual([(e["protocol"], e["target"], e["status"]) for e in entries],
                             [("HTTP/2", "/", 200), ("HTTP/2", "/echo", 200)])
            self.assertTrue(entries[0]["upstream"].startswith("upstream service/test-infra/mtls-app/443"))
            self.assertEqual(g.get("gateway", "-A").returncode, 0)

    def test_sighup_reopens_the_file_after_rotation(self):
        g, log, base, app = self.start()
        self.assertEqual(curl(f"{base}/before", "-H", "Host: app.example")[0], 200)
        lines(log, 1)
        os.rename(log, log + ".1")  # what logrotate does
        g.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "access log" in g.logs() and "reopened" in g.logs(), what="the reopen")
        self.assertEqual(curl(f"{base}/after", "-H", "Host: app.example")[0], 200)
        self.assertEqual([e["target"] for e in lines(log, 1)], ["/after"])
        self.assertEqual([e["target"] for e in lines(log + ".1", 1)], ["/before"])
        self.assertIsNone(g.proc.poll())


if __name__ == "__main__":
    unittest.main()

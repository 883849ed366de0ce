"""HTTP/2 from clients (RFC 9113; ALPN h2 on HTTPS listeners) in the how-to's scenario: real curl
and h2load against Gantry, backend mTLS to the real nginx behind it. Requests, local answers,
bodies both ways under flow control, many concurrent streams, cookies, and clients that go away
mid-request."""
import hashlib
import os
import subprocess
import time
import unittest

import h2raw
from harness import Scenario, curl, http_backend, sha256_file, wait_for

SLOW_ROUTE = """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: slow, namespace: test-infra}}
spec:
  parentRefs: [{{name: gateway-01}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /slow}}}}]
    backendRefs: [{{name: slow, port: 80}}]
---
apiVersion: v1
kind: Service
metadata: {{name: slow, namespace: test-infra}}
spec: {{ports: [{{port: 80}}]}}
---
apiVersion: v1
kind: Endpoints
metadata: {{name: slow, namespace: test-infra}}
subsets: [{{addresses: [{{ip: 127.0.0.1}}], ports: [{{port: {port}}}]}}]
"""

EXTRA = ('location /cookie { return 200 "cookie=$http_cookie te=$http_transfer_encoding len=$http_content_length"; }\n'
         # More response fields (80, names 2.4 KB in all) than Gantry frames from its stack arrays.
         'location /many { ' + " ".join(f"add_header X-A-Rather-Long-Field-Name-{i} value-{i};" for i in range(80)) + ' return 200 "many"; }')


def h2(url, *args, timeout=60):
    return curl(url, "--http2", *args, timeout=timeout)


class Http2Test(unittest.TestCase):
    def test_requests_and_local_answers_over_http2(self):
        with Scenario(nginx_extra=EXTRA) as s:
            p = subprocess.run(["curl", "-sk", "-v", "--http2", s.url("/")], capture_output=True, text=True)
            self.assertEqual(p.stdout, "Hello World!")
            self.assertIn("ALPN: server accepted h2", p.stderr)
            self.assertIn("< HTTP/2 200", p.stderr)
            code, body = h2(s.url("/echo"))
            self.assertEqual(code, 200)
            self.assertIn("client=CN=gateway-client-cert", body)  # backend mTLS as for HTTP/1.1
            self.assertIn("proto=https", body)
            # Split cookie fields are joined for HTTP/1.1 (RFC 9113 section 8.2.3).
            code, body = h2(s.url("/cookie"), "-H", "Cookie: a=1", "-H", "Cookie: b=2")
            self.assertEqual((code, body), (200, "cookie=a=1; b=2 te= len="))
            # A response head with 80 fields arrives whole.
            p = subprocess.run(["curl", "-sk", "-D", "-", "--http2", s.url("/many")], capture_output=True, text=True)
            fields = [line for line in p.stdout.splitlines() if line.startswith("x-a-rather-long-field-name-")]
            self.assertEqual(len(fields), 80, p.stdout)
            self.assertIn("x-a-rather-long-field-name-79: value-79", fields)
            self.assertTrue(p.stdout.endswith("many"), p.stdout)
            # A HEAD answer has no body; an empty body ends the stream at once.
            p = subprocess.run(["curl", "-sk", "--http2", "-I", s.url("/")], capture_output=True, text=True)
            self.assertTrue(p.stdout.startswith("HTTP/2 200"), p.stdout)
            code, body = h2(s.url("/files/empty.txt"), "-X", "PUT", "--data-binary", "")
            self.assertEqual((code, body), (201, ""))
            # HTTP/1.1 is still offered to clients that do not speak HTTP/2.
            p = subprocess.run(["curl", "-sk", "-v", "--http1.1", s.url("/")], capture_output=True, text=True)
            self.assertIn("< HTTP/1.1 200", p.stderr)

    def test_bodies_both_ways_under_flow_control(self):
        with Scenario() as s:
            src = os.path.join(s.tmp, "up.bin")
            with open(src, "wb") as f:
                f.write(os.urandom(8 * 1024 * 1024 + 7))  # well over the 256 KiB stream window
            want = sha256_file(src)
            code, _ = h2(s.url("/files/with-length.bin"), "-T", src)
            self.assertIn(code, (201, 204))
            # From stdin: no content-length, so the HTTP/1.1 side gets a chunked body.
            with open(src, "rb") as f:
                p = subprocess.run(["curl", "-sk", "--http2", "-o", "/dev/null", "-w", "%{http_code}", "-T", "-",
                                    s.url("/files/no-length.bin")], stdin=f, capture_output=True, text=True)
            self.assertIn(p.stdout, ("201", "204"))
            dav = os.path.join(s.nginx.dir, "dav", "files")
            self.assertEqual(sha256_file(os.path.join(dav, "with-length.bin")), want)
            self.assertEqual(sha256_file(os.path.join(dav, "no-length.bin")), want)
            p = subprocess.run(["curl", "-sk", "--http2", s.url("/files/with-length.bin")], capture_output=True)
            self.assertEqual(hashlib.sha256(p.stdout).hexdigest(), want)

    def test_many_concurrent_streams(self):
        with Scenario() as s:
            p = subprocess.run(["h2load", "-n", "3000", "-c", "4", "-m", "20", s.url("/")],
                               capture_output=True, text=True, timeout=120)
            self.assertIn("3000 succeeded, 0 failed, 0 errored", p.stdout, p.stdout)
            self.assertIn("status codes: 3000 2xx", p.stdout)
            # Backend connections are pooled: far fewer than the requests.
            metrics = s.gantry.admin_get("/metrics")
            connects = [l for l in metrics.splitlines() if l.startswith("gantry_upstream_connections_total")]
            self.assertLess(float(connects[0].split()[-1]), 200, metrics)

    def test_a_client_that_resets_or_vanishes_mid_request(self):
        with Scenario(start_gantry=False) as s:
            slow = http_backend(self, lambda path, headers: (time.sleep(1.0), (200, b"slow"))[1])
            s.write("slow.yaml", SLOW_ROUTE.format(port=slow))
            g = s.start_gantry()
            for _ in range(5):
                p = subprocess.run(["curl", "-sk", "--http2", "--max-time", "0.2", s.url("/slow")],
                                   capture_output=True, text=True)
                self.assertNotEqual(p.returncode, 0)  # curl gave up first
            time.sleep(1.2)
            self.assertEqual(h2(s.url("/slow"))[0], 200)
            self.assertEqual(h2(s.url("/"))[1], "Hello World!")
            self.assertIsNone(g.proc.poll())
            wait_for(lambda: "gantry_downstream_connections_active 0" in g.admin_get("/metrics"),
                     what="every client connection closed")

    def test_rapid_reset_ends_that_connection_and_others_are_served(self):
        # CVE-2023-44487: open a stream and cancel it at once, over and over.
        with Scenario() as s:
            c = h2raw.Connection(s.gantry.port)
            self.addCleanup(c.close)
            burst = b"".join(c.request_frame(i) + c.frame(h2raw.RST_STREAM, 0, i, bytes([0, 0, 0, h2raw.CANCEL]))
                             for i in range(1, 2 * 1000, 2))
            c.send(burst)  # the gateway may hang up while the burst is still going out
            frames = c.frames_until(lambda f: f[0] == h2raw.GOAWAY)
            self.assertEqual(h2raw.goaway_error(frames), h2raw.ENHANCE_YOUR_CALM)
            self.assertIn("stream resets per second", s.gantry.logs())
            # Everyone else is still served.
            self.assertEqual(h2(s.url("/"))[1], "Hello World!")
            self.assertIsNone(s.gantry.proc.poll())

    def test_sigterm_sends_goaway_and_finishes_the_open_stream(self):
        with Scenario(start_gantry=False) as s:
            slow = http_backend(self, lambda path, headers: (time.sleep(1.0), (200, b"slow answer"))[1])
            s.write("slow.yaml", SLOW_ROUTE.format(port=slow))
            g = s.start_gantry()
            c = h2raw.Connection(g.port)
            self.addCleanup(c.close)
            c.send(c.request_frame(1, "/slow"))
            time.sleep(0.3)  # the request is with the backend
            g.proc.terminate()
            frames = c.frames_until(lambda f: f[0] == h2raw.DATA and f[2] == 1 and f[1] & h2raw.END_STREAM)
            kinds = [f[0] for f in frames]
            self.assertIn(h2raw.GOAWAY, kinds)
            self.assertEqual(h2raw.goaway_error(frames), h2raw.NO_ERROR)
            self.assertLess(kinds.index(h2raw.GOAWAY), kinds.index(h2raw.HEADERS), "GOAWAY comes first")
            body = b"".join(f[3] for f in frames if f[0] == h2raw.DATA and f[2] == 1)
            self.assertEqual(body, b"slow answer")
            self.assertEqual(g.proc.wait(timeout=15), 0)

    def test_the_request_head_is_built_from_the_stream_fields(self):
        # RFC 9113 section 8.3.1: :authority stands for Host; without it, the Host field.
        with Scenario(nginx_extra=EXTRA) as s:
            c = h2raw.Connection(s.gantry.port)
            self.addCleanup(c.close)
            ended = lambda sid: lambda f: f[2] == sid and f[1] & h2raw.END_STREAM and f[0] in (h2raw.DATA, h2raw.HEADERS)
            c.send(c.request_frame(1, "/echo", [("host", "ignored.example")]))
            status, body = h2raw.response(c.frames_until(ended(1)), 1)
            self.assertEqual(status, 200)
            self.assertIn(b"host=frontend.com ", body)
            c.send(c.request_frame(3, "/echo", [("host", "frontend.com")], authority=False))
            status, body = h2raw.response(c.frames_until(ended(3)), 3)
            self.assertEqual(status, 200)
            self.assertIn(b"host=frontend.com ", body)
            # Neither, or two Host fields: the stream is reset (PROTOCOL_ERROR), never served.
            reset = lambda sid: lambda f: f[2] == sid and f[0] in (h2raw.RST_STREAM, h2raw.HEADERS)
            for sid, fields in ((5, []), (7, [("host", "frontend.com"), ("host", "frontend.com")])):
                c.send(c.request_frame(sid, "/echo", fields, authority=False))
                frames = c.frames_until(reset(sid))
                self.assertEqual([(f[0], f[3]) for f in frames if f[2] == sid],
                                 [(h2raw.RST_STREAM, bytes([0, 0, 0, h2raw.PROTOCOL_ERROR]))])
            # The connection is still good.
            c.send(c.request_frame(9, "/cookie", [("cookie", "a=1"), ("cookie", "b=2")]))
            status, body = h2raw.response(c.frames_until(ended(9)), 9)
            self.assertEqual((status, body), (200, b"cookie=a=1; b=2 te= len="))

    def test_an_oversized_header_list_is_refused_and_the_connection_lives_on(self):
        with Scenario() as s:
            c = h2raw.Connection(s.gantry.port)
            self.addCleanup(c.close)
            # 70 KB of headers, over the 60 KB limit (HTTP/1.1 would answer 431): the stream is
            # refused or the connection ended (GOAWAY), never served.
            c.send(c.request_frame(1, "/", [("x-big", "a" * 70000)]))
            frames = c.frames_until(lambda f: f[0] in (h2raw.RST_STREAM, h2raw.GOAWAY) or
                                    (f[0] == h2raw.HEADERS and f[2] == 1))
            kinds = [f[0] for f in frames]
            self.assertNotIn(h2raw.HEADERS, kinds, "an oversized request must not be served")
            self.assertTrue(h2raw.RST_STREAM in kinds or h2raw.GOAWAY in kinds, kinds)
            # A normal request on another connection is served; the gateway is up.
            self.assertEqual(h2(s.url("/"))[1], "Hello World!")
            self.assertIsNone(s.gantry.proc.poll())


if __name__ == "__main__":
    unittest.main()

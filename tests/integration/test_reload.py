"""Configuration changes while serving: edits, additions, deletions, broken files, rotated Secrets."""
import os
import ssl
import subprocess
import threading
import time
import unittest

import harness
from harness import Scenario, curl, wait_for

ROUTE_WITH_PATH = """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: https-route
  namespace: test-infra
spec:
  parentRefs:
  - name: gateway-01
  rules:
  - matches:
    - path: {type: PathPrefix, value: /v2}
    backendRefs:
    - name: mtls-app
      port: 443
"""


class ReloadTest(unittest.TestCase):
    def test_an_edited_manifest_takes_effect_within_two_seconds(self):
        with Scenario() as s:
            self.assertEqual(s.curl("/")[0], 200)
            s.write("httproute.yaml", ROUTE_WITH_PATH)
            # The requirement: an edit takes effect within 2 s.
            wait_for(lambda: s.curl("/")[0] == 404, timeout=2.0, what="the edit to apply")
            self.assertEqual(s.curl("/v2/x")[0], 200)
            route = s.gantry.get("httproute", "https-route", "-n", "test-infra", "-o", "yaml").stdout
            self.assertIn("generation: 2", route)
            self.assertIn("observedGeneration: 2", route)

    def test_tls_sessions_resume_across_reloads(self):
        # Each snapshot builds new TLS contexts; the session ticket keys are the process's, so a
        # client's ticket still resumes after a configuration change (RFC 8446 section 4.6.1).
        with Scenario() as s:
            for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
                ctx = ssl.create_default_context(cafile=s.certs.ca)
                ctx.maximum_version = version
                first = _fetch(s, ctx, None, "/")
                self.assertFalse(first.reused)
                self.assertTrue(_fetch(s, ctx, first.session, "/").reused, version)
            s.write("httproute.yaml", ROUTE_WITH_PATH)
            wait_for(lambda: s.curl("/")[0] == 404, what="the edit to apply")
            for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
                ctx = ssl.create_default_context(cafile=s.certs.ca)
                ctx.maximum_version = version
                before = _fetch(s, ctx, None, "/v2/x")
                s.write("httproute.yaml", ROUTE_WITH_PATH.replace("/v2", "/v3"))
                wait_for(lambda: s.curl("/v2/x")[0] == 404, what="the second edit to apply")
                after = _fetch(s, ctx, before.session, "/v3/x")
                self.assertTrue(after.reused, f"{version}: the ticket issued before the reload did not resume")
                self.assertTrue(after.answer.startswith(b"HTTP/1.1 200"), after.answer[:100])
                s.write("httproute.yaml", ROUTE_WITH_PATH)
                wait_for(lambda: s.curl("/v2/x")[0] == 200, what="the route to come back")

    def test_deleting_and_adding_manifests(self):
        with Scenario() as s:
            # The 2 s promise is checked by the edit test; this one is about what is served.
            self.assertEqual(s.curl("/")[0], 200)
            os.remove(os.path.join(s.config, "httproute.yaml"))
            wait_for(lambda: s.curl("/")[0] == 404, what="the route to go")
            self.assertEqual(s.gantry.get("httproute", "https-route", "-n", "test-infra").returncode, 1)
            s.write("route-again.yaml", ROUTE_WITH_PATH.replace("/v2", "/"))
            wait_for(lambda: s.curl("/")[0] == 200, what="the route to come back")
            self.assertEqual(s.gantry.get("httproute", "https-route", "-n", "test-infra").returncode, 0)

    def test_a_malformed_file_is_reported_by_file_and_line_while_traffic_continues(self):
        with Scenario() as s:
            with open(os.path.join(s.config, "httproute.yaml")) as f:
                good = f.read()
            s.write("httproute.yaml", good.replace("port: 443", "port: 443\n      wieght: 5"))
            wait_for(lambda: s.gantry.status()["errors"], timeout=2.0, what="the error to be reported")
            errors = s.gantry.status()["errors"]
            self.assertEqual(len(errors), 1, errors)
            self.assertRegex(errors[0], r"httproute\.yaml:\d+:\d+: spec\.rules\[0\]\.backendRefs\[0\]\.wieght: unknown field")
            self.assertIn("httproute.yaml:", s.gantry.logs())
            self.assertEqual(s.curl("/"), (200, "Hello World!"))  # the last good config serves
            check = subprocess.run([harness.GANTRY, "check", "--config", s.config], capture_output=True, text=True)
            self.assertEqual(check.returncode, 1)
            self.assertIn("wieght", check.stderr)
            s.write("httproute.yaml", "this: [is not yaml\n")
            wait_for(lambda: "is not yaml" not in str(s.gantry.status()["errors"]) and
                     s.gantry.status()["errors"] != errors, timeout=2.0, what="the new error")
            self.assertEqual(s.curl("/")[0], 200)

    def test_a_rotated_client_certificate_is_used_for_the_next_handshake(self):
        with Scenario() as s:
            self.assertEqual(s.curl("/echo")[0], 200)
            # Rotate to a certificate nginx refuses (no clientAuth usage), then to a good new one.
            bad_crt, bad_key = s.certs.leaf("rotated-bad", cn="gateway-client-cert", eku="serverAuth")
            good_crt, good_key = s.certs.leaf("rotated-good", cn="gateway-client-cert-2", eku="clientAuth")
            secrets = "---\n".join([
                harness.tls_secret("backend.com", s.backend_crt, s.backend_key),
                harness.tls_secret("frontend.com", s.frontend_crt, s.frontend_key),
                harness.ca_secret("ca.bundle", s.certs.ca),
            ])
            s.write("secrets.yaml", secrets + "---\n" + harness.tls_secret("gateway-client-cert", bad_crt, bad_key))
            wait_for(lambda: s.curl("/")[0] == 400, timeout=2.0, what="the refused certificate")
            s.write("secrets.yaml", secrets + "---\n" + harness.tls_secret("gateway-client-cert", good_crt, good_key))
            wait_for(lambda: "CN=gateway-client-cert-2" in s.curl("/echo")[1], timeout=2.0, what="the new certificate")

    def test_in_flight_requests_survive_reloads(self):
        with Scenario() as s:
            big = os.path.join(s.nginx.dir, "dav", "files", "big.bin")
            os.makedirs(os.path.dirname(big), exist_ok=True)
            with open(big, "wb") as f:
                f.write(os.urandom(1 << 20) * 64)  # 64 MiB
            results = {}

            def download():
                results["code"], results["sha"] = _download(s)

            t = threading.Thread(target=download)
            t.start()
            wait_for(lambda: os.path.exists(os.path.join(s.tmp, "download.bin")), what="the download to start")
            for i in range(5):  # a new snapshot (another route) several times during the transfer
                s.write("extra-route.yaml", ROUTE_WITH_PATH.replace("https-route", "extra").replace("/v2", f"/n{i}"))
                time.sleep(0.3)
            t.join(timeout=120)
            self.assertGreaterEqual(s.gantry.logs().count("served:"), 4, "the config really changed")
            self.assertEqual(results.get("code"), 200)
            self.assertEqual(results.get("sha"), harness.sha256_file(big))


class _Fetched:
    def __init__(self, answer, session, reused):
        self.answer, self.session, self.reused = answer, session, reused


def _fetch(s, ctx, session, path):
    """One HTTP/1.0 request on a new TLS connection offering `session`."""
    request = f"GET {path} HTTP/1.0\r\nHost: frontend.com\r\n\r\n".encode()
    return _Fetched(*harness.tls_request(s.gantry.port, ctx, request, session=session))


def _download(s):
    out = os.path.join(s.tmp, "download.bin")
    p = subprocess.run(["curl", "-sS", "--insecure", "--limit-rate", "32M", "-o", out, "-w", "%{http_code}",
                        s.url("/files/big.bin")], capture_output=True, text=True)
    return int(p.stdout or 0), harness.sha256_file(out) if os.path.exists(out) else None


if __name__ == "__main__":
    unittest.main()


class ShutdownTest(unittest.TestCase):
    def test_sigterm_drains_requests_in_flight(self):
        with Scenario() as s:
            big = os.path.join(s.nginx.dir, "dav", "files", "big.bin")
            os.makedirs(os.path.dirname(big), exist_ok=True)
            with open(big, "wb") as f:
                f.write(os.urandom(1 << 20) * 48)  # 48 MiB at 32 MiB/s: about 1.5 s
            results = {}
            t = threading.Thread(target=lambda: results.update(zip(("code", "sha"), _download(s))))
            t.start()
            wait_for(lambda: os.path.exists(os.path.join(s.tmp, "download.bin")), what="the download to start")
            time.sleep(0.3)
            s.gantry.proc.terminate()
            wait_for(lambda: s.curl("/", timeout=2)[0] == 0, timeout=3, what="new connections to be refused")
            t.join(timeout=60)
            self.assertEqual(s.gantry.proc.wait(timeout=15), 0)
            self.assertEqual(results.get("code"), 200)
            self.assertEqual(results.get("sha"), harness.sha256_file(big))

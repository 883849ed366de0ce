"""The how-to's scenario end to end: curl -> gantry (HTTPS) -> nginx enforcing client certificates."""
import os
import re
import subprocess
import unittest

from harness import GANTRY, Scenario, curl, wait_for


class BackendMtlsTest(unittest.TestCase):
    def test_a_request_through_the_gateway_reaches_the_mtls_backend(self):
        with Scenario() as s:
            code, body = s.curl("/")
            self.assertEqual((code, body), (200, "Hello World!"))
            # What the backend saw: our client certificate, SNI backend.com, forwarded headers.
            code, body = s.curl("/echo", "-H", "x-request-id: abc-123", "-H", "x-forwarded-for: 192.0.2.7")
            self.assertEqual(code, 200)
            self.assertIn("client=CN=gateway-client-cert", body)
            self.assertIn("sni=backend.com", body)
            self.assertIn("proto=https", body)
            self.assertIn("rid=abc-123", body)
            self.assertIn("xff=192.0.2.7, 127.0.0.1", body)
            code, body = s.curl("/echo")
            self.assertRegex(body, r"rid=[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
            # The backend connection is pooled: several requests, one upstream TLS handshake per worker at most.
            for _ in range(10):
                self.assertEqual(s.curl("/")[0], 200)
            metrics = s.gantry.admin_get("/metrics")
            connects = int(re.search(r"^gantry_upstream_connections_total (\d+)", metrics, re.M).group(1))
            reuses = int(re.search(r"^gantry_upstream_reuses_total (\d+)", metrics, re.M).group(1))
            self.assertLessEqual(connects, 4, metrics)
            self.assertGreaterEqual(reuses, 8, metrics)

    def test_b_the_backend_really_enforces_client_certificates(self):
        with Scenario() as s:
            code, body = curl(f"https://127.0.0.1:{s.nginx.port}/", "--cacert", s.certs.ca,
                              "--resolve", f"backend.com:{s.nginx.port}:127.0.0.1")
            self.assertEqual(code, 400, body)
            self.assertIn("No required SSL certificate was sent", body)
            # With our client certificate it answers: the refusal above is about the certificate.
            code, body = curl(f"https://backend.com:{s.nginx.port}/", "--cacert", s.certs.ca,
                              "--cert", s.client_crt, "--key", s.client_key,
                              "--resolve", f"backend.com:{s.nginx.port}:127.0.0.1")
            self.assertEqual((code, body), (200, "Hello World!"))

    def test_c_a_wrong_subject_alt_name_is_a_502_that_names_the_mismatch(self):
        with Scenario(subject_alt_name="wrong.example") as s:
            code, body = s.curl("/")
            self.assertEqual(code, 502, body)
            self.assertNotIn("Hello World", body)
            logs = wait_for(lambda: "subjectAltName mismatch" in s.gantry.logs() and s.gantry.logs(),
                            what="the log line")
            self.assertIn("expected wrong.example", logs)

    def test_d_an_expired_backend_certificate_is_a_502_that_says_expired(self):
        with Scenario(backend_start="20200101000000Z", backend_end="20210101000000Z") as s:
            code, body = s.curl("/")
            self.assertEqual(code, 502, body)
            logs = wait_for(lambda: "expired" in s.gantry.logs() and s.gantry.logs(), what="the log line")
            self.assertRegex(logs, r"backend certificate expired on 2021-01-01")

    def test_e_a_client_certificate_without_client_auth_is_refused_and_was_warned_about(self):
        with Scenario(client_eku="serverAuth") as s:
            code, body = s.curl("/")
            self.assertEqual(code, 400, body)
            self.assertIn("The SSL certificate error", body)
            warning = "lacks the clientAuth extended key usage"
            self.assertIn(warning, s.gantry.logs())
            self.assertIn(warning, " ".join(s.gantry.status()["warnings"]))
            check = subprocess.run([GANTRY, "check", "--config", s.config], capture_output=True, text=True)
            self.assertIn(warning, check.stderr)
            self.assertIn("Secret/test-infra/gateway-client-cert", check.stderr)

    def test_a_backend_signed_by_another_ca_is_a_502_unknown_ca(self):
        with Scenario() as s:
            # Point the policy at a CA that did not sign the backend.
            other = s.certs.__class__(os.path.join(s.tmp, "other-ca"))
            import harness
            s.write("ca-other.yaml", harness.ca_secret("other-ca", other.ca))
            with open(os.path.join(s.config, "backendtlspolicy.yaml")) as f:
                policy = f.read()
            s.write("backendtlspolicy.yaml", policy.replace("name: ca.bundle", "name: other-ca"))
            wait_for(lambda: s.curl("/")[0] == 502, what="the new CA to apply")
            self.assertIn("unknown CA", s.gantry.logs())

    def test_an_unusable_policy_never_sends_plaintext(self):
        with Scenario() as s:
            with open(os.path.join(s.config, "backendtlspolicy.yaml")) as f:
                policy = f.read()
            s.write("backendtlspolicy.yaml", policy.replace("name: ca.bundle", "name: no-such-secret"))
            wait_for(lambda: s.curl("/")[0] == 500, what="the broken policy to apply")
            self.assertIn("not sending plaintext", s.gantry.logs())
            out = s.gantry.get("backendtlspolicy", "mtls-app-tls-policy", "-n", "test-infra", "-o", "yaml")
            self.assertIn("Secret test-infra/no-such-secret not found", out.stdout)
            self.assertIn('status: "False"', out.stdout)
            # nginx never saw a plaintext request from us (it would log a 400 for HTTP on HTTPS).
            with open(os.path.join(s.nginx.dir, "logs", "access.log")) as f:
                self.assertNotIn("plain HTTP request was sent to HTTPS port", f.read())

    def test_error_statuses_by_cause(self):
        with Scenario() as s:
            # 404: no route for the path on a route with a path match.
            s.write("extra.yaml", """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: missing-backend, namespace: test-infra}
spec:
  parentRefs: [{name: gateway-01}]
  hostnames: [missing.example]
  rules:
  - backendRefs: [{name: no-such-service, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: no-endpoints, namespace: test-infra}
spec:
  parentRefs: [{name: gateway-01}]
  hostnames: [empty.example]
  rules:
  - matches: [{path: {type: PathPrefix, value: /only}}]
    backendRefs: [{name: empty, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: test-infra}
spec:
  ports: [{port: 80}]
""")
            p = s.gantry.port
            wait_for(lambda: curl(f"https://missing.example:{p}/", resolve_port=p, host="missing.example")[0] == 500,
                     what="the route to apply")
            self.assertEqual(curl(f"https://empty.example:{p}/only", resolve_port=p, host="empty.example")[0], 503)
            self.assertEqual(curl(f"https://empty.example:{p}/other", resolve_port=p, host="empty.example")[0], 404)
            logs = s.gantry.logs()
            self.assertIn("Service test-infra/no-such-service not found", logs)
            self.assertIn("has no ready endpoints", logs)
            out = s.gantry.get("httproute", "missing-backend", "-n", "test-infra", "-o", "yaml").stdout
            self.assertIn("reason: BackendNotFound", out)
            # 502: the backend is down.
            s.nginx.stop()
            code, _ = s.curl("/")
            self.assertEqual(code, 502)
            self.assertRegex(s.gantry.logs(), r"connect to 127\.0\.0\.1:\d+ failed")


if __name__ == "__main__":
    unittest.main()

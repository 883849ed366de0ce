"""The command-line contract: gantry get / check and the admin endpoint, as the how-to shows them."""
import json
import os
import subprocess
import unittest

from harness import GANTRY, Scenario


class CliTest(unittest.TestCase):
    def test_get_prints_what_the_how_to_shows(self):
        with Scenario() as s:
            out = s.gantry.get("gateway", "gateway-01", "-n", "test-infra", "-o", "yaml")
            self.assertEqual(out.returncode, 0, out.stderr)
            # The YAML reads as the how-to prints it...
            for line in ("  addresses:\n  - type: IPAddress\n    value: 127.0.0.1\n",
                         "    message: Valid Gateway\n    observedGeneration: 1\n    reason: Accepted\n"
                         "    status: \"True\"\n    type: Accepted\n",
                         "    name: https-listener\n    supportedKinds:\n    - group: gateway.networking.k8s.io\n"
                         "      kind: HTTPRoute\n"):
                self.assertIn(line, out.stdout)
            # ...and the structure, field by field, from the same data as JSON.
            load = lambda *a: json.loads(s.gantry.get(*a, "-o", "json").stdout)
            gw = load("gateway", "gateway-01", "-n", "test-infra")
            status = gw["status"]
            self.assertEqual(status["addresses"], [{"type": "IPAddress", "value": "127.0.0.1"}])
            self.assertEqual([(c["type"], c["status"], c["reason"], c["message"], c["observedGeneration"])
                              for c in status["conditions"]],
                             [("Accepted", "True", "Accepted", "Valid Gateway", 1),
                              ("Programmed", "True", "Programmed",
                               "Application Gateway For Containers resource has been successfully updated.", 1)])
            listener = status["listeners"][0]
            self.assertEqual(listener["name"], "https-listener")
            self.assertEqual(listener["attachedRoutes"], 1)
            self.assertEqual(listener["supportedKinds"], [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}])
            self.assertEqual([(c["type"], c["message"]) for c in listener["conditions"]],
                             [("ResolvedRefs", ""), ("Accepted", "Listener is accepted"),
                              ("Programmed", "Application Gateway For Containers resource has been successfully updated.")])
            self.assertEqual(gw["metadata"]["generation"], 1)
            self.assertIn("creationTimestamp", gw["metadata"])

            route = load("httproute", "https-route", "-n", "test-infra")
            parent = route["status"]["parents"][0]
            self.assertEqual(parent["controllerName"], "alb.networking.azure.io/alb-controller")
            self.assertEqual(parent["parentRef"], {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                                   "name": "gateway-01", "namespace": "test-infra"})
            self.assertEqual([(c["type"], c["reason"], c["message"]) for c in parent["conditions"]],
                             [("ResolvedRefs", "ResolvedRefs", ""), ("Accepted", "Accepted", "Route is Accepted"),
                              ("Programmed", "Programmed",
                               "Application Gateway For Containers resource has been successfully updated.")])

            policy = load("backendtlspolicy", "mtls-app-tls-policy", "-n", "test-infra")
            self.assertEqual(policy["apiVersion"], "alb.networking.azure.io/v1")
            self.assertEqual([(c["type"], c["status"], c["reason"], c["message"]) for c in policy["status"]["conditions"]],
                             [("Accepted", "True", "Accepted", "Valid BackendTLSPolicy")])

            as_json = json.loads(s.gantry.get("gtw", "gateway-01", "-n", "test-infra", "-o", "json").stdout)
            self.assertEqual(as_json["status"]["addresses"][0]["value"], "127.0.0.1")
            table = s.gantry.get("gateways", "-A").stdout
            self.assertIn("gateway-01", table)
            self.assertIn("PROGRAMMED", table)
            missing = s.gantry.get("gateway", "nope", "-n", "test-infra")
            self.assertEqual(missing.returncode, 1)
            self.assertIn('gateways "nope" not found', missing.stderr)
            secret = s.gantry.get("secret", "gateway-client-cert", "-n", "test-infra", "-o", "yaml").stdout
            self.assertIn("redacted", secret)
            self.assertNotIn("BEGIN", secret)
            self.assertIn("azure-alb-external", s.gantry.get("gatewayclass").stdout)

    def test_admin_endpoints(self):
        with Scenario() as s:
            self.assertEqual(s.gantry.admin_get("/healthz"), "ok\n")
            self.assertEqual(s.gantry.admin_get("/readyz"), "ready\n")
            config = json.loads(s.gantry.admin_get("/config"))
            self.assertEqual(config["listeners"][0]["port"], s.gantry.port)
            self.assertEqual(config["clusters"][0]["tls"]["sni"], "backend.com")
            self.assertNotIn("PRIVATE KEY", s.gantry.admin_get("/config"))
            self.assertIn("gantry_requests_total", s.gantry.admin_get("/metrics"))

    def test_check_prints_statuses_offline_and_fails_when_something_is_not_accepted(self):
        with Scenario(start_gantry=False) as s:
            ok = subprocess.run([GANTRY, "check", "--config", s.config], capture_output=True, text=True)
            self.assertEqual(ok.returncode, 0, ok.stderr)
            self.assertIn("message: Valid Gateway", ok.stdout)
            self.assertIn("message: Valid BackendTLSPolicy", ok.stdout)
            os.remove(os.path.join(s.config, "secrets.yaml"))
            bad = subprocess.run([GANTRY, "check", "--config", s.config, "-o", "json"], capture_output=True, text=True)
            self.assertEqual(bad.returncode, 1)
            doc = json.loads(bad.stdout)
            reasons = {c["reason"] for o in doc["items"] for c in o["status"].get("conditions", [])}
            for o in doc["items"]:
                for l in o["status"].get("listeners", []):
                    reasons |= {c["reason"] for c in l["conditions"]}
            self.assertIn("InvalidCertificateRef", reasons)
            self.assertIn("Secret test-infra/frontend.com not found", bad.stdout)

    def test_bad_command_lines_get_clear_errors(self):
        p = subprocess.run([GANTRY, "run", "--config", "/no/such/dir"], capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("/no/such/dir", p.stderr)
        p = subprocess.run([GANTRY, "get", "widgets", "--admin", "127.0.0.1:1"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn('doesn\'t have a resource type "widgets"', p.stderr)
        p = subprocess.run([GANTRY, "get", "gateway", "--admin", "127.0.0.1:1"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("is `gantry run` running?", p.stderr)


if __name__ == "__main__":
    unittest.main()

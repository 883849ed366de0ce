"""HTTPRoute filters through the real gateway: header modifiers, redirects, URL rewrites."""
import subprocess
import unittest

from harness import Scenario, curl
from test_listeners import endpoints

ROUTES = """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: filters, namespace: test-infra}
spec:
  parentRefs: [{name: gateway-01}]
  hostnames: [filters.example]
  rules:
  - matches: [{path: {type: PathPrefix, value: /hdr}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: X-Set, value: from-gateway}]
        add: [{name: X-Add, value: added}]
        remove: [X-Remove]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{name: X-Backend-Keep, value: replaced}]
        remove: [X-Backend-Remove]
    backendRefs: [{name: plain, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /old}}]
    filters:
    - type: URLRewrite
      urlRewrite:
        hostname: rewritten.example
        path: {type: ReplacePrefixMatch, replacePrefixMatch: /hdr}
    backendRefs: [{name: plain, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /moved}}]
    filters:
    - type: RequestRedirect
      requestRedirect:
        hostname: elsewhere.example
        path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}
        statusCode: 301
  - matches: [{path: {type: Exact, value: /to-http}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {scheme: http}
---
apiVersion: v1
kind: Service
metadata: {name: plain, namespace: test-infra}
spec:
  ports: [{port: 80}]
"""


def headers_of(url, port, host):
    p = subprocess.run(["curl", "-sk", "-D-", "-o/dev/null", "--resolve", f"{host}:{port}:127.0.0.1", url],
                       capture_output=True, text=True)
    return p.stdout.lower()


class FiltersTest(unittest.TestCase):
    def test_header_modifiers_rewrites_and_redirects(self):
        with Scenario(start_gantry=False) as s:
            s.write("filters.yaml", ROUTES + "---\n" + endpoints("plain", s.nginx.http_port))
            g = s.start_gantry()
            p = g.port
            get = lambda path, *a: curl(f"https://filters.example:{p}{path}", *a, resolve_port=p, host="filters.example")
            code, body = get("/hdr?q=1", "-H", "X-Set: from-client", "-H", "X-Remove: secret", "-H", "X-Add: client")
            self.assertEqual(code, 200, body)
            self.assertIn("uri=/hdr?q=1", body)
            self.assertIn("set=from-gateway", body)
            self.assertIn("remove= ", body + " ")
            self.assertRegex(body, r"add=client(, ?added)?")
            hdrs = headers_of(f"https://filters.example:{p}/hdr", p, "filters.example")
            self.assertIn("x-backend-keep: replaced", hdrs)
            self.assertNotIn("x-backend-remove", hdrs)
            # URLRewrite: host and prefix replaced, query kept.
            code, body = get("/old/deeper?x=2")
            self.assertEqual(code, 200, body)
            self.assertIn("uri=/hdr/deeper?x=2", body)
            self.assertIn("host=rewritten.example", body)
            # RequestRedirect: 301 with the new host and path; the port is the listener's (443: omitted).
            hdrs = headers_of(f"https://filters.example:{p}/moved/x?y=1", p, "filters.example")
            self.assertIn("http/1.1 301", hdrs)
            self.assertIn("location: https://elsewhere.example/new/x?y=1", hdrs)
            # scheme http without port: the scheme's well-known port (80: omitted).
            hdrs = headers_of(f"https://filters.example:{p}/to-http", p, "filters.example")
            self.assertIn("http/1.1 302", hdrs)
            self.assertIn("location: http://filters.example/to-http", hdrs)
            route = g.get("httproute", "filters", "-n", "test-infra", "-o", "yaml").stdout
            self.assertIn("reason: Accepted", route)
            self.assertNotIn("PartiallyInvalid", route)


if __name__ == "__main__":
    unittest.main()

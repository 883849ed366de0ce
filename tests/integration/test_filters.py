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
        add: [{name: X-Gateway-Add, value: "yes"}]
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


def headers_of(url, port, host, proto="--http2"):
    p = subprocess.run(["curl", "-sk", proto, "-D-", "-o/dev/null", "--resolve", f"{host}:{port}:127.0.0.1", url],
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
            # The response modifier, over HTTP/1.1 and over HTTP/2 (whose head takes its own path).
            for proto, status in (("--http1.1", "http/1.1 200"), ("--http2", "http/2 200")):
                hdrs = headers_of(f"https://filters.example:{p}/hdr", p, "filters.example", proto)
                self.assertTrue(hdrs.startswith(status), hdrs)
                self.assertIn("x-backend-keep: replaced", hdrs)
                self.assertNotIn("x-backend-remove", hdrs)
                self.assertIn("x-backend-other: kept", hdrs)
                self.assertIn("x-gateway-add: yes", hdrs)
            # URLRewrite: host and prefix replaced, query kept.
            code, body = get("/old/deeper?x=2")
            self.assertEqual(code, 200, body)
            self.assertIn("uri=/hdr/deeper?x=2", body)
            self.assertIn("host=rewritten.example", body)
            # RequestRedirect: 301 with the new host and path; the port is the listener's (443: omitted).
            hdrs = headers_of(f"https://filters.example:{p}/moved/x?y=1", p, "filters.example")
            self.assertRegex(hdrs, r"^http/(1\.1|2) 301")  # curl speaks HTTP/2 when offered
            self.assertIn("location: https://elsewhere.example/new/x?y=1", hdrs)
            # scheme http without port: the scheme's well-known port (80: omitted).
            hdrs = headers_of(f"https://filters.example:{p}/to-http", p, "filters.example")
            self.assertRegex(hdrs, r"^http/(1\.1|2) 302")  # curl speaks HTTP/2 when offered
            self.assertIn("location: http://filters.example/to-http", hdrs)
            route = g.get("httproute", "filters", "-n", "test-infra", "-o", "yaml").stdout
            self.assertIn("reason: Accepted", route)
            self.assertNotIn("PartiallyInvalid", route)


if __name__ == "__main__":
    unittest.main()


CORS_ROUTE = """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: cors, namespace: test-infra}
spec:
  parentRefs: [{name: gateway-01}]
  hostnames: [cors.example]
  rules:
  - filters:
    - type: CORS
      cors:
        allowOrigins: ["https://app.example", "https://*.trusted.example:8443"]
        allowMethods: [GET, PUT]
        allowHeaders: [X-Token]
        exposeHeaders: [X-Backend-Keep]
        allowCredentials: true
        maxAge: 60
    backendRefs: [{name: plain, port: 80}]
"""


class CorsTest(unittest.TestCase):
    def test_preflights_are_answered_by_the_gateway_and_responses_carry_the_headers(self):
        with Scenario(start_gantry=False) as s:
            s.write("cors.yaml", CORS_ROUTE + "---\n" + ROUTES.split("---\n")[1] + "---\n" +
                    endpoints("plain", s.nginx.http_port))
            g = s.start_gantry()
            p = g.port

            def call(method, origin, *extra):
                cmd = ["curl", "-sk", "-D-", "-X", method, "--resolve", f"cors.example:{p}:127.0.0.1",
                       "-H", f"Origin: {origin}", *extra, f"https://cors.example:{p}/hdr"]
                return subprocess.run(cmd, capture_output=True, text=True).stdout.lower()

            pre = call("OPTIONS", "https://app.example", "-H", "Access-Control-Request-Method: PUT",
                       "-H", "Access-Control-Request-Headers: X-Token")
            self.assertRegex(pre, r"^http/(1\.1|2) 200")  # curl speaks HTTP/2 when offered
            self.assertIn("access-control-allow-origin: https://app.example", pre)
            self.assertIn("access-control-allow-credentials: true", pre)
            self.assertIn("access-control-allow-methods: get, put", pre)
            self.assertIn("access-control-allow-headers: x-token", pre)
            self.assertIn("access-control-max-age: 60", pre)
            self.assertNotIn("uri=", pre, "a preflight never reaches the backend")
            # Wildcard host label matches any number of labels; the port must match.
            deep = call("OPTIONS", "https://a.b.trusted.example:8443", "-H", "Access-Control-Request-Method: GET")
            self.assertIn("access-control-allow-origin: https://a.b.trusted.example:8443", deep)
            wrong_port = call("OPTIONS", "https://a.trusted.example", "-H", "Access-Control-Request-Method: GET")
            self.assertNotIn("access-control-allow-origin", wrong_port)
            # An actual request: the backend answers, the gateway adds the CORS headers.
            got = call("GET", "https://app.example")
            self.assertRegex(got, r"^http/(1\.1|2) 200")  # curl speaks HTTP/2 when offered
            self.assertIn("access-control-allow-origin: https://app.example", got)
            self.assertIn("access-control-expose-headers: x-backend-keep", got)
            self.assertIn("uri=/hdr", got)
            other = call("GET", "https://evil.example")
            self.assertRegex(other, r"^http/(1\.1|2) 200")  # curl speaks HTTP/2 when offered
            self.assertNotIn("access-control-allow-origin", other)


class ReferenceGrantTest(unittest.TestCase):
    def test_a_deleted_grant_revokes_access(self):
        import os
        from harness import wait_for
        with Scenario(start_gantry=False) as s:
            s.write("cross.yaml", f"""apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: cross, namespace: test-infra}}
spec:
  parentRefs: [{{name: gateway-01}}]
  hostnames: [cross.example]
  rules:
  - backendRefs: [{{name: plain, namespace: backends, port: 80}}]
---
apiVersion: v1
kind: Service
metadata: {{name: plain, namespace: backends}}
spec:
  ports: [{{port: 80}}]
---
apiVersion: v1
kind: Endpoints
metadata: {{name: plain, namespace: backends}}
subsets:
- addresses: [{{ip: 127.0.0.1}}]
  ports: [{{port: {s.nginx.http_port}}}]
""")
            s.write("grant.yaml", """apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: allow-test-infra, namespace: backends}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: test-infra}]
  to: [{group: "", kind: Service}]
""")
            g = s.start_gantry()
            p = g.port
            get = lambda: curl(f"https://cross.example:{p}/", resolve_port=p, host="cross.example")
            self.assertEqual(get()[0], 200)
            os.remove(os.path.join(s.config, "grant.yaml"))
            wait_for(lambda: get()[0] == 500, timeout=2.0, what="the revoked grant to apply")
            route = g.get("httproute", "cross", "-n", "test-infra", "-o", "yaml").stdout
            self.assertIn("reason: RefNotPermitted", route)


class RetryTest(unittest.TestCase):
    def test_retries_on_listed_codes_up_to_the_attempts(self):
        from test_listeners import endpoints as eps
        from harness import http_backend
        seen = {"n": 0}

        def flaky(path, headers):
            seen["n"] += 1
            return (200 if seen["n"] % 3 == 0 else 500), f"try {seen['n']}".encode()  # fails twice, then succeeds

        port = http_backend(self, flaky)
        with Scenario(start_gantry=False) as s:
            s.write("retry.yaml", """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: retry, namespace: test-infra}
spec:
  parentRefs: [{name: gateway-01}]
  hostnames: [retry.example]
  rules:
  - matches: [{path: {type: PathPrefix, value: /three}}]
    retry: {codes: [500], attempts: 3, backoff: 10ms}
    backendRefs: [{name: flaky, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /two}}]
    retry: {codes: [500], attempts: 2, backoff: 10ms}
    backendRefs: [{name: flaky, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: flaky, namespace: test-infra}
spec:
  ports: [{port: 80}]
---
""" + eps("flaky", port))
            g = s.start_gantry()
            p = g.port
            get = lambda path: curl(f"https://retry.example:{p}{path}", resolve_port=p, host="retry.example")
            self.assertEqual(get("/three"), (200, "try 3"))
            self.assertEqual(seen["n"], 3)
            code, body = get("/two")  # tries 4 and 5 fail: attempts exhausted, the last answer goes out
            self.assertEqual((code, body), (500, "try 5"))
            self.assertIn("retrying GET /three", g.logs())


class MirrorTest(unittest.TestCase):
    def test_requests_are_mirrored_and_the_mirror_answer_is_dropped(self):
        import threading
        import time
        from harness import wait_for
        from test_listeners import endpoints as eps
        from harness import http_backend
        mirrored = []
        release = threading.Event()  # the mirror answers only when the test says so
        finished = []

        def slow_mirror(path, headers):
            mirrored.append((path, headers.get("Host")))
            release.wait(10)
            finished.append(True)
            return 500, b"from the mirror"

        port = http_backend(self, slow_mirror)
        self.addCleanup(release.set)
        with Scenario(start_gantry=False) as s:
            s.write("mirror.yaml", """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mirror, namespace: test-infra}
spec:
  parentRefs: [{name: gateway-01}]
  hostnames: [mirror.example]
  rules:
  - matches: [{path: {type: PathPrefix, value: /all}}]
    filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: shadow, port: 80}}
    backendRefs: [{name: plain, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /none}}]
    filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: shadow, port: 80}, percent: 0}
    backendRefs: [{name: plain, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: shadow, namespace: test-infra}
spec:
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: plain, namespace: test-infra}
spec:
  ports: [{port: 80}]
---
""" + eps("shadow", port) + "---\n" + eps("plain", s.nginx.http_port))
            g = s.start_gantry()
            p = g.port
            get = lambda path: curl(f"https://mirror.example:{p}{path}", resolve_port=p, host="mirror.example")
            code, body = get("/all/x?q=1")
            self.assertEqual(code, 200)
            self.assertIn("plain host=mirror.example path=/all/x", body)
            wait_for(lambda: mirrored, timeout=3.0, what="the mirrored request")
            # The real answer came while the mirror was still holding its answer back.
            self.assertEqual(finished, [], "the real request waited for the mirror")
            release.set()
            self.assertEqual(mirrored[0], ("/all/x?q=1", f"mirror.example:{p}"))
            for _ in range(5):
                self.assertEqual(get("/none")[0], 200)
            time.sleep(0.3)
            self.assertEqual(len(mirrored), 1, "percent 0 mirrors nothing")

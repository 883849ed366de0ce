"""Backend selection through `gantry run` (Gateway API spec 3): weight 0 gets nothing, an invalid
backendRef takes its share of requests as 500s, a rule whose backends are all invalid or that has
no backendRefs answers 500, a Service without ready endpoints answers 503."""
import collections
import subprocess
import unittest

from harness import HTTP_GATEWAY, Gantry, config_dir, http_backend, service, wait_for

CONFIG = """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: backends, namespace: apps}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /split}}}}]
    backendRefs:
    - {{name: live, port: 80, weight: 1}}
    - {{name: missing, port: 80, weight: 1}}
    - {{name: never, port: 80, weight: 0}}
  - matches: [{{path: {{type: PathPrefix, value: /all-invalid}}}}]
    backendRefs: [{{name: missing, port: 80}}, {{name: live, port: 80, kind: Pod, group: ""}}]
  - matches: [{{path: {{type: PathPrefix, value: /no-backends}}}}]
  - matches: [{{path: {{type: PathPrefix, value: /not-ready}}}}]
    backendRefs: [{{name: not-ready, port: 80}}]
---
apiVersion: v1
kind: Service
metadata: {{name: not-ready, namespace: apps}}
spec: {{ports: [{{port: 80}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: not-ready-1, namespace: apps, labels: {{kubernetes.io/service-name: not-ready}}}}
addressType: IPv4
ports: [{{port: {live}}}]
endpoints: [{{addresses: [127.0.0.1], conditions: {{ready: false}}}}]
"""


class BackendsTest(unittest.TestCase):
    def setUp(self):
        self.never_hits = []
        live = http_backend(self, lambda path, headers: (200, b"live"))
        never = http_backend(self, lambda path, headers: (self.never_hits.append(path) or 200, b"never"))
        config = config_dir(self, HTTP_GATEWAY, CONFIG.format(live=live), service("live", live),
                            service("never", never))
        self.g = Gantry(config, listener_ports=(80,))
        self.addCleanup(self.g.stop)
        self.base = f"http://127.0.0.1:{self.g.offset + 80}"

    def codes(self, path, n):
        urls = []
        for _ in range(n):
            urls += ["-o", "/dev/null", self.base + path]
        p = subprocess.run(["curl", "-s", "-w", "%{http_code}\n", *urls],
                           capture_output=True, text=True)
        return collections.Counter(int(c) for c in p.stdout.split())

    def test_an_invalid_backend_takes_its_share_as_500s_and_weight_0_gets_nothing(self):
        codes = self.codes("/split", 200)
        self.assertEqual(sum(codes.values()), 200)
        self.assertEqual(set(codes), {200, 500})
        # Two backends of weight 1, one invalid: half the requests are 500. The binomial standard
        # deviation is 7.1 requests; the tolerance is 4.5 of them.
        self.assertLess(abs(codes[500] - 100), 32, codes)
        self.assertEqual(self.never_hits, [])
        route = self.g.status_of("HTTPRoute", "backends")
        refs = {c["type"]: (c["status"], c["reason"]) for c in route["status"]["parents"][0]["conditions"]}
        self.assertEqual(refs["ResolvedRefs"], ("False", "BackendNotFound"))
        self.assertEqual(refs["Accepted"], ("True", "Accepted"))

    def test_all_invalid_no_backends_and_no_ready_endpoints(self):
        self.assertEqual(self.codes("/all-invalid", 20), {500: 20})
        self.assertEqual(self.codes("/no-backends", 5), {500: 5})
        self.assertEqual(self.codes("/not-ready", 5), {503: 5})
        logs = self.g.logs()
        self.assertIn("has no ready endpoints", logs)
        self.assertIn("no backendRefs", logs)


PER_BACKEND = """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: split, namespace: apps}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - filters:
    - {{type: RequestMirror, requestMirror: {{backendRef: {{name: shadow-all, port: 80}}}}}}
    - {{type: RequestMirror, requestMirror: {{backendRef: {{name: shadow-half, port: 80}}, fraction: {{numerator: 1, denominator: 2}}}}}}
    backendRefs:
    - name: a
      port: 80
      filters: [{{type: RequestHeaderModifier, requestHeaderModifier: {{set: [{{name: X-Picked, value: a}}]}}}}]
    - name: b
      port: 80
      filters: [{{type: RequestHeaderModifier, requestHeaderModifier: {{set: [{{name: X-Picked, value: b}}]}}}}]
"""


class PerBackendFiltersAndMirrorsTest(unittest.TestCase):
    def test_backend_filters_apply_only_to_their_backend_and_mirrors_take_their_share(self):
        seen = collections.Counter()
        a = http_backend(self, lambda path, h: (200, f"a picked={h.get('x-picked')}".encode()))
        b = http_backend(self, lambda path, h: (200, f"b picked={h.get('x-picked')}".encode()))
        shadow_all = http_backend(self, lambda path, h: (seen.update(["all"]), (200, b""))[1])
        shadow_half = http_backend(self, lambda path, h: (seen.update(["half"]), (200, b""))[1])
        config = config_dir(self, HTTP_GATEWAY, PER_BACKEND.format(), service("a", a), service("b", b),
                            service("shadow-all", shadow_all), service("shadow-half", shadow_half))
        g = Gantry(config, listener_ports=(80,))
        self.addCleanup(g.stop)
        urls = []
        for _ in range(200):
            urls += ["-w", "\n", f"http://127.0.0.1:{g.offset + 80}/x"]
        bodies = subprocess.run(["curl", "-s", *urls], capture_output=True, text=True).stdout.split()
        pairs = collections.Counter(bodies[i] + " " + bodies[i + 1] for i in range(0, len(bodies), 2))
        # Each backend's RequestHeaderModifier reached that backend only.
        self.assertEqual(set(pairs), {"a picked=a", "b picked=b"}, pairs)
        self.assertLess(abs(pairs["a picked=a"] - 100), 32, pairs)  # weights 1:1, 4.5 sd
        wait_for(lambda: seen["all"] == 200, what="every request mirrored to shadow-all")
        # fraction 1/2 of 200: standard deviation 7.1, tolerance 4.5 of them.
        self.assertLess(abs(seen["half"] - 100), 32, seen)


if __name__ == "__main__":
    unittest.main()

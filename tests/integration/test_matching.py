"""Request matching through `gantry run` (Gateway API spec 1.2 and 1.3): every match type, and each
precedence tie-break, seen from a backend that is told which rule matched (each rule adds an
X-Rule header with its name)."""
import os
import shutil
import tempfile
import unittest

from harness import HTTP_GATEWAY, Gantry, curl, http_backend, service


def rule(name, match):
    return (f"  - name: {name}\n    matches: [{match}]\n"
            f"    filters: [{{type: RequestHeaderModifier, requestHeaderModifier: {{set: [{{name: X-Rule, value: {name}}}]}}}}]\n"
            f"    backendRefs: [{{name: echo, port: 80}}]\n")


def route(name, rules, created="2029-01-01T00:00:00Z"):
    return (f"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
            f"metadata: {{name: {name}, namespace: apps, creationTimestamp: \"{created}\"}}\n"
            f"spec:\n  parentRefs: [{{name: gw}}]\n  hostnames: [match.example]\n  rules:\n" + "".join(rules))


ROUTES = [
    route("main", [
        rule("root", "{path: {type: PathPrefix, value: /}}"),
        rule("exact", "{path: {type: Exact, value: /exact}}"),
        rule("exact-as-prefix", "{path: {type: PathPrefix, value: /exact}}"),
        rule("prefix-long", "{path: {type: PathPrefix, value: /api/v1}}"),
        rule("prefix-short", "{path: {type: PathPrefix, value: /api}}"),
        rule("method-post", "{path: {type: PathPrefix, value: /m}, method: POST}"),
        rule("m-any", "{path: {type: PathPrefix, value: /m}}"),
        rule("method-get", "{path: {type: Exact, value: /g}, method: GET}"),
        rule("two-headers", "{path: {type: PathPrefix, value: /h}, headers: [{name: version, value: two}, {name: color, value: orange}]}"),
        rule("one-header", "{path: {type: PathPrefix, value: /h}, headers: [{name: version, value: two}]}"),
        rule("query", "{path: {type: PathPrefix, value: /q}, queryParams: [{name: a, value: '1'}]}"),
        rule("q-plain", "{path: {type: PathPrefix, value: /q}}"),
        rule("regex", "{path: {type: RegularExpression, value: '/re/[0-9]+'}}"),
        rule("header-regex", "{path: {type: PathPrefix, value: /hr}, headers: [{name: X-Id, type: RegularExpression, value: '[a-f]+'}]}"),
    ]),
    route("more", [
        rule("query-regex", "{path: {type: PathPrefix, value: /qr}, queryParams: [{name: id, type: RegularExpression, value: '[0-9]{3}'}]}"),
        rule("dup-first", "{path: {type: PathPrefix, value: /dup}}"),
        rule("dup-second", "{path: {type: PathPrefix, value: /dup}}"),
        rule("tie-older", "{path: {type: PathPrefix, value: /tie}}"),
    ]),
    route("younger", [rule("tie-younger", "{path: {type: PathPrefix, value: /tie}}")],
          created="2029-06-01T00:00:00Z"),
    route("beta", [rule("name-beta", "{path: {type: PathPrefix, value: /same-age}}")], created="2029-03-01T00:00:00Z"),
    route("alpha", [rule("name-alpha", "{path: {type: PathPrefix, value: /same-age}}")], created="2029-03-01T00:00:00Z"),
]



class MatchingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="gantry-match-")
        cls.backend_holder = unittest.TestCase()
        port = http_backend(cls.backend_holder, lambda path, headers: (200, headers.get("x-rule", "-").encode()))
        config = os.path.join(cls.tmp, "config")
        os.makedirs(config)
        with open(os.path.join(config, "base.yaml"), "w") as f:
            f.write(HTTP_GATEWAY + "---\n" + service("echo", port))
        for i, r in enumerate(ROUTES):
            with open(os.path.join(config, f"route{i}.yaml"), "w") as f:
                f.write(r)
        cls.g = Gantry(config, listener_ports=(80,))
        cls.url = f"http://127.0.0.1:{cls.g.offset + 80}"

    @classmethod
    def tearDownClass(cls):
        cls.g.stop()
        cls.backend_holder.doCleanups()
        shutil.rmtree(cls.tmp, True)

    def rule_for(self, path, *args, host="match.example"):
        code, body = curl(self.url + path, "-H", f"Host: {host}", *args)
        return body if code == 200 else code

    def test_path_types(self):
        self.assertEqual(self.rule_for("/exact"), "exact")  # Exact beats a PathPrefix of the same length
        self.assertEqual(self.rule_for("/exact/more"), "exact-as-prefix")
        self.assertEqual(self.rule_for("/api/v1/users"), "prefix-long")  # longest prefix
        self.assertEqual(self.rule_for("/api/v2"), "prefix-short")
        self.assertEqual(self.rule_for("/api"), "prefix-short")
        self.assertEqual(self.rule_for("/apix"), "root")  # PathPrefix is element-wise
        self.assertEqual(self.rule_for("/re/123"), "regex")
        self.assertEqual(self.rule_for("/re/12a"), "root")  # RE2 full match

    def test_method_header_and_query_matches(self):
        self.assertEqual(self.rule_for("/m", "-X", "POST", "-d", "x"), "method-post")
        self.assertEqual(self.rule_for("/m"), "m-any")
        self.assertEqual(self.rule_for("/g"), "method-get")
        self.assertEqual(self.rule_for("/g", "-X", "DELETE"), "root")
        self.assertEqual(self.rule_for("/h", "-H", "version: two", "-H", "color: orange"), "two-headers")
        self.assertEqual(self.rule_for("/h", "-H", "Version: two"), "one-header")  # names are case-insensitive
        self.assertEqual(self.rule_for("/h", "-H", "version: three"), "root")
        self.assertEqual(self.rule_for("/q?a=1"), "query")
        self.assertEqual(self.rule_for("/q?a=2"), "q-plain")
        self.assertEqual(self.rule_for("/hr", "-H", "X-Id: beef"), "header-regex")
        self.assertEqual(self.rule_for("/hr", "-H", "X-Id: BEEF"), "root")
        self.assertEqual(self.rule_for("/qr?id=123"), "query-regex")
        self.assertEqual(self.rule_for("/qr?id=1234"), "root")

    def test_tie_breaks(self):
        self.assertEqual(self.rule_for("/tie"), "tie-older")  # oldest route
        self.assertEqual(self.rule_for("/same-age"), "name-alpha")  # then namespace/name
        self.assertEqual(self.rule_for("/dup"), "dup-first")  # then rule order

    def test_no_match_is_404(self):
        self.assertEqual(self.rule_for("/anything", host="other.example"), 404)


if __name__ == "__main__":
    unittest.main()

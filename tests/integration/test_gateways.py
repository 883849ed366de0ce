"""Several Gateways, each on its own addresses (Gateway API spec 5.3, GatewayStaticAddresses), with
routes kept apart; an address this machine does not have (AddressNotUsable); a Gateway whose
parametersRef names a missing ConfigMap (InvalidParameters) is not served."""
import socket
import unittest

from harness import Gantry, config_dir, curl, http_backend, service, wait_for

GATEWAYS = """apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: blue-gw, namespace: apps}
spec:
  gatewayClassName: gantry
  addresses: [{type: IPAddress, value: 127.0.0.2}, {type: IPAddress, value: 127.0.0.4}]
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: green-gw, namespace: apps}
spec:
  gatewayClassName: gantry
  addresses: [{type: IPAddress, value: 127.0.0.3}]
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: by-name, namespace: apps}
spec:
  gatewayClassName: gantry
  addresses: [{type: Hostname, value: localhost}]
  listeners: [{name: http, port: 81, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: elsewhere, namespace: apps}
spec:
  gatewayClassName: gantry
  addresses: [{type: IPAddress, value: 192.0.2.10}]
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: bad-parameters, namespace: apps}
spec:
  gatewayClassName: gantry
  addresses: [{type: IPAddress, value: 127.0.0.5}]
  infrastructure:
    parametersRef: {group: "", kind: ConfigMap, name: no-such-parameters}
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: blue, namespace: apps}
spec:
  parentRefs: [{name: blue-gw}, {name: by-name}, {name: elsewhere}, {name: bad-parameters}]
  rules: [{backendRefs: [{name: blue, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: green, namespace: apps}
spec:
  parentRefs: [{name: green-gw}]
  rules: [{backendRefs: [{name: green, port: 80}]}]
"""


def conditions(obj):
    return {c["type"]: (c["status"], c["reason"]) for c in obj["status"]["conditions"]}


def connect_refused(address, port):
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((address, port)) != 0


class GatewaysTest(unittest.TestCase):
    def setUp(self):
        blue = http_backend(self, lambda path, headers: (200, b"blue " + path.encode()))
        green = http_backend(self, lambda path, headers: (200, b"green " + path.encode()))
        config = config_dir(self, GATEWAYS, service("blue", blue), service("green", green))
        self.g = Gantry(config, listener_ports=(80, 81))
        self.addCleanup(self.g.stop)
        self.http = self.g.offset + 80

    def test_each_gateway_serves_its_own_routes_on_its_own_addresses(self):
        g = self.g
        self.assertEqual(curl(f"http://127.0.0.2:{self.http}/a"), (200, "blue /a"))
        self.assertEqual(curl(f"http://127.0.0.4:{self.http}/b"), (200, "blue /b"))
        self.assertEqual(curl(f"http://127.0.0.3:{self.http}/c"), (200, "green /c"))
        # A Hostname address is bound on what it resolves to.
        self.assertEqual(curl(f"http://127.0.0.1:{g.offset + 81}/d"), (200, "blue /d"))
        # Nothing listens on the pool address for port 80: no Gateway took it.
        self.assertTrue(connect_refused("127.0.0.1", self.http))
        blue = g.status_of("Gateway", "blue-gw")
        self.assertEqual(conditions(blue)["Programmed"], ("True", "Programmed"))
        self.assertEqual(sorted(a["value"] for a in blue["status"]["addresses"]), ["127.0.0.2", "127.0.0.4"])
        self.assertEqual([a["value"] for a in g.status_of("Gateway", "green-gw")["status"]["addresses"]],
                         ["127.0.0.3"])
        self.assertIn("127.0.0.1", [a["value"] for a in g.status_of("Gateway", "by-name")["status"]["addresses"]])

    def test_an_address_not_on_this_machine_is_not_usable(self):
        g = self.g
        wait_for(lambda: conditions(g.status_of("Gateway", "elsewhere"))["Programmed"][1] == "AddressNotUsable",
                 what="AddressNotUsable")
        gw = g.status_of("Gateway", "elsewhere")
        self.assertEqual(conditions(gw)["Programmed"][0], "False")
        self.assertEqual(gw["status"].get("addresses", []), [])
        out = g.get("gateway", "elsewhere", "-n", "apps", "-o", "yaml")
        self.assertIn("reason: AddressNotUsable", out.stdout)
        self.assertIn("192.0.2.10", out.stdout)
        # The other Gateways are untouched by it.
        self.assertEqual(curl(f"http://127.0.0.2:{self.http}/ok"), (200, "blue /ok"))

    def test_a_gateway_with_missing_parameters_is_not_accepted_nor_served(self):
        g = self.g
        gw = g.status_of("Gateway", "bad-parameters")
        self.assertEqual(conditions(gw)["Accepted"], ("False", "InvalidParameters"))
        self.assertEqual(conditions(gw)["Programmed"][0], "False")
        self.assertTrue(connect_refused("127.0.0.5", self.http))
        out = g.get("gateway", "bad-parameters", "-n", "apps", "-o", "yaml")
        self.assertIn("ConfigMap apps/no-such-parameters not found", out.stdout)


if __name__ == "__main__":
    unittest.main()

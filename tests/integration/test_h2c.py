"""Backends with appProtocol kubernetes.io/h2c (GEP-1911): Gantry speaks HTTP/2 with prior knowledge
to them (RFC 9113 section 3.3) while its client speaks HTTP/1.1. The backend is a real nginx with
`listen ... http2` (cleartext), which reports the protocol it served; bodies go both ways through
HTTP/2 flow control (sizes above the windows), with Content-Length and chunked uploads."""
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import unittest

from harness import HTTP_GATEWAY, NGINX, Gantry, config_dir, curl, free_port, service, sha256_file


class H2cTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="gantry-h2c-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        ng = os.path.join(self.tmp, "nginx")
        for d in ("logs", "dav", "tmp"):
            os.makedirs(os.path.join(ng, d))
        self.h2_port = free_port()
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf = os.path.join(ng, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""{user}worker_processes 1;
pid {ng}/nginx.pid;
error_log {ng}/logs/error.log info;
events {{ worker_connections 256; }}
http {{
  access_log {ng}/logs/access.log;
  client_body_temp_path {ng}/tmp;
  server {{
    listen 127.0.0.1:{self.h2_port} http2;
    client_max_body_size 0;
    location / {{ return 200 "proto=$server_protocol method=$request_method uri=$request_uri host=$host xfp=$http_x_forwarded_proto added=$http_x_added"; }}
    location /files/ {{ root {ng}/dav; dav_methods PUT; create_full_put_path on; }}
    location /teapot {{ add_header X-From-Backend yes always; return 418 "short and stout"; }}
  }}
}}
""")
        self.nginx = subprocess.Popen([NGINX, "-p", ng, "-c", conf, "-g", "daemon off;"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        self.addCleanup(self.stop_nginx)
        self.dav = os.path.join(ng, "dav")
        self.access_log = os.path.join(ng, "logs", "access.log")
        config = config_dir(self, HTTP_GATEWAY, """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: grpcish, namespace: apps}
spec:
  parentRefs: [{name: gw}]
  rules:
  - filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {add: [{name: X-Added, value: by-gantry}]}
    backendRefs: [{name: h2-app, port: 80}]
""", service("h2-app", self.h2_port, port_name="h2c", app_protocol="kubernetes.io/h2c"))
        self.g = Gantry(config, listener_ports=(80,))
        self.addCleanup(self.g.stop)
        self.base = f"http://127.0.0.1:{self.g.offset + 80}"

    def stop_nginx(self):
        if self.nginx.poll() is None:
            os.killpg(self.nginx.pid, signal.SIGTERM)
            self.nginx.wait(timeout=10)
        self.nginx.stderr.close()

    def test_requests_reach_the_backend_over_http2(self):
        code, body = curl(f"{self.base}/hello?x=1", "-H", "Host: app.example")
        self.assertEqual(code, 200)
        self.assertEqual(body, "proto=HTTP/2.0 method=GET uri=/hello?x=1 host=app.example xfp=http added=by-gantry")
        code, body = curl(f"{self.base}/teapot", "-i")
        self.assertEqual(code, 418)
        self.assertIn("x-from-backend: yes", body.lower())
        self.assertTrue(body.endswith("short and stout"))
        # Ten requests on one client connection: served, and the backend connection is reused.
        urls = [f"{self.base}/n{i}" for i in range(10)]
        p = subprocess.run(["curl", "-sS", *urls], capture_output=True, text=True)
        self.assertEqual(p.stdout.count("proto=HTTP/2.0"), 10)
        metrics = self.g.admin_get("/metrics")
        reuses = [l for l in metrics.splitlines() if l.startswith("gantry_upstream_reuses")]
        self.assertTrue(reuses and float(reuses[0].split()[-1]) >= 5, metrics)

    def test_bodies_cross_http2_flow_control_both_ways(self):
        src = os.path.join(self.tmp, "upload.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(5 * 1024 * 1024 + 123))
        want = sha256_file(src)
        # Content-Length upload, then chunked upload (curl -T with Transfer-Encoding: chunked).
        code, _ = curl(f"{self.base}/files/a.bin", "-T", src)
        self.assertIn(code, (201, 204))
        code, _ = curl(f"{self.base}/files/b.bin", "-T", src, "-H", "Transfer-Encoding: chunked")
        self.assertIn(code, (201, 204))
        for name in ("a.bin", "b.bin"):
            self.assertEqual(sha256_file(os.path.join(self.dav, "files", name)), want, name)
        # Download through the gateway: the same bytes.
        p = subprocess.run(["curl", "-sS", f"{self.base}/files/a.bin"], capture_output=True)
        self.assertEqual(hashlib.sha256(p.stdout).hexdigest(), want)
        with open(self.access_log) as f:
            log = f.read()
        self.assertIn('"PUT /files/b.bin HTTP/2.0"', log)


if __name__ == "__main__":
    unittest.main()

"""Test harness for Gantry's integration tests: real processes on 127.0.0.1 only.

- Certificates are generated per run with the openssl CLI (a CA "CN=foo" and leaves shaped like
  the how-to's sample, plus the broken variants the tests need).
- The backend is a real nginx with `ssl_verify_client on` (the how-to's default.conf otherwise).
- Gantry is the real binary (GANTRY_BIN), in file mode on a temporary folder.
Every process is started here and stopped by PID.
"""
import base64
import contextlib
import functools
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

GANTRY = os.environ.get("GANTRY_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "src", "gantry")
EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "backend-mtls")


@functools.cache
def sanitized():
    """Whether GANTRY is an AddressSanitizer build (scripts/test.sh runs these tests with one too):
    its memory figures (shadow memory, quarantine) say nothing about Gantry's."""
    return "libasan" in subprocess.run(["ldd", GANTRY], capture_output=True, text=True).stdout

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_offset(listener_ports):
    """A --port-offset under which every listener port in `listener_ports` is free right now."""
    for _ in range(200):
        offset = free_port() - listener_ports[0]
        try:
            socks = []
            for p in listener_ports:
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p + offset))
            return offset
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no free port offset")


def wait_for(predicate, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - the predicate may fail until ready
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


class Certs:
    """A CA and certificates, generated in `dir` with the openssl CLI."""

    def __init__(self, dir):
        self.dir = dir
        os.makedirs(dir, exist_ok=True)
        self._openssl_ca_setup()
        self.ca = self._path("ca.crt")
        run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", self._path("ca.key")])
        run(["openssl", "req", "-x509", "-new", "-key", self._path("ca.key"), "-subj", "/CN=foo",
             "-days", "3650", "-sha256", "-out", self.ca,
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])

    def _path(self, name):
        return os.path.join(self.dir, name)

    def _openssl_ca_setup(self):
        open(self._path("index.txt"), "w").close()
        with open(self._path("serial"), "w") as f:
            f.write("1000\n")
        with open(self._path("ca.cnf"), "w") as f:
            f.write(f"""[ca]
default_ca = local
[local]
dir = {self.dir}
database = {self.dir}/index.txt
serial = {self.dir}/serial
new_certs_dir = {self.dir}
certificate = {self.dir}/ca.crt
private_key = {self.dir}/ca.key
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
""")

    def leaf(self, name, cn=None, sans=None, eku="serverAuth", start=None, end=None):
        """Issues `name`.crt/.key signed by the CA. start/end: openssl YYYYMMDDHHMMSSZ times."""
        cn = cn or name
        sans = sans if sans is not None else [cn]
        key, csr, crt, ext = (self._path(name + s) for s in (".key", ".csr", ".crt", ".ext"))
        run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key])
        run(["openssl", "req", "-new", "-key", key, "-subj", f"/CN={cn}", "-out", csr])
        with open(ext, "w") as f:
            f.write("[v3]\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n")
            f.write(f"extendedKeyUsage={eku}\n")
            if sans:
                f.write("subjectAltName=" + ",".join("DNS:" + s for s in sans) + "\n")
        cmd = ["openssl", "ca", "-batch", "-config", self._path("ca.cnf"), "-in", csr, "-out", crt,
               "-extfile", ext, "-extensions", "v3", "-notext"]
        if start and end:
            cmd += ["-startdate", start, "-enddate", end]
        else:
            cmd += ["-days", "365"]
        run(cmd)
        return crt, key

    @staticmethod
    def read(path):
        with open(path, "rb") as f:
            return f.read()


def tls_secret(name, crt, key, namespace="test-infra"):
    b = lambda p: base64.b64encode(Certs.read(p)).decode()
    return (f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\n"
            f"type: kubernetes.io/tls\ndata:\n  tls.crt: {b(crt)}\n  tls.key: {b(key)}\n")


def ca_secret(name, ca, namespace="test-infra"):
    data = base64.b64encode(Certs.read(ca)).decode()
    return (f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {namespace}\n"
            f"data:\n  ca.crt: {data}\n")


def endpoint_slice(service, port, namespace="test-infra", address="127.0.0.1"):
    return (f"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {service}-local\n"
            f"  namespace: {namespace}\n  labels:\n    kubernetes.io/service-name: {service}\n"
            f"addressType: IPv4\nports:\n- port: {port}\nendpoints:\n- addresses: [{address}]\n")


HTTP_GATEWAY = """apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: apps}
spec:
  gatewayClassName: gantry
  listeners: [{name: http, port: 80, protocol: HTTP}]
"""


def service(name, port, namespace="apps", port_name=None, app_protocol=None):
    """A Service with port 80 and the Endpoints that put it on 127.0.0.1:`port`."""
    spec_port = "{port: 80" + (f", name: {port_name}" if port_name else "") + \
                (f", appProtocol: {app_protocol}" if app_protocol else "") + "}"
    ep_port = "{port: " + str(port) + (f", name: {port_name}" if port_name else "") + "}"
    return (f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {namespace}}}\n"
            f"spec: {{ports: [{spec_port}]}}\n---\n"
            f"apiVersion: v1\nkind: Endpoints\nmetadata: {{name: {name}, namespace: {namespace}}}\n"
            f"subsets: [{{addresses: [{{ip: 127.0.0.1}}], ports: [{ep_port}]}}]\n")


def config_dir(test, *documents):
    """A temporary config folder for one test holding `documents` as one multi-document file;
    removed when the test ends. Returns its path."""
    tmp = tempfile.mkdtemp(prefix="gantry-cfg-")
    test.addCleanup(shutil.rmtree, tmp, True)
    config = os.path.join(tmp, "config")
    os.makedirs(config)
    with open(os.path.join(config, "config.yaml"), "w") as f:
        f.write("---\n".join(d.strip("\n") + "\n" for d in documents))
    return config


class Nginx:
    """A real nginx backend on 127.0.0.1 that enforces client certificates (ssl_verify_client on)."""

    def __init__(self, workdir, cert, key, client_ca, verify_client=True, extra=""):
        self.dir = workdir
        self.port = free_port()
        # Plain-HTTP servers in the same nginx: for backends without a TLS policy and for weights.
        self.http_port, self.blue_port, self.green_port = free_port(), free_port(), free_port()
        os.makedirs(os.path.join(workdir, "logs"), exist_ok=True)
        os.makedirs(os.path.join(workdir, "dav"), exist_ok=True)
        os.makedirs(os.path.join(workdir, "tmp"), exist_ok=True)
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf = f"""{user}worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/logs/error.log info;
events {{ worker_connections 1024; }}
http {{
  access_log {workdir}/logs/access.log;
  client_body_temp_path {workdir}/tmp;
  server {{
    listen 127.0.0.1:{self.port} ssl;
    server_name backend.com;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_client_certificate {client_ca};
    ssl_verify_client {"on" if verify_client else "off"};
    client_max_body_size 0;
    {extra}
    location / {{
      return 200 "Hello World!";
    }}
    location /echo {{
      return 200 "host=$host xff=$http_x_forwarded_for proto=$http_x_forwarded_proto rid=$http_x_request_id sni=$ssl_server_name client=$ssl_client_s_dn";
    }}
    location /files/ {{
      root {workdir}/dav;
      dav_methods PUT;
      create_full_put_path on;
    }}
  }}
  server {{
    listen 127.0.0.1:{self.http_port};
    location / {{ return 200 "plain host=$host path=$uri xfp=$http_x_forwarded_proto"; }}
    location /hdr {{
      add_header X-Backend-Remove gone;
      add_header X-Backend-Keep original;
      add_header X-Backend-Other kept;
      return 200 "uri=$request_uri host=$host add=$http_x_add set=$http_x_set remove=$http_x_remove";
    }}
  }}
  server {{
    listen 127.0.0.1:{self.blue_port};
    location / {{ return 200 "blue"; }}
  }}
  server {{
    listen 127.0.0.1:{self.green_port};
    location / {{ return 200 "green"; }}
  }}
}}
"""
        self.conf = os.path.join(workdir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.proc = subprocess.Popen([NGINX, "-p", workdir, "-c", self.conf, "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        wait_for(lambda: self._open(), what=f"nginx on {self.port}")

    def _open(self):
        if self.proc.poll() is not None:
            raise AssertionError("nginx exited: " + self.proc.stderr.read().decode())
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
            return True

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.proc.stderr.close()


class Gantry:
    """`gantry run` on a config folder; listener port 443 is bound at `self.port`."""

    def __init__(self, config_dir, workers=2, listener_ports=(443, 80), offset=None, extra_args=()):
        self.config_dir = config_dir
        self.log_path = os.path.join(os.path.dirname(config_dir.rstrip("/")), "gantry.log")
        # Tests run in parallel: between free_offset's probe and gantry's bind another test may take
        # the port. Gantry refuses a port someone else listens on, so the later one starts again.
        for attempt in range(5):
            self.offset = offset if offset is not None else free_offset(listener_ports)
            self.port = listener_ports[0] + self.offset
            self.admin = f"127.0.0.1:{free_port()}"
            self.log = open(self.log_path, "w")
            self.proc = subprocess.Popen(
                [GANTRY, "run", "--config", config_dir, "--port-offset", str(self.offset),
                 "--admin", self.admin, "--workers", str(workers), "--address-pool", "127.0.0.1", *extra_args],
                stdout=self.log, stderr=subprocess.STDOUT)
            wait_for(lambda: self.admin_get("/readyz") == "ready\n", what="gantry /readyz")
            taken = f":{self.port} not served"
            if offset is not None or attempt == 4 or not any(taken in p for p in self.status()["dataplane"]):
                break
            self.stop()

    def admin_get(self, path):
        if self.proc.poll() is not None:
            raise AssertionError(f"gantry exited with {self.proc.returncode}: {self.logs()}")
        with urllib.request.urlopen(f"http://{self.admin}{path}", timeout=5) as r:
            return r.read().decode()

    def status(self):
        return json.loads(self.admin_get("/status"))

    def status_of(self, kind, name):
        return [o for o in self.status()["items"] if o["kind"] == kind and o["metadata"]["name"] == name][0]

    def logs(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def rss_kib(self, field="VmRSS"):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def get(self, *args):
        return subprocess.run([GANTRY, "get", *args, "--admin", self.admin], capture_output=True, text=True)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def curl(url, *args, resolve_port=None, host="frontend.com", timeout=30):
    """Runs the real curl; returns (status, body). --insecure as in the how-to."""
    cmd = ["curl", "-sS", "--insecure", "-o", "-", "-w", "\n%{http_code}", "--max-time", str(timeout)]
    if resolve_port:
        cmd += ["--resolve", f"{host}:{resolve_port}:127.0.0.1"]
    cmd += [*args, url]
    p = subprocess.run(cmd, capture_output=True)
    out = p.stdout.decode(errors="replace")
    body, _, code = out.rpartition("\n")
    return int(code or 0), body


def tls_request(port, ctx, request, session=None, ragged_eofs=True, host="frontend.com"):
    """One request (bytes) on a new TLS connection to 127.0.0.1:`port`, offering `session`; reads
    to the end, so a TLS 1.3 ticket sent after the handshake has arrived. With ragged_eofs=False
    an end without close_notify raises ssl.SSLEOFError. Returns (answer, session, reused)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=host, session=session,
                             suppress_ragged_eofs=ragged_eofs) as c:
            c.sendall(request)
            answer = b""
            while chunk := c.recv(65536):
                answer += chunk
            return answer, c.session, c.session_reused


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Scenario(contextlib.ExitStack):
    """The how-to's scenario in a temporary folder: certificates, nginx backend, manifests, gantry."""

    def __init__(self, client_eku="clientAuth", backend_start=None, backend_end=None,
                 subject_alt_name="backend.com", start_gantry=True, nginx_extra=""):
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="gantry-it-")
        self.callback(shutil.rmtree, self.tmp, True)
        self.certs = Certs(os.path.join(self.tmp, "certs"))
        self.backend_crt, self.backend_key = self.certs.leaf("backend.com", start=backend_start, end=backend_end)
        self.frontend_crt, self.frontend_key = self.certs.leaf("frontend.com")
        self.client_crt, self.client_key = self.certs.leaf("gateway-client-cert", eku=client_eku)
        self.nginx = Nginx(os.path.join(self.tmp, "nginx"), self.backend_crt, self.backend_key, self.certs.ca,
                           extra=nginx_extra)
        self.callback(self.nginx.stop)
        self.config = os.path.join(self.tmp, "config")
        os.makedirs(self.config)
        for name in ("gateway.yaml", "httproute.yaml", "deployment.yaml"):
            shutil.copy(os.path.join(EXAMPLES, name), self.config)
        with open(os.path.join(EXAMPLES, "backendtlspolicy.yaml")) as f:
            policy = f.read().replace("subjectAltName: backend.com", f"subjectAltName: {subject_alt_name}")
        self.write("backendtlspolicy.yaml", policy)
        self.write("secrets.yaml", "---\n".join([
            tls_secret("backend.com", self.backend_crt, self.backend_key),
            tls_secret("frontend.com", self.frontend_crt, self.frontend_key),
            tls_secret("gateway-client-cert", self.client_crt, self.client_key),
            ca_secret("ca.bundle", self.certs.ca),
        ]))
        self.write("endpointslice.yaml", endpoint_slice("mtls-app", self.nginx.port))
        self.gantry = None
        if start_gantry:
            self.start_gantry()

    def __exit__(self, *exc):
        if exc[0] is not None and self.gantry is not None:
            # A failed test shows what gantry said: the log usually explains a 404, 502 or timeout.
            tail = self.gantry.logs().splitlines()[-40:]
            print("\n--- gantry log (last 40 lines) ---\n" + "\n".join(tail), file=sys.stderr)
        return super().__exit__(*exc)

    def start_gantry(self, **kw):
        self.gantry = Gantry(self.config, **kw)
        self.callback(self.gantry.stop)
        return self.gantry

    def write(self, name, content):
        path = os.path.join(self.config, name)
        tmp = path + ".tmp~"  # not a manifest name: ignored until renamed into place
        with open(tmp, "w") as f:
            f.write(content)
        os.replace(tmp, path)

    def url(self, path="/"):
        return f"https://127.0.0.1:{self.gantry.port}{path}"

    def curl(self, path="/", *args, **kw):
        return curl(self.url(path), *args, **kw)


def http_backend(test, respond):
    """A programmable plain-HTTP backend on 127.0.0.1 for one test: `respond(path, headers)` returns
    (status, body bytes). Stopped when the test ends. Returns the port."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802 - the stdlib's name
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            status, body = respond(self.path, self.headers)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET  # noqa: N815

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    test.addCleanup(server.server_close)
    test.addCleanup(server.shutdown)
    return server.server_address[1]

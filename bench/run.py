#!/usr/bin/env python3
"""Side-by-side benchmark: Gantry, nginx and HAProxy as the gateway of the how-to's scenario.

Same backend (nginx enforcing client certificates on 127.0.0.1), same certificates (ECDSA P-256),
same load. The gateway is pinned to CPU 0, the load generator and the backend to CPU 1 (on a
2-core machine). For each gateway it measures:
  - keep-alive HTTP/1.1 over HTTPS: wrk, 50 connections -> req/s, p50/p99, gateway CPU us/request
  - HTTP/2 over HTTPS (ALPN h2): h2load, 5 connections x 10 streams -> req/s, gateway CPU us/request
  - a new TLS connection per request, full handshake: `openssl s_time -new`
  - a new TLS connection per request, resumed session: `openssl s_time -reuse`
  - peak RSS of the gateway's process tree (VmHWM summed)
  - plain HTTP keep-alive: wrk to an HTTP listener in front of a plain nginx backend
Gateway CPU time comes from /proc/<pid>/stat (utime+stime) of the gateway's process tree.
Beside them runs the floor (bench/floor/tls_relay: TLS in, mutual TLS out, no HTTP), in the
keep-alive and plain rows: what any gateway must pay per request on this machine; and floor+http
(bench/floor/http_relay: the same relay doing Gantry's HTTP work with Gantry's functions and
nothing else of Gantry): what Gantry would cost with an event loop that cost nothing.
Medians over --repeat runs. Prints one table with Gantry's ratio to each peer and to the floor.
bench/run.sh measures the profile-guided build (build-pgo/src/gantry); GANTRY_BIN names another.
"""
import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import harness  # noqa: E402  (certificates, nginx backend, gantry runner)

CLK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
GW_CPU = "0"
LOAD_CPU = "1" if NCPU > 1 else "0"


def tree_pids(pid):
    pids = [pid]
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    except FileNotFoundError:
        out = []
    for child in out:
        pids += tree_pids(int(child))
    return pids


def cpu_split(pid):
    """(user, system) CPU seconds of the process tree."""
    user = system = 0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
        except FileNotFoundError:
            pass
    return user / CLK, system / CLK


def cpu_seconds(pid):
    return sum(cpu_split(pid))


def peak_rss_kib(pid):
    total = 0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def pin(pid, cpu):
    for p in tree_pids(pid):
        subprocess.run(["taskset", "-a", "-p", "-c", cpu, str(p)], capture_output=True)


def wait_port(port):
    harness.wait_for(lambda: subprocess.run(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"],
                                            capture_output=True).returncode == 0, what=f"port {port}")


class Env:
    def __init__(self, tmp):
        self.tmp = tmp
        self.certs = harness.Certs(os.path.join(tmp, "certs"))
        self.backend_crt, self.backend_key = self.certs.leaf("backend.com")
        self.frontend_crt, self.frontend_key = self.certs.leaf("frontend.com")
        self.client_crt, self.client_key = self.certs.leaf("gateway-client-cert", eku="clientAuth")
        # keepalive_requests raised: nginx's default (1000) would close every gateway's pooled
        # connection each 1000 requests and put a backend handshake into the per-request figures.
        self.backend = harness.Nginx(os.path.join(tmp, "backend"), self.backend_crt, self.backend_key, self.certs.ca,
                                     extra="keepalive_requests 1000000;")
        pin(self.backend.proc.pid, LOAD_CPU)
        self.plain_backend_port, self.plain_backend = start_plain_backend(os.path.join(tmp, "plain-backend"))
        pin(self.plain_backend.pid, LOAD_CPU)

    def stop(self):
        self.backend.stop()
        os.killpg(self.plain_backend.pid, signal.SIGTERM)
        self.plain_backend.wait()


def start_nginx(d, workers, http_block, port):
    """nginx in `d` with `workers` worker processes and `http_block` inside http {}; returns once
    `port` accepts connections."""
    os.makedirs(os.path.join(d, "logs"), exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(f"""{user}worker_processes {workers};
pid {d}/nginx.pid;
error_log {d}/logs/error.log error;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;  # the default (1000) would close busy client connections, h2 ones too
{http_block}
}}
""")
    p = subprocess.Popen([harness.NGINX, "-p", d, "-c", os.path.join(d, "nginx.conf"), "-g", "daemon off;"],
                         start_new_session=True)
    wait_port(port)
    return p


def start_plain_backend(d):
    """nginx answering "Hello World!" over plain HTTP: the backend of the plain scenario."""
    port = harness.free_port()
    p = start_nginx(d, 1, f'  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "Hello World!"; }} }}', port)
    return port, p


def gantry_config(env):
    """The folder Gantry serves: the how-to's manifests, their Secrets and endpoints, and a plain
    HTTP Gateway for the plain row."""
    cfg = os.path.join(env.tmp, "gantry-config")
    if os.path.isdir(cfg):
        return cfg
    os.makedirs(cfg)
    for n in ("gateway.yaml", "httproute.yaml", "backendtlspolicy.yaml", "deployment.yaml"):
        shutil.copy(os.path.join(harness.EXAMPLES, n), cfg)
    with open(os.path.join(cfg, "secrets.yaml"), "w") as f:
        f.write("---\n".join([harness.tls_secret("frontend.com", env.frontend_crt, env.frontend_key),
                              harness.tls_secret("gateway-client-cert", env.client_crt, env.client_key),
                              harness.ca_secret("ca.bundle", env.certs.ca)]))
    with open(os.path.join(cfg, "endpointslice.yaml"), "w") as f:
        f.write(harness.endpoint_slice("mtls-app", env.backend.port))
    # The plain scenario: a Gateway of its own with an HTTP listener (on 127.0.0.2, since the
    # how-to's Gateway takes 127.0.0.1 from the address pool), routed to the plain backend.
    with open(os.path.join(cfg, "plain.yaml"), "w") as f:
        f.write(f"""apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: plain, namespace: bench}}
spec:
  gatewayClassName: gantry
  addresses: [{{type: IPAddress, value: 127.0.0.2}}]
  listeners: [{{name: http, port: 80, protocol: HTTP}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: plain, namespace: bench}}
spec:
  parentRefs: [{{name: plain}}]
  rules: [{{backendRefs: [{{name: plain-app, port: 80}}]}}]
---
""" + harness.service("plain-app", env.plain_backend_port, namespace="bench"))
    return cfg


def start_gantry(env, workers):
    g = harness.Gantry(gantry_config(env), workers=workers)
    g.log.close()
    return g.proc, g.port, g.stop, f"http://127.0.0.2:{g.offset + 80}/"


def start_nginx_gateway(env, workers):
    port = harness.free_port()
    plain_port = harness.free_port()
    block = f"""  # Both servers' locations inherit these.
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
  proxy_set_header X-Forwarded-Proto $scheme;
  upstream mtls_app {{ server 127.0.0.1:{env.backend.port}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port} ssl http2;
    ssl_certificate {env.frontend_crt};
    ssl_certificate_key {env.frontend_key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    location / {{
      proxy_pass https://mtls_app;
      proxy_ssl_certificate {env.client_crt};
      proxy_ssl_certificate_key {env.client_key};
      proxy_ssl_trusted_certificate {env.certs.ca};
      proxy_ssl_verify on;
      proxy_ssl_name backend.com;
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;
    }}
  }}
  upstream plain_app {{ server 127.0.0.1:{env.plain_backend_port}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{plain_port};
    location / {{
      proxy_pass http://plain_app;
    }}
  }}"""
    p = start_nginx(os.path.join(env.tmp, "nginx-gw"), workers, block, port)
    return p, port, lambda: (os.killpg(p.pid, signal.SIGTERM), p.wait()), f"http://127.0.0.1:{plain_port}/"


def start_haproxy(env, workers):
    port = harness.free_port()
    plain_port = harness.free_port()
    d = os.path.join(env.tmp, "haproxy")
    os.makedirs(d, exist_ok=True)
    fe = os.path.join(d, "frontend.pem")
    cl = os.path.join(d, "client.pem")
    for out, parts in ((fe, (env.frontend_crt, env.frontend_key)), (cl, (env.client_crt, env.client_key))):
        with open(out, "wb") as f:
            for part in parts:
                f.write(harness.Certs.read(part))
    conf = f"""global
  nbthread {workers}
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 60s
  option forwardfor
frontend fe
  bind 127.0.0.1:{port} ssl crt {fe} alpn h2,http/1.1
  http-request set-header X-Forwarded-Proto https
  default_backend be
backend be
  http-reuse always
  server app 127.0.0.1:{env.backend.port} ssl crt {cl} ca-file {env.certs.ca} verify required sni str(backend.com) verifyhost backend.com
frontend fe_plain
  bind 127.0.0.1:{plain_port}
  default_backend be_plain
backend be_plain
  http-reuse always
  server plain 127.0.0.1:{env.plain_backend_port}
"""
    cfgp = os.path.join(d, "haproxy.cfg")
    with open(cfgp, "w") as f:
        f.write(conf)
    check = subprocess.run(["haproxy", "-c", "-f", cfgp], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError("haproxy rejects its configuration:\n" + check.stdout + check.stderr)
    p = subprocess.Popen(["haproxy", "-f", cfgp, "-db"], stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "haproxy.log"), "w"),
                         start_new_session=True)
    try:
        wait_port(port)
    except AssertionError:
        p.kill()
        with open(os.path.join(d, "haproxy.log")) as f:
            raise RuntimeError("haproxy did not start:\n" + f.read())
    return p, port, lambda: (os.killpg(p.pid, signal.SIGTERM), p.wait()), f"http://127.0.0.1:{plain_port}/"


def start_floor(env, workers, http=False):
    """bench/floor/tls_relay: TLS in, mutual TLS out, no HTTP (the floor of the keep-alive rows).
    With `http`, bench/floor/http_relay: the same relay doing Gantry's HTTP work on each message
    with Gantry's functions, and nothing else of Gantry (floor+http)."""
    # tls_relay from the plain build (a profile-guided tree has no counts for it, only the flags);
    # http_relay from the tree of the gantry measured, so that Gantry's HTTP functions in it are
    # compiled as they are in gantry (with the profile, when that is build-pgo).
    if http:
        tree = os.path.join(os.path.dirname(os.path.abspath(harness.GANTRY)), "..")
        relay = os.environ.get("FLOOR_HTTP_BIN") or os.path.join(tree, "bench", "floor", "http_relay")
    else:
        relay = os.environ.get("FLOOR_BIN") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                            "build", "bench", "floor", "tls_relay")
    if not os.path.exists(relay):
        raise RuntimeError(f"{relay} is missing: build the project first (scripts/test.sh or cmake --build build)")
    port, plain_port = harness.free_port(), harness.free_port()
    extra = ["--http", gantry_config(env), "--port-offset", "0"] if http else []
    p = subprocess.Popen([relay, "--listen", f"127.0.0.1:{port}", "--backend", f"127.0.0.1:{env.backend.port}",
                          "--cert", env.frontend_crt, "--key", env.frontend_key,
                          "--client-cert", env.client_crt, "--client-key", env.client_key,
                          "--ca", env.certs.ca, "--sni", "backend.com",
                          "--plain-listen", f"127.0.0.1:{plain_port}",
                          "--plain-backend", f"127.0.0.1:{env.plain_backend_port}"] + extra, start_new_session=True)
    wait_port(port)
    return p, port, lambda: (p.terminate(), p.wait()), f"http://127.0.0.1:{plain_port}/"


# The floor relays bytes and knows no HTTP: it has no HTTP/2, and `s_time` sends HTTP/1.0, after
# which the backend closes, so without HTTP-aware pooling its handshake rows would not compare.
FLOOR_SCENARIOS = {"ka", "plain"}


def parse_latency(text, label):
    m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)", text, re.M)
    if not m:
        return float("nan")
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v


def wrk_run(port, pid, seconds, conns, url=None):
    before = cpu_seconds(pid)
    user_before = cpu_split(pid)[0]
    p = subprocess.run(["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency",
                        url or f"https://127.0.0.1:{port}/"], capture_output=True, text=True)
    cpu = cpu_seconds(pid) - before
    user = cpu_split(pid)[0] - user_before
    m = re.search(r"(\d+) requests in", p.stdout)
    if not m:
        raise RuntimeError(f"wrk failed against port {port}:\n{p.stdout}\n{p.stderr}")
    reqs = int(m.group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", p.stdout)
    socket_errors = re.search(r"Socket errors: (.*)", p.stdout)
    return {"rps": reqs / seconds, "p50": parse_latency(p.stdout, "50"), "p99": parse_latency(p.stdout, "99"),
            "us_per_req": cpu / max(reqs, 1) * 1e6, "user_us_per_req": user / max(reqs, 1) * 1e6,
            "errors": int(errors.group(1)) if errors else 0, "socket_errors": socket_errors.group(1) if socket_errors else ""}


def h2load_run(port, pid, seconds, conns=5, streams=10):
    before = cpu_seconds(pid)
    user_before = cpu_split(pid)[0]
    p = subprocess.run(["taskset", "-c", LOAD_CPU, "h2load", "-c", str(conns), "-m", str(streams), "-D", str(seconds),
                        f"https://127.0.0.1:{port}/"], capture_output=True, text=True)
    cpu = cpu_seconds(pid) - before
    user = cpu_split(pid)[0] - user_before
    m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", p.stdout)
    if not m:
        raise RuntimeError(f"h2load failed against port {port}:\n{p.stdout}\n{p.stderr}")
    done, ok = int(m.group(1)), int(m.group(2))
    proto = re.search(r"Application protocol: (\S+)", p.stdout)
    return {"rps": done / seconds, "us_per_req": cpu / max(done, 1) * 1e6,
            "user_us_per_req": user / max(done, 1) * 1e6, "errors": done - ok,
            "proto": proto.group(1) if proto else "?"}


def s_time_run(port, pid, seconds, reuse):
    user0, sys0 = cpu_split(pid)
    p = subprocess.run(["taskset", "-c", LOAD_CPU, "openssl", "s_time", "-connect", f"127.0.0.1:{port}",
                        "-www", "/", "-time", str(seconds), "-reuse" if reuse else "-new"],
                       capture_output=True, text=True)
    user1, sys1 = cpu_split(pid)
    m = re.search(r"(\d+) connections in ([\d.]+)s", p.stdout)
    conns = max(int(m.group(1)) if m else 0, 1)
    return {"conns": conns, "us_per_req": (user1 - user0 + sys1 - sys0) / conns * 1e6,
            "user_us_per_req": (user1 - user0) / conns * 1e6}


def run_once(name, starter, env, args):
    scenarios = [s for s in args.scenarios if not name.startswith("floor") or s in FLOOR_SCENARIOS]
    proc, port, stop, plain_url = starter(env, args.workers)
    try:
        pin(proc.pid, GW_CPU)
        assert harness.curl(f"https://127.0.0.1:{port}/")[1] == "Hello World!", f"{name} does not proxy"
        assert harness.curl(plain_url)[1] == "Hello World!", f"{name} does not proxy plain HTTP"
        wrk_run(port, proc.pid, 2, args.connections)  # warm-up
        out = {}
        if "ka" in scenarios:
            out["ka"] = wrk_run(port, proc.pid, args.seconds, args.connections)
            out["rss"] = peak_rss_kib(proc.pid)
        if "h2" in scenarios:
            out["h2"] = h2load_run(port, proc.pid, args.seconds)
            if out["h2"]["proto"] != "h2":
                raise RuntimeError(f"{name} did not negotiate h2 (got {out['h2']['proto']})")
        if "full" in scenarios:
            out["full"] = s_time_run(port, proc.pid, args.seconds, reuse=False)
        if "resumed" in scenarios:
            out["resumed"] = s_time_run(port, proc.pid, args.seconds, reuse=True)
        if "plain" in scenarios:
            wrk_run(port, proc.pid, 1, args.connections, url=plain_url)  # warm-up
            out["plain"] = wrk_run(port, proc.pid, args.seconds, args.connections, url=plain_url)
        return out
    finally:
        stop()


def summarize(results):
    """Medians over the runs of one gateway, keyed "<scenario>_<figure>" (errors: the worst run)."""
    med = lambda f: statistics.median(f(r) for r in results)
    row = {}
    for sc in ("ka", "h2", "full", "resumed", "plain"):  # CPU per request (or connection), split
        if sc not in results[0]:
            continue
        row.update({f"{sc}_us": med(lambda r: r[sc]["us_per_req"]),
                    f"{sc}_user_us": med(lambda r: r[sc]["user_us_per_req"]),
                    f"{sc}_sys_us": med(lambda r: r[sc]["us_per_req"] - r[sc]["user_us_per_req"])})
        if sc in ("full", "resumed"):
            continue
        # The load-generator scenarios: req/s, errors, latency.
        row.update({f"{sc}_rps": med(lambda r: r[sc]["rps"]), f"{sc}_errors": max(r[sc]["errors"] for r in results)})
        for q in ("p50", "p99"):
            if q in results[0][sc]:
                row[f"{sc}_{q}"] = med(lambda r: r[sc][q])
    if "rss" in results[0]:
        row["rss_mib"] = med(lambda r: r["rss"]) / 1024
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--workers", type=int, default=1, help="gateway workers/threads (pinned to one CPU)")
    ap.add_argument("--only", nargs="*", default=["gantry", "nginx", "haproxy", "floor", "floor+http"],
                    help="gateways to run: gantry, nginx, haproxy, floor (bench/floor/tls_relay, "
                         "a TLS relay without HTTP) and floor+http (bench/floor/http_relay: the relay "
                         "doing Gantry's HTTP work with Gantry's functions, no event loop of Gantry's); "
                         "the two floors in the keep-alive and plain rows only")
    ap.add_argument("--scenarios", nargs="*", default=["ka", "h2", "full", "resumed", "plain", "scaling", "idle"],
                    help="ka (keep-alive, with peak RSS), h2, full (handshake), resumed, "
                         "plain (HTTP listener to a plain backend, keep-alive); and for Gantry alone: "
                         "scaling (bench/scaling.py: 2 workers on 2 cores against 1 on 1) and "
                         "idle (bench/idle.py: memory per idle TLS connection, 10,000 held)")
    args = ap.parse_args()
    per_gateway = [s for s in args.scenarios if s in ("ka", "h2", "full", "resumed", "plain")]
    rows, results = {}, {}
    if per_gateway:
        tmp = tempfile.mkdtemp(prefix="gantry-bench-")
        env = Env(tmp)
        try:
            starters = {"gantry": start_gantry, "nginx": start_nginx_gateway, "haproxy": start_haproxy,
                        "floor": start_floor, "floor+http": lambda env, w: start_floor(env, w, http=True)}
            # Round-robin over the gateways (gantry, nginx, haproxy, gantry, ...) so that a slow drift
            # of the machine touches all of them alike.
            results = {name: [] for name in args.only}
            for rep in range(args.repeat):
                for name in args.only:
                    print(f"run {rep + 1}/{args.repeat}: {name} ...", file=sys.stderr, flush=True)
                    results[name].append(run_once(name, starters[name], env, args))
            rows = {name: summarize(r) for name, r in results.items()}
        finally:
            env.stop()
            shutil.rmtree(tmp, ignore_errors=True)
    alone = []  # Gantry-only measurements, printed after the table
    if "gantry" in args.only and "scaling" in args.scenarios:
        import scaling  # noqa: E402  (bench/scaling.py)
        print("scaling: 1 worker against 2 ...", file=sys.stderr, flush=True)
        alone.append(scaling.describe(scaling.measure(args.seconds, args.repeat)))
    if "gantry" in args.only and "idle" in args.scenarios:
        import idle  # noqa: E402  (bench/idle.py)
        print("idle: 10,000 TLS connections ...", file=sys.stderr, flush=True)
        alone.append(idle.describe(idle.measure(10000)))
    if rows:
        print_table(args, rows, results)
    if alone:
        print(f"\ngantry alone ({os.path.relpath(harness.GANTRY)}):")
        for text in alone:
            print("  " + text.replace("\n", "\n  "))


def print_table(args, rows, results):
    metrics = [("keep-alive req/s", "ka_rps", "{:.0f}"), ("keep-alive p50 ms", "ka_p50", "{:.2f}"),
               ("keep-alive p99 ms", "ka_p99", "{:.2f}"), ("keep-alive gateway CPU us/req", "ka_us", "{:.1f}"),
               ("  of which user space", "ka_user_us", "{:.1f}"), ("  of which kernel", "ka_sys_us", "{:.1f}"),
               ("keep-alive non-2xx", "ka_errors", "{:d}"),
               ("HTTP/2 (5 conns x 10 streams) req/s", "h2_rps", "{:.0f}"),
               ("HTTP/2 gateway CPU us/req", "h2_us", "{:.1f}"),
               ("  of which user space", "h2_user_us", "{:.1f}"), ("  of which kernel", "h2_sys_us", "{:.1f}"),
               ("HTTP/2 failed requests", "h2_errors", "{:d}"),
               ("full handshake gateway CPU us/conn", "full_us", "{:.0f}"),
               ("  of which user space", "full_user_us", "{:.0f}"), ("  of which kernel", "full_sys_us", "{:.0f}"),
               ("resumed session gateway CPU us/conn", "resumed_us", "{:.0f}"),
               ("  of which user space", "resumed_user_us", "{:.0f}"), ("  of which kernel", "resumed_sys_us", "{:.0f}"),
               ("peak RSS MiB (process tree)", "rss_mib", "{:.1f}"),
               ("plain HTTP keep-alive req/s", "plain_rps", "{:.0f}"),
               ("plain HTTP keep-alive p99 ms", "plain_p99", "{:.2f}"),
               ("plain HTTP gateway CPU us/req", "plain_us", "{:.1f}"),
               ("  of which user space", "plain_user_us", "{:.1f}"), ("  of which kernel", "plain_sys_us", "{:.1f}"),
               ("plain HTTP non-2xx", "plain_errors", "{:d}")]
    names = list(rows)
    peers = [n for n in names if n != "gantry"]
    header = ["metric"] + names + [f"gantry/{p}" for p in peers if "gantry" in rows]
    print(f"\nmedian of {args.repeat} run(s), {args.seconds}s each, {args.connections} connections, "
          f"gateway on CPU {GW_CPU} with {args.workers} worker(s), load + backend on CPU {LOAD_CPU}")
    if "gantry" in rows:
        print(f"gantry: {os.path.relpath(harness.GANTRY)}")
    table = [header]
    for label, key, fmt in metrics:
        if not any(key in rows[n] for n in names):
            continue
        row = [label] + [fmt.format(rows[n][key]) if key in rows[n] else "-" for n in names]
        if "gantry" in rows:
            for p in peers:
                base = rows[p].get(key)
                ok = base and key in rows["gantry"]
                row.append(f"{rows['gantry'][key] / base:.2f}" if ok else "-")
        table.append(row)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    if args.repeat > 1:
        # How far apart the runs of one gateway were: a ratio closer to 1.00 than this is parity.
        print("\nrun-to-run spread of the CPU rows ((max - min) / median, per gateway):")
        cpu_rows = [("keep-alive", "ka"), ("HTTP/2", "h2"), ("full handshake", "full"), ("resumed", "resumed"),
                    ("plain HTTP", "plain")]
        for label, key in cpu_rows:
            if not any(key in results[n][0] for n in names):
                continue
            parts = []
            for n in names:
                if key not in results[n][0]:
                    continue
                vals = [r[key]["us_per_req"] for r in results[n]]
                parts.append(f"{n} {(max(vals) - min(vals)) / statistics.median(vals) * 100:.0f}%")
            print(f"  {label}: " + ", ".join(parts))
        if "gantry" in results and peers:
            # Gantry against each peer round by round (they ran minutes apart, so a drift of the
            # machine between rounds cancels): the median and the range of those ratios.
            print("\nCPU ratio gantry/peer taken in each round, median [lowest - highest]:")
            for label, key in cpu_rows:
                if key not in results["gantry"][0]:
                    continue
                parts = []
                for p in peers:
                    if key not in results[p][0]:
                        continue
                    ratios = [g[key]["us_per_req"] / q[key]["us_per_req"]
                              for g, q in zip(results["gantry"], results[p])]
                    parts.append(f"{p} {statistics.median(ratios):.2f} [{min(ratios):.2f} - {max(ratios):.2f}]")
                print(f"  {label}: " + ", ".join(parts))


if __name__ == "__main__":
    main()

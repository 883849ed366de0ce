"""WebSocket through Gantry (GEP-1911 appProtocol kubernetes.io/ws and wss; RFC 6455): the Upgrade
is passed to the backend, the 101 comes back, and then frames flow both ways — over a plain HTTP
listener to a ws backend, and over the how-to's HTTPS listener and backend mTLS (nginx, which
enforces the client certificate, proxies /ws on to the WebSocket server). Other Upgrade tokens are
not passed on."""
import base64
import hashlib
import os
import socket
import socketserver
import ssl
import struct
import threading
import unittest
from pathlib import Path

from harness import HTTP_GATEWAY, Gantry, Scenario, config_dir, service, wait_for

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key):
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def read_exactly(f, n):
    out = b""
    while len(out) < n:
        chunk = f.read(n - len(out))
        if not chunk:
            raise EOFError(f"connection closed after {len(out)} of {n} bytes")
        out += chunk
    return out


def read_frame(f):
    """One frame from a file-like socket: (opcode, payload)."""
    b0, b1 = read_exactly(f, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", read_exactly(f, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", read_exactly(f, 8))[0]
    mask = read_exactly(f, 4) if b1 & 0x80 else None
    data = read_exactly(f, n)
    if mask:
        data = bytes(c ^ mask[i % 4] for i, c in enumerate(data))
    return b0 & 0x0F, data


def frame(opcode, payload, masked):
    head = bytes([0x80 | opcode])
    n = len(payload)
    mbit = 0x80 if masked else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


class EchoServer(socketserver.ThreadingTCPServer):
    """An RFC 6455 echo server: greets, then echoes text frames until a close frame."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        self.requests = []
        super().__init__(("127.0.0.1", 0), EchoHandler)


class EchoHandler(socketserver.StreamRequestHandler):
    def handle(self):
        lines = []
        while True:
            line = self.rfile.readline()
            if line in (b"\r\n", b""):
                break
            lines.append(line.decode().rstrip("\r\n"))
        headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
        self.server.requests.append((lines[0], headers))
        if headers.get("upgrade", "").lower() != "websocket":
            body = f"no upgrade; upgrade header={headers.get('upgrade', '-')}".encode()
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            return
        self.wfile.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Accept: {accept_key(headers['sec-websocket-key'])}\r\n\r\n").encode())
        self.wfile.write(frame(1, b"hello from the backend", masked=False))
        while True:
            opcode, data = read_frame(self.rfile)
            if opcode == 8:
                self.wfile.write(frame(8, data, masked=False))
                return
            self.wfile.write(frame(opcode, b"echo: " + data, masked=False))


class FloodServer(socketserver.ThreadingTCPServer):
    """After the Upgrade, sends `size` bytes and reads `size` bytes at the same time."""
    daemon_threads = True
    allow_reuse_address = True
    size = 32 << 20

    def __init__(self):
        self.received = []
        super().__init__(("127.0.0.1", 0), FloodHandler)


class FloodHandler(socketserver.StreamRequestHandler):
    def handle(self):
        headers = {}
        while True:
            line = self.rfile.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        self.wfile.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Accept: {accept_key(headers['sec-websocket-key'])}\r\n\r\n").encode())
        got = [0]

        def drain():
            while got[0] < self.server.size:
                chunk = self.rfile.read1(1 << 20)
                if not chunk:
                    break
                got[0] += len(chunk)

        reader = threading.Thread(target=drain)
        reader.start()
        block = b"b" * (1 << 20)
        for _ in range(self.server.size >> 20):
            self.wfile.write(block)
        reader.join(60)
        self.server.received.append(got[0])


def start_echo(test):
    server = EchoServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    test.addCleanup(server.server_close)
    test.addCleanup(server.shutdown)
    return server


def open_ws(port, path="/ws", tls=False, host="frontend.com", upgrade="websocket"):
    """Client handshake; returns (status line, headers, socket file, key)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        raw = ctx.wrap_socket(raw, server_hostname=host)
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: {upgrade}\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    f = raw.makefile("rwb", buffering=0)
    status = f.readline().decode().rstrip("\r\n")
    headers = {}
    while True:
        line = f.readline().decode().rstrip("\r\n")
        if not line:
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, f, key, raw


class WebSocketTest(unittest.TestCase):
    def converse(self, f):
        self.assertEqual(read_frame(f), (1, b"hello from the backend"))  # backend speaks first
        for msg in (b"one", b"two" * 1000, b"x" * 70000):
            f.write(frame(1, msg, masked=True))
            self.assertEqual(read_frame(f), (1, b"echo: " + msg))
        f.write(frame(8, struct.pack("!H", 1000), masked=True))
        self.assertEqual(read_frame(f), (8, struct.pack("!H", 1000)))

    def test_ws_backend_over_an_http_listener(self):
        echo = start_echo(self)
        config = config_dir(self, HTTP_GATEWAY, """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ws, namespace: apps}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: chat, port: 80}]}]
""", service("chat", echo.server_address[1], port_name="ws", app_protocol="kubernetes.io/ws"))
        g = Gantry(config, listener_ports=(80,))
        self.addCleanup(g.stop)
        port = g.offset + 80
        status, headers, f, key, raw = open_ws(port)
        self.addCleanup(raw.close)
        self.assertEqual(status, "HTTP/1.1 101 Switching Protocols")
        self.assertEqual(headers["sec-websocket-accept"], accept_key(key))
        self.assertEqual(headers["upgrade"].lower(), "websocket")
        self.converse(f)
        line, seen = echo.requests[-1]
        self.assertEqual(line, "GET /ws HTTP/1.1")
        self.assertEqual(seen["upgrade"], "websocket")
        self.assertIn("x-forwarded-for", seen)
        # Only WebSocket is upgraded through the gateway: an h2c Upgrade is dropped, and the
        # request is answered as plain HTTP/1.1.
        status, headers, f2, _, raw2 = open_ws(port, upgrade="h2c")
        self.addCleanup(raw2.close)
        self.assertEqual(status, "HTTP/1.1 200 OK")
        self.assertEqual(f2.read(int(headers["content-length"])), b"no upgrade; upgrade header=-")

    def test_wss_through_the_howto_https_listener_and_backend_mtls(self):
        echo = start_echo(self)
        extra = (f"location /ws {{ proxy_pass http://127.0.0.1:{echo.server_address[1]};"
                 " proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade;"
                 " proxy_set_header Connection upgrade; proxy_read_timeout 60s; }")
        with Scenario(nginx_extra=extra) as s:
            status, headers, f, key, raw = open_ws(s.gantry.port, tls=True)
            with raw:
                self.assertEqual(status, "HTTP/1.1 101 Switching Protocols")
                self.assertEqual(headers["sec-websocket-accept"], accept_key(key))
                self.converse(f)
            # nginx let the connection in only with Gantry's client certificate; it logs the
            # request when the upgraded connection has ended.
            log = os.path.join(s.nginx.dir, "logs", "access.log")
            wait_for(lambda: '"GET /ws HTTP/1.1" 101' in Path(log).read_text(), what="nginx's log line for the 101")


    def test_both_ways_at_once_with_a_client_that_reads_only_after_writing(self):
        # 32 MiB each way through the TLS listener; the client writes all of its share before it
        # reads anything, so Gantry must keep reading the client while its writes to it are stuck.
        flood = FloodServer()
        threading.Thread(target=flood.serve_forever, daemon=True).start()
        self.addCleanup(flood.server_close)
        self.addCleanup(flood.shutdown)
        extra = (f"location /flood {{ proxy_pass http://127.0.0.1:{flood.server_address[1]};"
                 " proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade;"
                 " proxy_set_header Connection upgrade; proxy_read_timeout 60s; }")
        with Scenario(nginx_extra=extra) as s:
            status, _, _, _, raw = open_ws(s.gantry.port, path="/flood", tls=True)
            with raw:
                self.assertEqual(status, "HTTP/1.1 101 Switching Protocols")
                raw.settimeout(30)  # a deadlock fails here instead of hanging
                block = b"c" * (1 << 20)
                for _ in range(flood.size >> 20):
                    raw.sendall(block)
                got = 0
                while got < flood.size:
                    chunk = raw.recv(1 << 20)
                    self.assertTrue(chunk, f"connection closed after {got} bytes")
                    got += len(chunk)
                self.assertEqual(got, flood.size)
            wait_for(lambda: flood.received, what="the backend to count what it received")
            self.assertEqual(flood.received, [flood.size])


if __name__ == "__main__":
    unittest.main()

"""Bodies streamed both ways through the gateway: 100 MiB up and down, with memory staying flat."""
import os
import subprocess
import unittest

import harness
from harness import Scenario

SIZE = 100 * 1024 * 1024


def make_file(path, size):
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(size // len(block)):
            f.write(block)


class StreamingTest(unittest.TestCase):
    def test_100_mib_upload_and_download_with_flat_memory(self):
        with Scenario() as s:
            src = os.path.join(s.tmp, "upload.bin")
            make_file(src, SIZE)
            want = harness.sha256_file(src)
            self.assertEqual(s.curl("/")[0], 200)  # warm up: TLS contexts, pools
            rss_before = s.gantry.rss_kib("VmRSS")

            # Upload with Content-Length (PUT stored by nginx's DAV module).
            code, body = s.curl("/files/up-length.bin", "-T", src, timeout=120)
            self.assertIn(code, (201, 204), body)
            stored = os.path.join(s.nginx.dir, "dav", "files", "up-length.bin")
            self.assertEqual(harness.sha256_file(stored), want)

            # Upload with chunked transfer coding.
            code, body = s.curl("/files/up-chunked.bin", "-T", src, "-H", "Transfer-Encoding: chunked", timeout=120)
            self.assertIn(code, (201, 204), body)
            self.assertEqual(harness.sha256_file(os.path.join(s.nginx.dir, "dav", "files", "up-chunked.bin")), want)

            # Download.
            out = os.path.join(s.tmp, "download.bin")
            p = subprocess.run(["curl", "-sS", "--insecure", "-o", out, "-w", "%{http_code}",
                                s.url("/files/up-length.bin")], capture_output=True, text=True, timeout=120)
            self.assertEqual(p.stdout, "200", p.stderr)
            self.assertEqual(harness.sha256_file(out), want)

            peak = s.gantry.rss_kib("VmHWM")
            growth_mib = (peak - rss_before) / 1024
            print(f"\ngantry RSS before {rss_before} KiB, peak {peak} KiB over 3 x 100 MiB: +{growth_mib:.1f} MiB")
            if not harness.sanitized():  # (under ASan the bodies are still checked, the memory is not)
                self.assertLess(growth_mib, 24, "the gateway buffered a body instead of streaming it")


class HostileHttpTest(unittest.TestCase):
    """Bad requests get a clear status and the gateway keeps serving."""

    def raw(self, s, payload):
        p = subprocess.run(["openssl", "s_client", "-quiet", "-connect", f"127.0.0.1:{s.gantry.port}",
                            "-servername", "frontend.com"], input=payload, capture_output=True, timeout=30)
        return p.stdout.decode(errors="replace")

    def test_smuggling_and_oversized_heads_are_refused(self):
        with Scenario() as s:
            out = self.raw(s, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
            self.assertTrue(out.startswith("HTTP/1.1 400"), out)
            out = self.raw(s, b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * (70 * 1024) + b"\r\n\r\n")
            self.assertTrue(out.startswith("HTTP/1.1 431"), out)
            out = self.raw(s, b"GET / HTTP/1.1\r\n\r\n")
            self.assertTrue(out.startswith("HTTP/1.1 400"), out)
            out = self.raw(s, b"\x16\x03\x01garbage\r\n\r\n")
            self.assertTrue(out.startswith("HTTP/1.1 400"), out)
            # Two pipelined requests on one connection both get answers.
            out = self.raw(s, b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            self.assertEqual(out.count("Hello World!"), 2, out)
            self.assertEqual(s.curl("/"), (200, "Hello World!"))
            self.assertIsNone(s.gantry.proc.poll())

    def test_clients_that_vanish_mid_response_do_not_hurt_the_gateway(self):
        import socket
        import ssl
        with Scenario() as s:
            big = os.path.join(s.nginx.dir, "dav", "files", "big.bin")
            os.makedirs(os.path.dirname(big), exist_ok=True)
            make_file(big, 32 * 1024 * 1024)
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            for _ in range(20):
                # Ask for 32 MiB, then close without reading: the gateway's writes hit a closed socket.
                c = ctx.wrap_socket(socket.create_connection(("127.0.0.1", s.gantry.port)),
                                    server_hostname="frontend.com")
                c.sendall(b"GET /files/big.bin HTTP/1.1\r\nHost: frontend.com\r\n\r\n")
                c.recv(100)
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                c.close()  # RST
            subprocess.run(["curl", "-sk", "--max-time", "0.3", "-o", "/dev/null", s.url("/files/big.bin")])
            # A load generator that drops its 50 keep-alive connections at the end of its run.
            for _ in range(2):
                subprocess.run(["wrk", "-t1", "-c50", "-d1s", s.url("/")], capture_output=True, timeout=30)
            self.assertIsNone(s.gantry.proc.poll(), s.gantry.logs())
            self.assertEqual(s.curl("/"), (200, "Hello World!"))


if __name__ == "__main__":
    unittest.main()

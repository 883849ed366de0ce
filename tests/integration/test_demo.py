"""`gantry demo`: the README's first command's payload, as a newcomer meets it."""
import os
import re
import signal
import subprocess
import time
import unittest

from harness import GANTRY, curl, free_port, wait_for


class DemoTest(unittest.TestCase):
    def test_the_readme_demo_command_runs_the_binary_the_build_makes(self):
        root = os.path.join(os.path.dirname(__file__), "..", "..")
        with open(os.path.join(root, "scripts", "demo.sh")) as f:
            exec_line = [l for l in f if l.startswith("exec ")][0]
        binary = exec_line.split()[1]  # build/<path inside the build tree>
        inside_build = binary.split("/", 1)[1]
        self.assertTrue(os.path.realpath(GANTRY).endswith("/" + inside_build),
                        f"scripts/demo.sh execs {binary}, but CMake builds {GANTRY}")

    def test_demo_serves_the_how_to_and_ctrl_c_leaves_nothing_running(self):
        admin = f"127.0.0.1:{free_port()}"
        proc = subprocess.Popen([GANTRY, "demo", "--admin", admin], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        lines = []
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(line)
                if line.startswith("Ctrl-C"):
                    break
            out = "".join(lines)
            self.assertIn("curl --insecure https://127.0.0.1:8443/", out)
            self.assertIn("message: Valid Gateway", out)
            self.assertIn("message: Route is Accepted", out)
            self.assertIn("message: Valid BackendTLSPolicy", out)
            self.assertIn("value: 127.0.0.1", out)
            self.assertEqual(curl("https://127.0.0.1:8443/"), (200, "Hello World!"))
            nginx_pid = int(re.search(r"nginx \(pid (\d+)\)", out).group(1))
            folder = re.search(r"manifests:\s+(\S+)", out).group(1)
            self.assertTrue(os.path.isdir(folder))
        finally:
            proc.send_signal(signal.SIGINT)
            rest, _ = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 0, rest)
        wait_for(lambda: not os.path.exists(f"/proc/{nginx_pid}"), timeout=5, what="nginx to stop")
        self.assertFalse(os.path.exists(folder))
        self.assertNotEqual(curl("https://127.0.0.1:8443/", timeout=3)[0], 200)

    def test_demo_says_so_when_port_8443_is_taken_and_cleans_up(self):
        import glob
        import socket
        before = set(glob.glob("/tmp/gantry-demo-*"))
        blocker = socket.socket()
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT of earlier runs
        try:
            blocker.bind(("127.0.0.1", 8443))
            blocker.listen()
            p = subprocess.run([GANTRY, "demo", "--admin", f"127.0.0.1:{free_port()}"], capture_output=True,
                               text=True, timeout=60)
        finally:
            blocker.close()
        self.assertEqual(p.returncode, 1)
        self.assertIn("127.0.0.1:8443", p.stderr)
        self.assertIn("Address already in use", p.stderr)
        self.assertEqual(set(glob.glob("/tmp/gantry-demo-*")), before, "the temporary folder is removed")
        self.assertNotIn("nginx: master", subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
                         .replace("nginx: master process /usr/sbin/nginx -p /tmp/gantry-it", ""))


if __name__ == "__main__":
    unittest.main()

"""The zerg command line: -t, -v, -h, -s, -p, and the one-line errors for
bad configurations and modules."""
import os
import signal
import tempfile
import unittest

import zgtest
from zgtest import Zerg, run_zerg

GOOD = f"""
modules_path: {zgtest.ZERG_MODULES}
load_modules: [echo]
servers:
  - listen: ["127.0.0.1:{zgtest.free_port()}"]
    module: echo
"""


def write(text):
    fd, path = tempfile.mkstemp(suffix=".yaml", prefix="zgcli-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


class CliTest(unittest.TestCase):
    def test_version_and_help(self):
        rc, out = run_zerg(["-v"])
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"^zerg \d+\.\d+\.\d+ \(module ABI \d+\)")
        rc, out = run_zerg(["-h"])
        self.assertEqual(rc, 0)
        self.assertIn("-s SIGNAL", out)
        rc, out = run_zerg(["-x"])
        self.assertEqual(rc, 1)

    def test_shipped_config_is_valid(self):
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "..", "..", "conf", "zerg.yaml")) as f:
            shipped = f.read()
        rc, out = run_zerg(["-t", "-c", write(f"modules_path: {zgtest.ZERG_MODULES}\n" + shipped)])
        self.assertEqual(rc, 0, out)
        self.assertIn("test is successful", out)

    def test_test_mode_good_and_bad(self):
        rc, out = run_zerg(["-t", "-c", write(GOOD)])
        self.assertEqual(rc, 0, out)
        self.assertIn("test is successful", out)
        bad = write(GOOD.replace("module: echo", "module: nosuch"))
        rc, out = run_zerg(["-t", "-c", bad])
        self.assertEqual(rc, 1)
        self.assertIn(f'{bad}:6:13: unknown module "nosuch" (not in load_modules)', out)
        self.assertIn("test failed", out)

    def test_missing_module_file(self):
        path = write(GOOD.replace("load_modules: [echo]", "load_modules: [echo, ghost]"))
        rc, out = run_zerg(["-t", "-c", path])
        self.assertEqual(rc, 1)
        self.assertIn("module ghost: cannot open", out)
        self.assertIn("ghost.so", out)

    def test_missing_config_file(self):
        rc, out = run_zerg(["-t", "-c", "/nonexistent/zerg.yaml"])
        self.assertEqual(rc, 1)
        self.assertIn("/nonexistent/zerg.yaml: cannot open", out)

    def test_signal_without_master(self):
        tmp = tempfile.mkdtemp()
        path = write(GOOD + f"pid: {tmp}/zerg.pid\n")
        rc, out = run_zerg(["-s", "reload", "-c", path])
        self.assertEqual(rc, 4)  # no master
        self.assertIn("is zerg running?", out)
        rc, out = run_zerg(["-s", "bogus", "-c", path])
        self.assertEqual(rc, 1)
        self.assertIn('unknown signal "bogus"', out)

    def test_signal_quit_and_pid_file(self):
        text = """
load_modules: [echo]
servers:
  - listen: ["127.0.0.1:{port0}"]
    module: echo
"""
        with Zerg(text) as z:
            pidfile = os.path.join(z.tmp, "zerg.pid")
            with open(pidfile) as f:
                self.assertEqual(int(f.read()), z.proc.pid)
            rc, out = run_zerg(["-s", "quit", "-c", z.conf])
            self.assertEqual(rc, 0, out)
            self.assertEqual(z.proc.wait(10), 0)
            self.assertFalse(os.path.exists(pidfile), "pid file left behind")

    def test_prefix_for_relative_paths(self):
        tmp = tempfile.mkdtemp()
        port = zgtest.free_port()
        path = write(f"""
modules_path: {zgtest.ZERG_MODULES}
pid: run/zerg.pid
error_log: {{ path: zerg.log, level: info }}
load_modules: [echo]
servers:
  - listen: ["127.0.0.1:{port}"]
    module: echo
""")
        os.mkdir(os.path.join(tmp, "run"))
        import subprocess
        p = subprocess.Popen([zgtest.ZERG_BIN, "-c", path, "-p", tmp])
        try:
            zgtest.wait_port("127.0.0.1", port)
            zgtest.wait_until(lambda: os.path.exists(os.path.join(tmp, "run/zerg.pid")), 5,
                              "the pid file under the prefix")
            self.assertTrue(os.path.exists(os.path.join(tmp, "zerg.log")))
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(10)

    def test_listen_address_in_use(self):
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        path = write(GOOD.replace(GOOD.split('"')[1], f"127.0.0.1:{port}"))
        rc, out = run_zerg(["-c", path])
        s.close()
        self.assertEqual(rc, 1)
        self.assertIn(f"bind() to 127.0.0.1:{port}: Address already in use", out)


if __name__ == "__main__":
    zgtest.main()

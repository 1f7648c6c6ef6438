"""Reloads under HTTP keep-alive load: wrk with 64 connections while zerg
takes 20 SIGHUPs must see no socket error at all (nginx 1.22 cuts every
keep-alive connection at every reload: 1280 read errors in the same run)."""
import os
import re
import shutil
import signal
import subprocess
import time
import unittest

import zgtest
from zgtest import Zerg

CONF = """
worker_processes: 2
load_modules: [http]
servers:
  - listen: ["127.0.0.1:{port0}"]
    module: http
    http:
      locations:
        - {{ path: /, return: {{ status: 200, body: "Hello, World!" }} }}
"""


@unittest.skipUnless(shutil.which("wrk"), "needs wrk")
class ReloadUnderWrk(unittest.TestCase):
    def test_twenty_reloads_no_socket_error(self):
        with Zerg(CONF) as z:
            wrk = subprocess.Popen(["wrk", "-t1", "-c64", "-d5s", f"http://127.0.0.1:{z.ports[0]}/"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            time.sleep(0.5)
            for _ in range(20):
                z.send(signal.SIGHUP)
                time.sleep(0.2)
            out, _ = wrk.communicate(timeout=30)
            self.assertEqual(z.output().count("reload done"), 20, z.output())
        done = re.search(r"(\d+) requests in", out)
        self.assertTrue(done and int(done.group(1)) > 1000, out)
        self.assertNotIn("Socket errors", out)
        self.assertNotIn("Non-2xx", out)


if __name__ == "__main__":
    zgtest.main()

"""Reloads and a binary upgrade under HTTP keep-alive load: wrk with 64
connections while zerg takes 20 SIGHUPs, or a SIGUSR2 and the old master's
SIGQUIT, must see no socket error at all (nginx 1.22 cuts every keep-alive
connection at every reload: 1280 read errors in the same run)."""
import os
import re
import shutil
import signal
import subprocess
import time
import unittest

import zgtest
from zgtest import Zerg, tcp_peers, wait_for, wait_until
from httptest import HTTP_SERVER

from test_upgrade import alive, read_pid

CONF = "worker_processes: 2" + HTTP_SERVER + """      locations:
        - {{ path: /, return: {{ status: 200, body: "Hello, World!" }} }}
"""


def wait_wrk(z):
    """Wait until wrk's 64 connections are open."""
    wait_until(lambda: len(tcp_peers(z.ports[0])) >= 64, 10, "wrk's 64 connections",
               detail=lambda: len(tcp_peers(z.ports[0])))


@unittest.skipUnless(shutil.which("wrk"), "needs wrk")
class ReloadUnderWrk(unittest.TestCase):
    def test_twenty_reloads_no_socket_error(self):
        with Zerg(CONF) as z:
            wrk = subprocess.Popen(["wrk", "-t1", "-c64", "-d8s", f"http://127.0.0.1:{z.ports[0]}/"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            wait_wrk(z)
            for i in range(20):
                # one at a time: a SIGHUP that comes while the last one is
                # still pending merges with it (signals do not queue)
                self.assertIn("reload done", z.reload())
                time.sleep(0.1)  # the point: reloads spread over wrk's run
            out, _ = wrk.communicate(timeout=30)
            self.assertEqual(z.output().count("reload done"), 20, z.output())
        self.assert_clean(out)

    def test_binary_upgrade_no_socket_error(self):
        z = Zerg(CONF)
        self.addCleanup(z.stop)
        z.start()
        pid_file = os.path.join(z.tmp, "zerg.pid")
        new = []
        # cleanups run last first: the new master (which holds zerg's output
        # open) goes before z.stop reads that output to its end
        self.addCleanup(lambda: new and alive(new[0]) and os.kill(new[0], signal.SIGKILL))
        wrk = subprocess.Popen(["wrk", "-t1", "-c64", "-d4s", f"http://127.0.0.1:{z.ports[0]}/"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.addCleanup(wrk.kill)
        wait_wrk(z)
        z.send(signal.SIGUSR2)
        pid = wait_for(lambda: read_pid(pid_file) != z.proc.pid and read_pid(pid_file))
        self.assertTrue(pid, z.output())
        new.append(pid)
        self.assertTrue(wait_for(lambda: f"{pid} master: 2 workers ready" in z.output()))
        time.sleep(0.7)  # the point: both generations serve for a while
        z.send(signal.SIGQUIT)  # the old master drains and leaves
        self.assertEqual(z.proc.wait(15), 0, z.output())
        out, _ = wrk.communicate(timeout=30)
        self.assertTrue(alive(pid))
        os.kill(pid, signal.SIGQUIT)
        self.assertTrue(wait_for(lambda: not alive(pid), 15))
        self.assert_clean(out)

    def assert_clean(self, out):
        done = re.search(r"(\d+) requests in", out)
        self.assertTrue(done and int(done.group(1)) > 1000, out)
        self.assertNotIn("Socket errors", out)
        self.assertNotIn("Non-2xx", out)


if __name__ == "__main__":
    zgtest.main()

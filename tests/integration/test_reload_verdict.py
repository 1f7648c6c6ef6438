"""test_reload_verdict - `zerg -s reload` and `zerg -s upgrade` wait for the
master's verdict: 0 once the new workers run, 2 with the master's error line
when it keeps the running configuration or binary, 3 when no verdict comes
within -w seconds, 4 when there is no master or it exits before answering."""
import os
import signal
import socket
import subprocess
import threading
import time
import unittest

import zgtest
from test_upgrade import CONF, UpgradeCase, alive, echo_once, read_pid
from zgtest import run_zerg, wait_for, wait_until

OK, ERROR, REJECTED, TIMEOUT, NO_MASTER = 0, 1, 2, 3, 4


class Busy:
    """A port something else listens on."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]


class VerdictCase(UpgradeCase):
    def setUp(self):
        super().setUp()
        self.z = self.start()
        with open(self.z.conf) as f:
            self.good = f.read()
        # a second file naming the same pid file: zerg -s reads it while the
        # master's own file is one the client itself would refuse
        self.other = os.path.join(self.z.tmp, "other.yaml")
        with open(self.other, "w") as f:
            f.write(self.good)

    def edit(self, text):
        with open(self.z.conf, "w") as f:
            f.write(text)

    def with_busy_port(self):
        busy = Busy()
        self.addCleanup(busy.sock.close)
        self.edit(self.good.replace(f'"127.0.0.1:{self.z.ports[0]}"',
                                    f'"127.0.0.1:{self.z.ports[0]}", "127.0.0.1:{busy.port}"'))
        return busy.port

    def signal(self, action, *extra, conf=None):
        return run_zerg(["-c", conf or self.z.conf, "-s", action] + list(extra), timeout=60)

    def assert_serving(self, workers=2):
        """The master has workers children: the workers a reload replaced
        exit on their own once drained (after the verdict), and so does a new
        binary that failed, so their exits are waited for."""
        def serving():
            return len([p for p in self.z.workers() if p != self.new_pid]) == workers
        wait_until(serving, 10, f"{workers} workers",
                   detail=lambda: (self.z.workers(), self.z.output()[-2000:]))
        self.assertEqual(echo_once(("127.0.0.1", self.z.ports[0])), b"ping\n")


class TestReloadVerdict(VerdictCase):
    def test_good_reload_returns_once_the_new_workers_run(self):
        before = set(self.z.workers())
        rc, out = self.signal("reload")
        self.assertEqual(rc, OK, out)
        # no waiting here: the verdict came after the new workers were ready
        self.assertIn("reload done: 2 workers on the new configuration", self.z.output())
        self.assertEqual(len(set(self.z.workers()) - before), 2, self.z.output())
        self.assert_serving()

    def test_address_in_use_is_refused_with_the_masters_error_line(self):
        port = self.with_busy_port()
        rc, out = self.signal("reload")
        self.assertEqual(rc, REJECTED, out)
        self.assertIn("zerg: reload failed, keeping the running configuration: "
                      f"bind() to 127.0.0.1:{port}: Address already in use", out)
        self.assert_serving()
        self.edit(self.good)  # fixed: the next one works
        rc, out = self.signal("reload")
        self.assertEqual(rc, OK, out)

    def test_bad_configuration(self):
        self.edit(self.good + "no_such_key: 1\n")
        line = len(self.good.splitlines()) + 1
        # refused by zerg -s itself, as -t would: the master is not signalled
        rc, out = self.signal("reload")
        self.assertEqual(rc, ERROR, out)
        self.assertIn(f'{self.z.conf}:{line}:1: unknown key "no_such_key"', out)
        # refused by the master: its error line, naming its file
        rc, out = self.signal("reload", conf=self.other)
        self.assertEqual(rc, REJECTED, out)
        self.assertIn("zerg: reload failed, keeping the running configuration: "
                      f'{self.z.conf}:{line}:1: unknown key "no_such_key"', out)
        self.assert_serving()

    def test_concurrent_reloads_each_get_a_verdict(self):
        results = []

        def one():
            results.append(self.signal("reload"))
        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual([rc for rc, _ in results], [OK] * 4, results)
        self.assert_serving()

    def test_no_verdict_within_w_seconds(self):
        self.z.send(signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            rc, out = self.signal("reload", "-w", "1")
            took = time.monotonic() - t0
        finally:
            self.z.send(signal.SIGCONT)
        self.assertEqual(rc, TIMEOUT, out)
        self.assertIn(f"no verdict on the reload from the master (pid {self.z.proc.pid}) "
                      "within 1 s", out)
        self.assertLess(took, 5)
        # the signal was sent: the master reloads once it runs again
        self.assertTrue(wait_for(lambda: "reload done" in self.z.output(), 10), self.z.output())

    def test_a_master_that_dies_is_no_master(self):
        self.z.send(signal.SIGSTOP)
        client = subprocess.Popen([zgtest.ZERG_BIN, "-c", self.z.conf, "-s", "reload", "-w", "30"],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(0.3)
        self.z.send(signal.SIGKILL)
        out = client.communicate(timeout=10)[0].decode()
        self.assertEqual(client.returncode, NO_MASTER, out)
        self.assertIn(f"the master (pid {self.z.proc.pid}) exited before its verdict on the reload",
                      out)
        self.z.proc.wait(10)
        for w in self.z.workers():
            os.kill(w, signal.SIGKILL)

    def test_no_master(self):
        self.z.stop(signal.SIGQUIT)
        rc, out = self.signal("reload")
        self.assertEqual(rc, NO_MASTER, out)
        self.assertIn("is zerg running?", out)

    def test_w_zero_does_not_wait_and_w_is_checked(self):
        self.with_busy_port()
        rc, out = self.signal("reload", "-w", "0")
        self.assertEqual(rc, OK, out)
        self.z.wait_log("reload failed")
        rc, out = self.signal("reload", "-w", "soon")
        self.assertEqual(rc, ERROR, out)
        self.assertIn('-w takes whole seconds from 0 to 86400, not "soon"', out)


class TestUpgradeVerdict(VerdictCase):
    def test_upgrade_returns_once_the_new_binary_serves(self):
        rc, out = self.signal("upgrade")
        self.assertEqual(rc, OK, out)
        new = read_pid(self.pid_file)
        self.assertNotEqual(new, self.z.proc.pid)
        self.new_pid = new
        self.assertIn(f"{new} master: 2 workers ready", self.z.output())
        self.stop_new()

    def test_a_new_binary_that_cannot_bind_is_a_failed_upgrade(self):
        port = self.with_busy_port()
        rc, out = self.signal("upgrade")
        self.assertEqual(rc, REJECTED, out)
        self.assertIn(f"zerg: binary upgrade failed: bind() to 127.0.0.1:{port}: "
                      "Address already in use", out)
        self.assertTrue(wait_for(lambda: read_pid(self.pid_file) == self.z.proc.pid, 10))
        self.assert_serving()

    def test_a_new_binary_whose_configuration_does_not_load(self):
        self.edit(self.good + "no_such_key: 1\n")
        rc, out = self.signal("upgrade", conf=self.other)
        self.assertEqual(rc, REJECTED, out)
        self.assertIn(f"zerg: binary upgrade failed: {self.z.conf}:", out)
        self.assertIn('unknown key "no_such_key"', out)
        self.assertTrue(wait_for(lambda: read_pid(self.pid_file) == self.z.proc.pid, 10))
        self.assert_serving()

    def test_a_second_upgrade_while_the_first_runs_is_refused(self):
        rc, out = self.signal("upgrade")
        self.assertEqual(rc, OK, out)
        self.new_pid = read_pid(self.pid_file)
        # the pid file names the new master: it may not upgrade while the old one runs
        rc, out = run_zerg(["-c", self.z.conf, "-s", "upgrade"], timeout=60)
        self.assertEqual(rc, REJECTED, out)
        self.assertIn(f"the master this one upgraded (pid {self.z.proc.pid}) still runs", out)
        self.stop_new()


if __name__ == "__main__":
    zgtest.main()

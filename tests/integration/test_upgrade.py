"""test_upgrade - binary upgrade on SIGUSR2, retiring the workers on SIGWINCH
and the service manager's notifications, through the real zerg binary: the
new master takes over the listening sockets (TCP and unix) without a refused
or lost connection, the old one's connections finish, a new binary that
fails leaves the old master in charge, and $NOTIFY_SOCKET hears READY,
RELOADING, STOPPING and the new MAINPID."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import zgtest
from zgtest import Zerg, holds, recv_exact, run_zerg, wait_for, wait_until

CONF = """worker_processes: 2
load_modules: [echo]
servers:
  - listen: ["127.0.0.1:{port0}", "unix:{tmp}/echo.sock"]
    module: echo
"""


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def alive(pid):
    """pid runs (a zombie does not count: nobody may reap an orphan here)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def echo_once(addr, payload=b"ping\n", timeout=5.0):
    fam = socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(addr)
        s.sendall(payload)
        return recv_exact(s, len(payload), timeout)


class Traffic:
    """A client connecting, echoing and closing in a loop (bounded in time)
    while the test runs; every failure is recorded."""

    def __init__(self, addr, seconds=30.0):
        self.addr, self.deadline = addr, time.monotonic() + seconds
        self.ok, self.errors = 0, []
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        n = 0
        while not self.stop_flag.is_set() and time.monotonic() < self.deadline:
            payload = b"m%d\n" % n
            n += 1
            try:
                got = echo_once(self.addr, payload)
                if got == payload:
                    self.ok += 1
                else:
                    self.errors.append(f"echo {payload!r} came back as {got!r}")
            except OSError as e:
                self.errors.append(repr(e))

    def wait_ok(self, n, timeout=15.0):
        """Wait until n echoes have come back."""
        wait_until(lambda: self.ok >= n or self.errors, timeout, f"{n} echoes",
                   detail=lambda: (self.ok, self.errors[:5]))

    def stop(self):
        self.stop_flag.set()
        self.thread.join(10)
        return self.ok, self.errors


class UpgradeCase(unittest.TestCase):
    def setUp(self):
        self.new_pid = 0

    def tearDown(self):
        # the new master holds zerg's output pipe open: stop it first
        if self.new_pid and alive(self.new_pid):
            os.kill(self.new_pid, signal.SIGKILL)
            wait_for(lambda: not alive(self.new_pid), 5)

    def tmpdir(self):
        d = tempfile.mkdtemp(prefix="zgtest-upgrade-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def start(self, text=CONF, **kw):
        z = Zerg(text, **kw)
        self.addCleanup(z.stop)
        z.start()
        self.pid_file = os.path.join(z.tmp, "zerg.pid")
        self.sock = os.path.join(z.tmp, "echo.sock")
        return z

    def upgrade(self, z):
        """SIGUSR2 through zerg -s upgrade; returns the new master's pid once
        its workers are ready."""
        rc, out = run_zerg(["-c", z.conf, "-s", "upgrade"])
        self.assertEqual(rc, 0, out)
        new = wait_for(lambda: (read_pid(self.pid_file) != z.proc.pid and read_pid(self.pid_file)), 10)
        self.assertTrue(new, "no new pid file:\n" + z.output())
        self.new_pid = new
        self.assertEqual(read_pid(self.pid_file + ".oldbin"), z.proc.pid)
        self.assertTrue(wait_for(lambda: f"{new} master: 2 workers ready" in z.output(), 10),
                        z.output())
        return new

    def stop_new(self, sig=signal.SIGQUIT):
        os.kill(self.new_pid, sig)
        self.assertTrue(wait_for(lambda: not alive(self.new_pid), 15), "new master did not exit")


class TestUpgrade(UpgradeCase):
    def test_upgrade_hands_over_without_losing_a_connection(self):
        z = self.start()
        port = z.ports[0]
        held = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.addCleanup(held.close)
        held.sendall(b"before\n")
        self.assertEqual(recv_exact(held, 7), b"before\n")
        tcp, unix = Traffic(("127.0.0.1", port)), Traffic(self.sock)
        for t in (tcp, unix):
            t.wait_ok(10)
        new = self.upgrade(z)
        self.assertIn(f"{new} master: binary upgrade: took over 3 listening sockets", z.output())
        for t in (tcp, unix):  # traffic goes on while both masters serve
            t.wait_ok(t.ok + 10)
        # completing the upgrade: the old master drains and leaves
        mark = z.log_mark()
        z.send(signal.SIGQUIT)
        z.wait_log(f"{z.proc.pid} master: graceful stop", since=mark)
        # the connection an old worker holds still works meanwhile ...
        held.sendall(b"during\n")
        self.assertEqual(recv_exact(held, 7), b"during\n")
        held.close()  # ... and closing it lets that worker go
        self.assertEqual(z.proc.wait(15), 0, z.output())
        for t in (tcp, unix):  # and goes on with the new master alone
            t.wait_ok(t.ok + 10)
        for t in (tcp, unix):
            ok, errors = t.stop()
            self.assertEqual(errors, [], z.output())
            self.assertGreater(ok, 20)
        # the new master serves alone, with the pid file and the socket file
        self.assertTrue(alive(new))
        self.assertEqual(read_pid(self.pid_file), new)
        self.assertFalse(os.path.exists(self.pid_file + ".oldbin"))
        self.assertEqual(echo_once(("127.0.0.1", port)), b"ping\n")
        self.assertEqual(echo_once(self.sock), b"ping\n")
        self.stop_new()
        self.assertFalse(os.path.exists(self.sock), "the last master removes the socket file")
        self.assertFalse(os.path.exists(self.pid_file))

    def test_winch_retires_workers_and_the_old_master_takes_over_again(self):
        z = self.start()
        port = z.ports[0]
        new = self.upgrade(z)
        old_workers = z.workers()
        self.assertIn(new, old_workers)
        z.send(signal.SIGWINCH)
        # the old master's workers leave; it keeps only the new master
        self.assertTrue(wait_for(lambda: z.workers() == [new], 10), z.output())
        self.assertEqual(echo_once(("127.0.0.1", port)), b"ping\n")
        # roll back: the new binary leaves, the old master starts workers again
        self.stop_new()
        self.assertTrue(wait_for(lambda: "this master (pid %d) serves alone again" % z.proc.pid
                                 in z.output(), 10), z.output())
        self.assertTrue(wait_for(lambda: len(z.workers()) == 2, 10), z.output())
        self.assertEqual(read_pid(self.pid_file), z.proc.pid)
        self.assertFalse(os.path.exists(self.pid_file + ".oldbin"))
        self.assertTrue(os.path.exists(self.sock), "the socket file stays while a master serves")
        self.assertEqual(echo_once(("127.0.0.1", port)), b"ping\n")
        self.assertEqual(echo_once(self.sock), b"ping\n")
        self.assertEqual(z.stop(signal.SIGQUIT), 0)
        self.assertFalse(os.path.exists(self.sock))

    def test_winch_then_hup_restarts_workers_and_serves_what_queued(self):
        z = self.start()
        port = z.ports[0]
        z.send(signal.SIGWINCH)
        self.assertTrue(wait_for(lambda: z.workers() == [], 10), z.output())
        self.assertTrue(z.proc.poll() is None, "the master stays")
        # the listening socket stays open: a connection now waits in its queue
        waiting = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.addCleanup(waiting.close)
        waiting.sendall(b"queued\n")
        # the point: for a while, nothing respawns a worker
        self.assertTrue(holds(lambda: z.workers() == [], 0.3), "a worker was respawned after SIGWINCH")
        mark = z.log_mark()
        z.send(signal.SIGHUP)
        self.assertEqual(recv_exact(waiting, 7), b"queued\n", z.output())
        # the first worker ready serves the queued one; the master logs once both are
        z.wait_log("SIGHUP after SIGWINCH: 2 workers started", since=mark)
        self.assertEqual(len(z.workers()), 2)

    def test_a_new_binary_that_fails_leaves_the_old_master_in_charge(self):
        z = self.start()
        port = z.ports[0]
        with open(z.conf) as f:
            good = f.read()
        with open(z.conf, "a") as f:
            f.write("no_such_key: 1\n")
        z.send(signal.SIGUSR2)  # zerg -s would refuse the file itself
        self.assertTrue(wait_for(lambda: "serves alone again" in z.output(), 10), z.output())
        self.assertIn("exited with code 1", z.output())
        self.assertEqual(read_pid(self.pid_file), z.proc.pid)
        self.assertFalse(os.path.exists(self.pid_file + ".oldbin"))
        self.assertEqual(len(z.workers()), 2)
        self.assertEqual(echo_once(("127.0.0.1", port)), b"ping\n")
        self.assertEqual(echo_once(self.sock), b"ping\n")
        # fixed: the next upgrade works
        with open(z.conf, "w") as f:
            f.write(good)
        self.upgrade(z)
        self.stop_new()
        self.assertTrue(wait_for(lambda: read_pid(self.pid_file) == z.proc.pid, 10))

    def test_a_binary_gone_from_disk_is_refused_and_nothing_changes(self):
        tmp = self.tmpdir()
        exe = os.path.join(tmp, "zerg-copy")
        shutil.copy(zgtest.ZERG_BIN, exe)
        saved = zgtest.ZERG_BIN
        zgtest.ZERG_BIN = exe
        try:
            z = self.start()
        finally:
            zgtest.ZERG_BIN = saved
        os.unlink(exe)
        z.send(signal.SIGUSR2)
        self.assertTrue(wait_for(lambda: "binary upgrade failed" in z.output(), 10), z.output())
        self.assertIn(f"execve {exe}: No such file or directory", z.output())
        self.assertEqual(read_pid(self.pid_file), z.proc.pid)
        self.assertFalse(os.path.exists(self.pid_file + ".oldbin"))
        self.assertEqual(len(z.workers()), 2)
        self.assertEqual(echo_once(("127.0.0.1", z.ports[0])), b"ping\n")

    def test_a_second_usr2_while_the_new_binary_runs_is_ignored(self):
        z = self.start()
        new = self.upgrade(z)
        z.send(signal.SIGUSR2)
        self.assertTrue(wait_for(lambda: f"a new binary already runs (pid {new})" in z.output(), 10))
        self.assertEqual(len([p for p in z.workers() if p != new]), 2)
        # nor may the new master upgrade while the old one runs: one pid.oldbin
        os.kill(new, signal.SIGUSR2)
        self.assertTrue(wait_for(lambda: f"the master this one upgraded (pid {z.proc.pid}) still "
                                 "runs" in z.output(), 10), z.output())
        self.assertEqual(read_pid(self.pid_file + ".oldbin"), z.proc.pid)
        self.assertEqual(read_pid(self.pid_file), new)
        self.stop_new()


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def forked_from_parent(pid):
    """pid is a fork of its parent that has not executed a binary since: its
    auxiliary vector is still the parent's (execve makes a new one)."""
    try:
        ppid = int(read_bytes(f"/proc/{pid}/stat").rsplit(b")", 1)[1].split()[1])
        return read_bytes(f"/proc/{pid}/auxv") == read_bytes(f"/proc/{ppid}/auxv")
    except (OSError, ValueError, IndexError):
        return False


def masters_marked(mark):
    """Live zerg masters whose environment carries ZGTEST_MARK=mark (an
    upgrade's new master inherits it; other tests' zergs do not have it).
    A worker just forked still has its master's name until it runs far
    enough to set its own, which on a loaded machine can take a while: a
    fork that has not executed a binary is no master (an upgrade's new
    master has executed zerg)."""
    found = []
    for pid in zgtest.pids():
        try:
            if not read_bytes(f"/proc/{pid}/comm").startswith(b"zerg: master"):
                continue
            if f"ZGTEST_MARK={mark}".encode() not in read_bytes(f"/proc/{pid}/environ").split(b"\0"):
                continue
        except OSError:
            continue
        if alive(pid) and not forked_from_parent(pid):
            found.append(pid)
    return sorted(found)


class TestSignalStorm(UpgradeCase):
    def test_random_hup_usr2_winch_to_every_master(self):
        """60 signals among SIGHUP, SIGUSR2 and SIGWINCH to whichever masters
        run, with traffic: no master dies, at most two run at once, and a
        SIGHUP to each at the end leaves them all serving."""
        import random
        mark = str(os.getpid()) + "-" + str(time.monotonic_ns())
        z = self.start(env=dict(os.environ, ZGTEST_MARK=mark))
        seen = set()
        self.addCleanup(lambda: [os.kill(p, signal.SIGKILL) for p in seen
                                 if p != z.proc.pid and alive(p)])
        traffic = Traffic(("127.0.0.1", z.ports[0]))
        rng = random.Random(20261124)
        for _ in range(60):
            masters = masters_marked(mark)
            seen.update(masters)
            self.assertLessEqual(len(masters), 2, f"{masters}\n" + z.output())
            os.kill(rng.choice(masters), rng.choice([signal.SIGHUP, signal.SIGUSR2,
                                                     signal.SIGWINCH]))
            time.sleep(rng.uniform(0.01, 0.2))  # the point: signals at random moments
        # what the last signals started (a master, workers) shows within this
        time.sleep(0.5)
        masters = masters_marked(mark)
        self.assertEqual(sorted(p for p in seen if alive(p)), masters, "a master died")
        self.assertIn(z.proc.pid, masters)
        mark = z.log_mark()
        for m in masters:
            os.kill(m, signal.SIGHUP)
        for m in masters:  # each has done what that SIGHUP asked
            z.wait_log(f"{m} master: reload done", f"{m} master: reload failed",
                       f"{m} master: SIGHUP after SIGWINCH", since=mark)
        for m in masters:
            self.assertTrue(wait_for(lambda: sum(1 for c in zgtest.proc_children(m)
                                                 if c not in masters) == 2, 10), z.output())
        self.assertEqual(echo_once(("127.0.0.1", z.ports[0])), b"ping\n")
        self.assertEqual(echo_once(self.sock), b"ping\n")
        traffic.stop()  # its errors are expected: both masters may have retired their workers
        self.assertNotIn("respawning", z.output())  # no worker crashed
        newest_first = [m for m in masters if m != z.proc.pid] + [z.proc.pid]
        for m in newest_first:  # the new master first: it hands the service back
            os.kill(m, signal.SIGQUIT)
            self.assertTrue(wait_for(lambda: not alive(m), 15), z.output())
        self.assertEqual(z.proc.wait(5), 0)
        self.assertFalse(os.path.exists(self.sock))


class TestAddressInUse(UpgradeCase):
    """Listeners use SO_REUSEPORT (a socket per worker), which would let a
    second zerg of the same user bind the address too and take part of its
    connections; only a binary upgrade may share them."""

    def test_a_second_zerg_on_a_held_address_refuses_to_start(self):
        z = self.start()
        port = z.ports[0]
        for addr in (f"127.0.0.1:{port}", f"0.0.0.0:{port}"):
            with self.subTest(addr=addr):
                second = Zerg("worker_processes: 2\nload_modules: [echo]\n"
                              f'servers:\n  - listen: ["{addr}"]\n    module: echo\n',
                              wait=False)
                self.addCleanup(second.stop)
                second.start()
                try:
                    rc = second.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.fail(f"a second zerg on {addr} runs beside the first:\n"
                              + second.output())
                self.assertNotEqual(rc, 0)
                said = second.proc.stdout.read().decode(errors="replace") + second.output()
                self.assertIn(f"bind() to {addr}: Address already in use", said)
        # the first zerg alone serves, and still opens sockets of its own
        # address for the slots of a reload with more workers
        self.assertEqual(echo_once(("127.0.0.1", port)), b"ping\n")
        with open(z.conf) as f:
            text = f.read()
        with open(z.conf, "w") as f:
            f.write(text.replace("worker_processes: 2", "worker_processes: 3"))
        self.assertIn("reload done", z.reload())
        self.assertEqual(len(z.wait_workers(3)), 3)
        self.assertEqual(echo_once(("127.0.0.1", port)), b"ping\n")


class TestNotify(UpgradeCase):
    """$NOTIFY_SOCKET as systemd sets it for Type=notify: a datagram socket."""

    def listen(self):
        path = os.path.join(self.tmpdir(), "notify")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        s.settimeout(10)
        self.addCleanup(s.close)
        return s, path

    @staticmethod
    def message(s):
        return dict(line.split("=", 1) for line in s.recv(4096).decode().splitlines())

    def test_ready_reloading_stopping(self):
        s, path = self.listen()
        z = self.start(env=dict(os.environ, NOTIFY_SOCKET=path))
        m = self.message(s)
        self.assertEqual((m["READY"], m["MAINPID"]), ("1", str(z.proc.pid)))
        self.assertEqual(m["STATUS"], "2 workers serving")
        z.send(signal.SIGHUP)
        m = self.message(s)
        self.assertEqual(m["RELOADING"], "1")
        usec = int(m["MONOTONIC_USEC"])
        self.assertLess(abs(usec / 1e6 - time.clock_gettime(time.CLOCK_MONOTONIC)), 5)
        self.assertEqual(self.message(s)["READY"], "1")
        z.send(signal.SIGQUIT)
        self.assertEqual(self.message(s), {"STOPPING": "1"})
        self.assertEqual(z.proc.wait(10), 0)

    def test_new_binary_becomes_the_main_process(self):
        s, path = self.listen()
        z = self.start(env=dict(os.environ, NOTIFY_SOCKET=path))
        self.assertEqual(self.message(s)["MAINPID"], str(z.proc.pid))
        new = self.upgrade(z)
        m = self.message(s)
        self.assertEqual((m["READY"], m["MAINPID"]), ("1", str(new)))
        # the old master leaving is not the service stopping
        z.send(signal.SIGQUIT)
        self.assertEqual(z.proc.wait(10), 0)
        s.settimeout(0.5)
        self.assertRaises(socket.timeout, s.recv, 4096)
        self.stop_new()

    def test_rolled_back_the_old_master_is_the_main_process_again(self):
        s, path = self.listen()
        z = self.start(env=dict(os.environ, NOTIFY_SOCKET=path))
        self.message(s)
        new = self.upgrade(z)
        self.assertEqual(self.message(s)["MAINPID"], str(new))
        # a reload of the old master meanwhile must not take the service back
        z.send(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: f"{z.proc.pid} master: reload done" in z.output(), 10))
        s.settimeout(0.5)
        self.assertRaises(socket.timeout, s.recv, 4096)
        s.settimeout(10)
        # the new master leaving hands the service back rather than stop it
        self.stop_new()
        m = self.message(s)
        self.assertEqual(m["MAINPID"], str(z.proc.pid))
        self.assertNotIn("STOPPING", m)
        m = self.message(s)
        self.assertEqual((m["READY"], m["MAINPID"]), ("1", str(z.proc.pid)))
        z.send(signal.SIGQUIT)
        self.assertEqual(self.message(s), {"STOPPING": "1"})
        self.assertEqual(z.proc.wait(10), 0)

    def test_bad_notify_socket_is_logged_and_zerg_serves(self):
        z = self.start(env=dict(os.environ, NOTIFY_SOCKET="/nonexistent/notify"))
        self.assertIn("cannot notify the service manager at NOTIFY_SOCKET=/nonexistent/notify",
                      z.output())
        self.assertEqual(echo_once(("127.0.0.1", z.ports[0])), b"ping\n")


if __name__ == "__main__":
    zgtest.main()

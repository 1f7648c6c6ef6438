"""The master and its workers through the real binary: CPU pinning, reload
under load with no client-visible error, failed reloads, respawn, graceful
stop mid-transfer, and no leaks across many reloads."""
import os
import re
import shutil
import signal
import subprocess
import socket
import tempfile
import threading
import time
import unittest

import zgtest
from zgtest import Zerg, holds, wait_for, wait_until

CONF = """
worker_processes: {workers}
load_modules: [echo]
worker_shutdown_timeout: {shutdown}
servers:
  - listen: ["127.0.0.1:{{port0}}"]
    module: echo
    echo: {{{{ idle_timeout: {idle} }}}}
"""


def conf(workers=2, idle="60s", shutdown="30s", modules=None, extra=""):
    text = CONF.format(workers=workers, idle=idle, shutdown=shutdown) + extra
    if modules:
        text = f"modules_path: {modules}\n" + text
    return text


def rewrite(z, text):
    """Replace z's config file (keeping its header lines) for a reload."""
    with open(z.conf) as f:
        lines = f.read().splitlines()
    head = [l for l in lines if l.split(":")[0] in ("modules_path", "error_log", "pid")]
    body = text.format(port0=z.ports[0])
    if "modules_path" in body:
        head = [l for l in head if not l.startswith("modules_path")]
    with open(z.conf, "w") as f:
        f.write("\n".join(head) + "\n" + body)


def cpus_allowed(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Cpus_allowed_list:"):
                return line.split()[1]
    return None


def client_ports_of(pid, server_port):
    """Client-side ports of the established connections worker pid holds."""
    out = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{server_port} )"],
                         capture_output=True, text=True).stdout
    ports = set()
    for line in out.splitlines():
        if f"pid={pid}," in line:
            ports.add(int(line.split()[3].rsplit(":", 1)[1]))
    return ports


class Load:
    """Echo clients in threads: persistent connections doing roundtrips and a
    stream of new short connections. Every failure is recorded."""

    def __init__(self, port, persistent=16, churn=2):
        self.port = port
        self.stop_flag = threading.Event()
        self.errors = []
        self.ops = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.persistent) for _ in range(persistent)]
        self.threads += [threading.Thread(target=self.churn) for _ in range(churn)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(30)

    def wait_ops(self, n, timeout=15.0):
        """Wait until the clients have done n operations in all."""
        wait_until(lambda: self.ops >= n or self.errors, timeout, f"{n} echo operations",
                   detail=lambda: (self.ops, self.errors))

    def fail(self, what):
        with self.lock:
            self.errors.append(what)

    def persistent(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        except OSError as e:
            return self.fail(f"connect: {e}")
        i = 0
        port = s.getsockname()[1]
        with s:
            while not self.stop_flag.is_set():
                msg = os.urandom(200 + i % 3000)
                try:
                    s.sendall(msg)
                    got = zgtest.recv_exact(s, len(msg))
                except OSError as e:
                    return self.fail(f"persistent {port}: {e}")
                if got != msg:
                    return self.fail(f"persistent {port}: corrupted echo")
                i += 1
                with self.lock:
                    self.ops += 1

    def churn(self):
        while not self.stop_flag.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
                    s.sendall(b"hello")
                    if zgtest.recv_exact(s, 5) != b"hello":
                        self.fail("churn: bad echo")
            except OSError as e:
                self.fail(f"churn: {e}")
            with self.lock:
                self.ops += 1


class MasterTest(unittest.TestCase):
    def assert_echoes(self, z):
        """A new connection to z's first port is served."""
        with socket.create_connection(("127.0.0.1", z.ports[0]), timeout=5) as s:
            s.sendall(b"ok")
            self.assertEqual(zgtest.recv_exact(s, 2), b"ok")

    def assert_reload_fails(self, z, why):
        """A SIGHUP whose reload fails for why: the workers stay, and serve."""
        before = z.workers()
        z.send(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: "reload failed" in z.output()), z.output())
        self.assertIn(why, z.output())
        self.assertEqual(z.workers(), before)
        self.assert_echoes(z)

    def test_two_workers_pinned_to_distinct_cpus(self):
        if (os.cpu_count() or 1) < 2:
            self.skipTest("needs two CPUs")
        with Zerg(conf(workers=2)) as z:
            ws = z.workers()
            self.assertEqual(len(ws), 2)
            cpus = [cpus_allowed(w) for w in ws]
            for c in cpus:
                self.assertRegex(c, r"^\d+$", f"worker not pinned to one CPU: {c}")
            self.assertNotEqual(cpus[0], cpus[1])
            with open(f"/proc/{ws[0]}/cmdline", "rb") as f:
                self.assertTrue(f.read().startswith(b"zerg: worker"))

    def test_reloads_under_load_lose_nothing(self):
        with Zerg(conf(workers=2)) as z:
            with Load(z.ports[0]) as load:
                load.wait_ops(100)
                for _ in range(20):
                    # one at a time: a SIGHUP sent while the master still
                    # reloads merges with the one pending (signals do not queue)
                    self.assertIn("reload done", z.reload())
                load.wait_ops(load.ops + 100)  # the new workers serve
            self.assertEqual(load.errors, [])
            self.assertEqual(z.output().count("reload done"), 20, z.output())

    def test_reload_applies_new_settings_to_new_connections(self):
        with Zerg(conf(workers=1)) as z:
            old = socket.create_connection(("127.0.0.1", z.ports[0]))
            # a round trip first: until the old worker has accepted it, the
            # connection waits in the queue, and the new worker may take it
            old.sendall(b"o")
            self.assertEqual(zgtest.recv_exact(old, 1), b"o")
            rewrite(z, conf(workers=1, idle="200ms"))
            z.send(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: "reload done" in z.output()), z.output())
            new = socket.create_connection(("127.0.0.1", z.ports[0]))
            new.settimeout(3)
            self.assertEqual(new.recv(1), b"", "new connection did not get the new idle_timeout")
            time.sleep(0.3)  # the point: idle past the new 200ms, the old connection lives
            old.sendall(b"x")
            self.assertEqual(zgtest.recv_exact(old, 1), b"x", "old connection was cut")
            old.close()

    def test_broken_config_keeps_workers(self):
        with Zerg(conf(workers=2)) as z:
            with open(z.conf, "a") as f:
                f.write("bogus_key: 1\n")
            self.assert_reload_fails(z, 'unknown key "bogus_key"')

    def started_main(self, z):
        """Wait until zerg's main() holds SIGHUP back (its first act)."""
        def held():
            with open(f"/proc/{z.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("SigBlk:"):
                        return int(line.split()[1], 16) & (1 << (signal.SIGHUP - 1))
            return 0
        self.assertTrue(wait_for(held, timeout=10, step=0.0002))

    def test_signals_while_starting_wait_for_the_master(self):
        """A SIGHUP or SIGTERM that arrives while zerg is still reading its
        configuration is acted on once the master runs; it kills nothing."""
        z = Zerg(conf(workers=1), wait=False)
        z.start()
        self.started_main(z)
        for _ in range(5):
            z.send(signal.SIGHUP)
        z.wait_listening()
        self.assert_echoes(z)
        self.assertEqual(z.stop(), 0)
        z = Zerg(conf(workers=1), wait=False)
        z.start()
        self.started_main(z)
        z.send(signal.SIGTERM)
        self.assertEqual(z.proc.wait(10), 0)  # a clean stop, not death by signal
        self.assertIn("exiting", z.output())
        z.stop()

    def test_broken_module_on_disk_keeps_workers(self):
        mods = tempfile.mkdtemp(prefix="zgmods-")
        shutil.copy(os.path.join(zgtest.ZERG_MODULES, "echo.so"), os.path.join(mods, "echo.so"))
        with Zerg(conf(workers=1, modules=mods)) as z:
            with open(os.path.join(mods, "echo.so"), "wb") as f:
                f.write(b"not an ELF file")
            self.assert_reload_fails(z, "module echo: cannot load")

    def test_killed_worker_is_respawned_on_its_cpu(self):
        # plain fds, so ss can tell which worker holds which client
        with Zerg(conf(workers=2, extra="uring: {{ fixed_files: false }}\n")) as z:
            with Load(z.ports[0], persistent=8, churn=0) as load:
                ws = z.wait_workers(2)

                def holding():
                    h = {w: client_ports_of(w, z.ports[0]) for w in ws}
                    return h if sum(len(p) for p in h.values()) == 8 else None
                held = wait_until(holding, 10, "the workers to hold the 8 clients")
                victim = ws[0] if held[ws[0]] else ws[1]  # one that holds clients
                cpu = cpus_allowed(victim)
                victim_ports = held[victim]
                t0 = time.monotonic()
                os.kill(victim, signal.SIGKILL)
                survivor = ws[1] if victim == ws[0] else ws[0]
                new = wait_for(lambda: [w for w in z.workers() if w not in (survivor, victim)], 2.0)
                self.assertTrue(new, "no worker respawned")
                self.assertTrue(wait_for(lambda: cpus_allowed(new[0]) == cpu, 1.0),
                                cpus_allowed(new[0]))
                self.assertLess(time.monotonic() - t0, 1.0)
                self.assertIn("killed by signal 9", z.output())
            # only the killed worker's connections were cut
            cut = {int(e.split()[1].rstrip(":")) for e in load.errors}
            self.assertTrue(victim_ports, "no worker held a connection")
            self.assertEqual(cut, victim_ports, load.errors)

    def kill_and_await_respawn(self, z, w):
        """SIGKILL worker w; returns (the delay the master announced in ms,
        the seconds until its successor ran, the successor's pid)."""
        mark = z.log_mark()
        t0 = time.monotonic()
        os.kill(w, signal.SIGKILL)
        new = wait_until(lambda: [p for p in z.workers() if p != w], 10, f"a worker after {w}",
                         step=0.002, detail=lambda: z.log_since(mark))
        took = time.monotonic() - t0
        line = z.wait_log("respawning in", since=mark)
        # the successor shows in /proc as soon as it is forked, before the
        # master logs its start: wait for that line too, so that a log mark
        # the caller takes next does not see it
        z.wait_log(f"started (pid {new[0]},", since=mark)
        return int(re.search(r"respawning in (\d+) ms", line).group(1)), took, new[0]

    def test_respawn_backs_off(self):
        """A worker that keeps dying soon after its start is respawned later
        each time: the delays between respawns grow."""
        with Zerg(conf(workers=1)) as z:
            (w,) = z.wait_workers(1)
            announced, took = [], []
            for _ in range(4):
                ms, dt, w = self.kill_and_await_respawn(z, w)
                announced.append(ms)
                took.append(dt)
            out = f"announced {announced} ms, took {took} s:\n{z.output()}"
            self.assertEqual(announced, sorted(set(announced)), out)  # growing
            self.assertGreaterEqual(announced[-1], 800, out)
            for ms, dt in zip(announced, took):
                self.assertGreaterEqual(dt, ms / 1000, out)  # the master waited as it said
            self.assertEqual(took, sorted(took), out)
            self.assertGreater(took[-1] - took[0], 0.5, out)
            self.assert_echoes(z)

    def test_reload_during_backoff_adds_no_worker(self):
        """A reload while a respawn waits out its back-off cancels it: the new
        generation's workers are all there is, and they start with no
        crashes counted against them."""
        with Zerg(conf(workers=1)) as z:
            (w,) = z.wait_workers(1)
            for _ in range(2):  # two quick deaths: the next respawn waits longer
                _, _, w = self.kill_and_await_respawn(z, w)
            mark = z.log_mark()
            os.kill(w, signal.SIGKILL)
            ms = int(re.search(r"respawning in (\d+) ms", z.wait_log("respawning in", since=mark)).group(1))
            self.assertGreaterEqual(ms, 400, z.output())
            self.assertIn("reload done", z.reload())
            (new,) = z.wait_workers(1)
            # the point: past the cancelled respawn's time, still one worker
            self.assertTrue(holds(lambda: z.workers() == [new], ms / 1000 + 0.3),
                            f"{z.workers()}:\n{z.log_since(mark)}")
            self.assertEqual(z.log_since(mark).count("started"), 1, z.log_since(mark))
            # and a later generation's worker does not inherit the crash count
            self.assertIn("reload done", z.reload())
            (w,) = z.wait_workers(1)
            ms, _, _ = self.kill_and_await_respawn(z, w)
            self.assertLessEqual(ms, 200, z.output())

    def test_graceful_stop_finishes_a_transfer(self):
        data = os.urandom(64 << 20)
        with Zerg(conf(workers=1)) as z:
            s = socket.create_connection(("127.0.0.1", z.ports[0]))
            got = bytearray()

            def writer():
                for i in range(0, len(data), 1 << 16):
                    s.sendall(data[i:i + (1 << 16)])

            t = threading.Thread(target=writer)
            t.start()
            while len(got) < (4 << 20):
                got += s.recv(1 << 20)
            z.send(signal.SIGQUIT)
            s.settimeout(30)
            while len(got) < len(data):
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                got += chunk
            t.join()
            s.close()
            self.assertEqual(len(got), len(data))
            self.assertTrue(bytes(got) == data, "transfer corrupted")
            self.assertEqual(z.proc.wait(15), 0)

    def test_shared_listen_socket(self):
        """listen_sockets: shared serves from one socket per address, across
        reloads too (per_worker, the default, is what the other tests use)."""
        with Zerg(conf(workers=2, extra="listen_sockets: shared\n")) as z:
            with Load(z.ports[0], persistent=4, churn=1) as load:
                load.wait_ops(20)
                for _ in range(3):
                    z.reload()
                    load.wait_ops(load.ops + 20)
            self.assertEqual(load.errors, [])
            self.assertEqual(z.output().count("reload done"), 3)

            def sockets():  # the master's fds change while old workers leave
                n = 0
                for fd in os.listdir(f"/proc/{z.proc.pid}/fd"):
                    try:
                        n += "socket" in os.readlink(f"/proc/{z.proc.pid}/fd/{fd}")
                    except FileNotFoundError:
                        pass
                return n
            self.assertEqual(wait_for(lambda: sockets() == 1, 5) and sockets(), 1,
                             "one listening socket expected")

    def test_reopen_logs(self):
        with Zerg(conf(workers=1)) as z:
            log = os.path.join(z.tmp, "error.log")
            os.rename(log, log + ".1")
            z.send(signal.SIGUSR1)
            wait_until(lambda: os.path.exists(log), 10, "the master to reopen its error log")
            self.assertIn("reload done", z.reload())
            with open(log + ".1") as f:
                self.assertNotIn("reloading", f.read())

    def test_hundred_reloads_leak_nothing(self):
        with Zerg(conf(workers=2)) as z:
            master = z.proc.pid
            # asleep in its signal wait: done with starting the workers
            wait_until(lambda: zgtest.proc_state(master) == "S", 10, "the master to go idle")
            fds0, rss0 = zgtest.fd_count(master), zgtest.rss_kb(master)
            for i in range(100):
                z.reload()
            self.assertEqual(z.output().count("reload done"), 100)
            z.wait_workers(2, 15)  # the old generations have left
            wait_until(lambda: zgtest.fd_count(master) <= fds0, 5, f"the master's fds back to {fds0}",
                       detail=lambda: zgtest.fd_count(master))
            self.assertEqual(zgtest.fd_count(master), fds0)
            if os.environ.get("ZERG_SANITIZERS") != "1":  # ASan's quarantine keeps freed memory
                self.assertLess(zgtest.rss_kb(master) - rss0, 8 * 1024)
            self.assertEqual([w for w in z.workers() if zgtest.proc_state(w) == "Z"], [])
            self.assert_echoes(z)


if __name__ == "__main__":
    zgtest.main()

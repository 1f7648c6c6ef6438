"""Echo module through the real zerg binary: integrity, concurrency,
backpressure, resets, leaks, timeouts and hot-path allocations."""
import glob
import hashlib
import os
import re
import select
import selectors
import socket
import struct
import tempfile
import threading
import time
import unittest

import zgtest
from zgtest import Zerg, in_parallel

ECHO = """
load_modules: [echo]
{extra}
servers:
  - listen: ["127.0.0.1:{{port0}}", "[::1]:{{port0}}"]
    module: echo
    echo: {{{{ idle_timeout: {idle} }}}}
"""


def echo_conf(extra="", idle="60s"):
    return ECHO.format(extra=extra.replace("{", "{{").replace("}", "}}"), idle=idle)


def roundtrip(sock, payload):
    sock.sendall(payload)
    return zgtest.recv_exact(sock, len(payload))


def transfer(host, port, data, chunk=1 << 16):
    """Send data from a thread while reading the echo; returns what came back."""
    s = socket.create_connection((host, port))
    err = []

    def writer():
        try:
            for i in range(0, len(data), chunk):
                s.sendall(data[i:i + chunk])
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=writer)
    t.start()
    got = zgtest.recv_exact(s, len(data), timeout=60)
    t.join()
    s.close()
    if err:
        raise err[0]
    return got


def idle_fds(z, w, timeout=10.0):
    """Worker w's fd count once it holds no connection on z's port (none
    open server-side: the harness's start-up probe closed)."""
    zgtest.wait_until(lambda: not zgtest.tcp_peers(z.ports[0]), timeout,
                      "the worker to close every connection",
                      detail=lambda: zgtest.tcp_peers(z.ports[0]))
    return zgtest.fd_count(w)


def assert_fds_back(w, base, timeout=10.0):
    """Worker w's fds come back to base (a reset connection leaves ss at
    once, its descriptor when zerg has seen the reset). It waits for one
    reading equal to base: a wait for "at most base" followed by a second
    reading failed once under the sanitizers, the second reading off base
    and the message's readings back on it. A count that stays off base
    fails after timeout."""
    zgtest.wait_until(lambda: zgtest.fd_count(w) == base, timeout, f"the worker's fds back to {base}",
                      detail=lambda: zgtest.fd_count(w))


def worker_pid(z):
    ws = z.workers()
    assert len(ws) == 1, ws
    return ws[0]


class EchoTest(unittest.TestCase):
    def test_roundtrip_ipv4_and_ipv6(self):
        with Zerg(echo_conf()) as z:
            for host in ("127.0.0.1", "::1"):
                with socket.create_connection((host, z.ports[0])) as s:
                    for size in (1, 100, 4096, 100000):
                        payload = os.urandom(size)
                        self.assertEqual(roundtrip(s, payload), payload)

    def test_16mib_one_connection(self):
        data = os.urandom(16 << 20)
        with Zerg(echo_conf()) as z:
            got = transfer("127.0.0.1", z.ports[0], data)
        self.assertEqual(len(got), len(data))
        self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(data).hexdigest())

    def test_16mib_with_send_zc(self):
        data = os.urandom(16 << 20)
        with Zerg(echo_conf("uring: { send_zc_loopback: true, send_zc_threshold: 4k }")) as z:
            got = transfer("127.0.0.1", z.ports[0], data)
            self.assertIn("send-zc", z.output())
        self.assertEqual(hashlib.sha256(got).digest(), hashlib.sha256(data).digest())

    def test_16mib_without_fixed_files_or_incremental(self):
        data = os.urandom(16 << 20)
        extra = "uring: { fixed_files: false, incremental: false, buffers: 64, buffer_size: 4k }"
        with Zerg(echo_conf(extra)) as z:
            got = transfer("::1", z.ports[0], data)
        self.assertEqual(hashlib.sha256(got).digest(), hashlib.sha256(data).digest())

    def test_buffers_run_dry_under_many_streams(self):
        """64 receive buffers for 48 connections streaming at once: the ring
        runs dry again and again (ENOBUFS), grows its target, and every byte
        still comes back in order."""
        extra = "uring: { buffers: 64, buffer_size: 4k }"
        streams = [os.urandom((1 << 20) + i * 777) for i in range(48)]
        results = [None] * len(streams)
        with Zerg(echo_conf(extra)) as z:
            def run(i):
                try:
                    results[i] = transfer("127.0.0.1", z.ports[0], streams[i], chunk=1 << 15)
                except OSError as e:
                    results[i] = e
            in_parallel(run, len(streams), 120)
            z.stop()
            m = re.search(r"exiting: .* (\d+) enobufs", z.output())
            self.assertTrue(m, z.output())
            self.assertGreater(int(m.group(1)), 0, "the ring never ran dry: the test tests nothing")
        for i, got in enumerate(results):
            self.assertIsInstance(got, (bytes, bytearray), f"stream {i}: {got}")
            self.assertTrue(got == streams[i], f"stream {i} corrupted")

    def test_500_concurrent_connections(self):
        n, rounds = 500, 4
        with Zerg(echo_conf()) as z:
            sel = selectors.DefaultSelector()
            conns = []
            for i in range(n):
                s = socket.create_connection(("127.0.0.1", z.ports[0]))
                s.setblocking(False)
                conns.append(s)
            state = {}
            for i, s in enumerate(conns):
                msg = struct.pack("!I", i) * (64 + i % 500)
                state[s] = {"msg": msg, "got": bytearray(), "round": 0}
                s.send(msg)
                sel.register(s, selectors.EVENT_READ)
            done = 0
            deadline = time.monotonic() + 60
            while done < n and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=1):
                    s = key.fileobj
                    st = state[s]
                    chunk = s.recv(1 << 16)
                    self.assertTrue(chunk, "server closed a connection")
                    st["got"] += chunk
                    if len(st["got"]) >= len(st["msg"]):
                        self.assertEqual(bytes(st["got"]), st["msg"])
                        st["round"] += 1
                        st["got"] = bytearray()
                        if st["round"] == rounds:
                            sel.unregister(s)
                            done += 1
                        else:
                            s.send(st["msg"])
            self.assertEqual(done, n)
            for s in conns:
                s.close()

    def test_slow_reader_is_bounded(self):
        """A client that writes much and reads nothing: zerg stops reading."""
        with Zerg(echo_conf()) as z:
            w = worker_pid(z)
            base = zgtest.rss_kb(w)
            s = socket.create_connection(("127.0.0.1", z.ports[0]))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            s.setblocking(False)
            data = os.urandom(1 << 20)
            sent = 0
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and sent < (256 << 20):
                try:
                    sent += s.send(data)
                except BlockingIOError:  # the point: 5 s of trying, zerg must stop reading
                    select.select([], [s], [], 0.05)
            # both directions' socket buffers are full and zerg has paused
            grown = zgtest.rss_kb(w) - base
            self.assertLess(sent, 64 << 20, "zerg kept reading without bound")
            self.assertLess(grown, 32 * 1024, f"worker RSS grew by {grown} kB")
            # the stream is intact once the client reads
            s.setblocking(True)
            got = zgtest.recv_exact(s, sent, timeout=30)
            self.assertEqual(len(got), sent)
            s.close()

    def test_stalled_readers_do_not_starve_the_worker(self):
        """32 clients that send 4 MiB each and read nothing, with 256 receive
        buffers (4 MiB): each may queue output_high (256k) of echo, together
        more than the pool. Another client is still echoed at once."""
        stalled = []

        def stall(port):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stalled.append(s)
            s.settimeout(2)
            try:
                s.connect(("127.0.0.1", port))
                s.sendall(b"x" * (4 << 20))
            except OSError:
                pass  # zerg stopped reading: expected

        with Zerg(echo_conf("uring: { buffers: 256 }")) as z:
            try:
                in_parallel(lambda _: stall(z.ports[0]), 32, 10)
                s = socket.create_connection(("127.0.0.1", z.ports[0]), timeout=5)
                self.assertEqual(roundtrip(s, b"hello\n"), b"hello\n")
                s.close()
            finally:
                for s in stalled:
                    s.close()

    def test_connect_disconnect_cycles_leak_nothing(self):
        """10,000 short connections: fds back to baseline, no spinning."""
        extra = "uring: { fixed_files: false }"
        with Zerg(echo_conf(extra)) as z:
            w = worker_pid(z)
            base_fds = idle_fds(z, w)
            for i in range(10000):
                s = socket.create_connection(("127.0.0.1", z.ports[0]))
                if i % 10 == 0:
                    s.sendall(b"ping")
                    self.assertEqual(zgtest.recv_exact(s, 4), b"ping")
                s.close()
            assert_fds_back(w, base_fds)
            t0 = zgtest.cpu_ticks(w)
            time.sleep(1.0)  # the point: a second idle, and the worker uses no CPU
            self.assertLessEqual(zgtest.cpu_ticks(w) - t0, 2, "worker is spinning while idle")

    def test_fixed_slots_are_recycled(self):
        """With 64 fixed-file slots, 3,000 connections only work if every
        slot comes back."""
        extra = "worker_connections: 64"
        with Zerg(echo_conf(extra)) as z:
            for i in range(3000):
                with socket.create_connection(("127.0.0.1", z.ports[0]), timeout=5) as s:
                    s.sendall(b"x")
                    self.assertEqual(zgtest.recv_exact(s, 1), b"x", f"connection {i}")
            w = worker_pid(z)
            t0 = zgtest.cpu_ticks(w)
            time.sleep(1.0)  # the point: a second idle, and the worker uses no CPU
            self.assertLessEqual(zgtest.cpu_ticks(w) - t0, 2)

    def test_abrupt_resets(self):
        with Zerg(echo_conf("uring: { fixed_files: false }")) as z:
            w = worker_pid(z)
            base_fds = idle_fds(z, w)
            blob = os.urandom(1 << 20)
            for i in range(200):
                s = socket.create_connection(("127.0.0.1", z.ports[0]))
                try:
                    s.sendall(blob[: (i % 8 + 1) * 65536])
                except OSError:
                    pass
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()  # RST while zerg is echoing
            assert_fds_back(w, base_fds)
            with socket.create_connection(("127.0.0.1", z.ports[0])) as s:
                self.assertEqual(roundtrip(s, b"still here"), b"still here")

    def test_sqpoll_ring(self):
        with Zerg(echo_conf("uring: { sqpoll: true }")) as z:
            with socket.create_connection(("127.0.0.1", z.ports[0])) as s:
                for size in (10, 70000):
                    payload = os.urandom(size)
                    self.assertEqual(roundtrip(s, payload), payload)

    def test_out_of_descriptors_backs_off(self):
        """EMFILE on accept pauses accepting on a timer (no spin) and resumes
        once descriptors are free again."""
        extra = "worker_rlimit_nofile: 64\nuring: { fixed_files: false }"
        with Zerg(echo_conf(extra)) as z:
            w = worker_pid(z)
            conns = []
            for _ in range(80):
                s = socket.create_connection(("127.0.0.1", z.ports[0]))
                s.sendall(b"x")
                conns.append(s)
            z.wait_log("retrying in")  # out of descriptors: accepting paused
            t0 = zgtest.cpu_ticks(w)
            time.sleep(1.0)  # the point: a second out of descriptors, and no spinning
            self.assertLessEqual(zgtest.cpu_ticks(w) - t0, 5, "spinning on EMFILE")
            for s in conns[:40]:
                s.close()
            for s in conns[40:]:  # the queued ones are served once fds are free
                self.assertEqual(zgtest.recv_exact(s, 1, timeout=10), b"x")
                s.close()

    def test_idle_connections_do_not_hold_up_a_busy_one(self):
        """Batched waits are sized by the busy connections, not the open
        ones: one client among 120 idle ones gets its answers at once, not
        after batch_wait_usec (20 ms here) each."""
        with Zerg(echo_conf("uring: { batch_wait_usec: 20000, batch_size: 64 }")) as z:
            idle = [socket.create_connection(("127.0.0.1", z.ports[0])) for _ in range(120)]
            s = socket.create_connection(("127.0.0.1", z.ports[0]))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.assertEqual(roundtrip(s, b"warm"), b"warm")
            t0 = time.monotonic()
            for i in range(50):
                msg = b"%08d" % i
                self.assertEqual(roundtrip(s, msg), msg)
            took = time.monotonic() - t0
            self.assertLess(took, 0.5, "50 round trips took %.3f s" % took)
            for c in idle + [s]:
                c.close()

    def test_idle_timeout_closes(self):
        with Zerg(echo_conf(idle="300ms")) as z:
            s = socket.create_connection(("127.0.0.1", z.ports[0]))
            t0 = time.monotonic()
            s.settimeout(5)
            self.assertEqual(s.recv(10), b"")
            took = time.monotonic() - t0
            self.assertGreater(took, 0.25)
            self.assertLess(took, 2.0)

    @unittest.skipIf(os.environ.get("ZERG_SANITIZERS") == "1", "the sanitizers own malloc")
    def test_no_allocation_on_warm_connections(self):
        shim = os.path.join(os.environ.get("ZERG_BUILDDIR", "."), "tests/.libs/alloc_count.so")
        if not os.path.exists(shim):
            self.skipTest("alloc_count.so not built")
        adir = tempfile.mkdtemp(prefix="zgalloc-")
        os.environ["ZG_ALLOC_DIR"] = adir
        os.environ["LD_PRELOAD"] = shim
        try:
            z = Zerg(echo_conf())
            z.start()
        finally:
            del os.environ["LD_PRELOAD"]
        try:
            w = worker_pid(z)
            path = os.path.join(adir, str(w))

            def allocs():
                with open(path, "rb") as f:
                    return struct.unpack("Q", f.read(8))[0]

            conns = [socket.create_connection(("127.0.0.1", z.ports[0])) for _ in range(50)]
            msg = os.urandom(64)
            for _ in range(20):  # warm up: pools grow to their working size
                for s in conns:
                    self.assertEqual(roundtrip(s, msg), msg)
            before = allocs()
            for _ in range(200):  # 10,000 echoed messages
                for s in conns:
                    self.assertEqual(roundtrip(s, msg), msg)
            after = allocs()
            self.assertEqual(after - before, 0, f"{after - before} allocations on the hot path")
            for s in conns:
                s.close()
        finally:
            z.stop()


if __name__ == "__main__":
    zgtest.main()

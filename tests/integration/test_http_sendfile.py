#!/usr/bin/env python3
"""test_http_sendfile - file answers spliced (api->write_file, sendfile)
through the real zerg: large and small files byte-exact with many clients at
once, from the open file cache too; ranges, HEAD and conditionals; slow
readers; clients that leave mid-file; a file truncated while it is sent.
Each test ends with the worker's descriptors back where they were and the
splice counters in the metrics proving which path the bytes took."""
import hashlib
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zgtest  # noqa: E402
from httptest import HTTP_SERVER, connect, read_response  # noqa: E402
from zgtest import Zerg, in_parallel, wait_until  # noqa: E402

CONF = HTTP_SERVER + """      send_timeout: 30s  # 72 clients read in Python threads: slow when loaded
      keepalive_timeout: 40s
      file_buffer: 64k
      locations:
        - {{ path: /metrics, status: true }}
        - {{ path: /, root: {tmp}/www }}
  - listen: ["127.0.0.1:{port1}"]
    module: http
    http:
      send_timeout: 10s
      open_file_cache_valid: 60s
      locations:
        - {{ path: /, root: {tmp}/www }}
  - listen: ["127.0.0.1:{port2}"]
    module: http
    http:
      send_timeout: 1s
      locations:
        - {{ path: /, root: {tmp}/www }}
"""

SIZES = {"big.bin": 3 * (1 << 20) + 4321, "mid.bin": 200 * 1024 + 7, "small.bin": 1000,
         "edge.bin": 64 * 1024}


def asking(port, path, timeout=20):
    """A connection with a small receive buffer (the server's splices into
    it have to wait for the client) that asked for path."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    return s


def parallel(target, n, timeout=60):
    """target(i) for i in range(n) in threads of their own; what any of them
    raised fails the caller."""
    errors = []

    def run(i):
        try:
            target(i)
        except Exception as e:  # noqa: BLE001 - handed to the test thread
            errors.append(f"{i}: {e!r}")

    in_parallel(run, n, timeout)
    if errors:
        raise AssertionError(f"{len(errors)} of {n} failed: " + "; ".join(errors[:5]))


def get(s, path, extra=b""):
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n")
    status, hdrs, body, rest = read_response(s)
    assert not rest, rest[:100]
    return status, hdrs, body


class Sendfile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.z = Zerg(CONF)
        www = os.path.join(cls.z.tmp, "www")
        os.makedirs(www)
        cls.data = {}
        for name, size in SIZES.items():
            cls.data[name] = os.urandom(size)
            with open(os.path.join(www, name), "wb") as f:
                f.write(cls.data[name])
        cls.www = www
        cls.z.start()
        (cls.w,) = cls.z.wait_workers(1)
        cls.port, cls.cport = cls.z.ports[0], cls.z.ports[1]
        cls.pipes0 = cls.fds(cls)[1]  # the worker's own, before any file answer
        # warm up: pipes the pool keeps idle, the cache's entries
        parallel(lambda i: cls.fetch_all(cls.port if i % 2 else cls.cport), 8)

    @classmethod
    def tearDownClass(cls):
        cls.z.stop()

    @classmethod
    def fetch_all(cls, port, rounds=1):
        with connect(port, timeout=20) as s:
            for _ in range(rounds):
                for name in SIZES:
                    status, _, body = get(s, "/" + name)
                    assert status == 200, status
                    assert hashlib.sha256(body).digest() == hashlib.sha256(
                        cls.data[name]).digest(), name

    def metrics(self):
        with connect(self.port) as s:
            _, _, body = get(s, "/metrics")
        out = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name = line.split("{", 1)[0].split(" ", 1)[0]
                out[name] = out.get(name, 0) + float(line.rsplit(" ", 1)[1])
        return out

    def fds(self):
        """(the worker's descriptors other than pipes, its pipes)."""
        d = f"/proc/{self.w}/fd"
        kinds = [os.readlink(os.path.join(d, n)).startswith("pipe:") for n in os.listdir(d)]
        return len(kinds) - sum(kinds), sum(kinds)

    def setUp(self):
        wait_until(lambda: not zgtest.tcp_peers(self.port) and not zgtest.tcp_peers(self.cport),
                   10, "earlier connections to close")
        self.fds0 = self.fds()[0]
        self.m0 = self.metrics()

    def assert_clean(self):
        """The worker's descriptors are back (no file or socket left; of the
        pipes, only the pool's idle ones: at most 4, two ends each) and it
        still serves."""
        most = self.pipes0 + 2 * 4
        wait_until(lambda: self.fds()[0] == self.fds0 and self.fds()[1] <= most, 10,
                   f"worker fds back to {self.fds0} and at most {most} pipe ends",
                   detail=lambda: self.fds())
        self.assertEqual(self.z.workers(), [self.w], self.z.output()[-2000:])
        self.fetch_all(self.port)

    def spliced(self):
        """(splices, bytes) since setUp."""
        m = self.metrics()
        return (m["zerg_sends_splice_total"] - self.m0["zerg_sends_splice_total"],
                m["zerg_sends_splice_bytes_total"] - self.m0["zerg_sends_splice_bytes_total"])

    def test_many_clients_byte_exact(self):
        parallel(lambda i: self.fetch_all(self.cport if i % 4 == 0 else self.port, 3), 24)
        splices, nbytes = self.spliced()
        # every answer of 64k and more was spliced: the cache's too
        # (the small file never: below sendfile_min)
        self.assertEqual(nbytes, 24 * 3 * sum(n for n in SIZES.values() if n >= 64 * 1024))
        self.assertGreater(splices, 24 * 3 * 2)
        self.assert_clean()

    def test_ranges_head_conditionals(self):
        big = self.data["big.bin"]
        for port in (self.port, self.cport):
            with connect(port) as s:
                status, h, body = get(s, "/big.bin", b"Range: bytes=1000-2500000\r\n")
                self.assertEqual(status, 206)
                self.assertEqual(h["content-range"], f"bytes 1000-2500000/{len(big)}")
                self.assertEqual(body, big[1000:2500001])
                status, _, body = get(s, "/big.bin", b"Range: bytes=-70000\r\n")
                self.assertEqual((status, body), (206, big[-70000:]))
                status, _, body = get(s, "/big.bin", b"Range: bytes=5-9\r\n")
                self.assertEqual((status, body), (206, big[5:10]))
                s.sendall(b"HEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                status, h, body, _ = read_response(s, head=True)
                self.assertEqual((status, h["content-length"], body), (200, str(len(big)), b""))
                status, h, _ = get(s, "/big.bin")
                lm = h["last-modified"].encode()
                status, _, body = get(s, "/big.bin", b"If-Modified-Since: " + lm + b"\r\n")
                self.assertEqual((status, body), (304, b""))
                status, _, body = get(s, "/mid.bin")  # the connection still serves
                self.assertEqual(body, self.data["mid.bin"])
        # the 5-byte range is below sendfile_min; HEAD and 304 have no body
        self.assertEqual(self.spliced()[1],
                         2 * (2499001 + 70000 + len(big) + len(self.data["mid.bin"])))
        self.assert_clean()

    def slow_read(self, i):
        with asking(self.port, "/big.bin") as s:
            buf = b""
            while b"\r\n\r\n" not in buf or len(buf) < buf.index(b"\r\n\r\n") + 4 + len(
                    self.data["big.bin"]):
                d = s.recv(65536)
                if not d:
                    break
                buf += d
                time.sleep(0.003)
            body = buf[buf.index(b"\r\n\r\n") + 4:]
            assert body == self.data["big.bin"], (i, len(body))

    def test_slow_readers(self):
        parallel(self.slow_read, 6)
        self.assertEqual(self.spliced()[1], 6 * len(self.data["big.bin"]))
        self.assert_clean()

    def test_pipes_run_out(self):
        """More answers at once than the worker has pipes (64): the others
        take the copying path, every answer whole."""
        wide = os.path.join(self.www, "wide.bin")
        size = 8 << 20  # more than a socket buffer: the splices wait
        with open(wide, "wb") as f:
            f.truncate(size)
        self.addCleanup(os.unlink, wide)
        socks = [asking(self.port, "/wide.bin", 60) for _ in range(72)]
        wait_until(lambda: len(zgtest.tcp_peers(self.port)) == 72, 10, "72 connections")
        time.sleep(0.5)  # every request taken

        def read_all(i):  # all at once: each answer keeps moving (send_timeout)
            buf = bytearray(1 << 20)
            with socks[i] as s:
                got = b""
                while b"\r\n\r\n" not in got:
                    got += s.recv(65536)
                rest = got[got.index(b"\r\n\r\n") + 4:]
                assert rest.strip(b"\0") == b"", i
                body = len(rest)
                while body < size:
                    n = s.recv_into(buf)
                    assert n, f"{i}: closed after {body} of {size} bytes"
                    assert bytes(buf[:n]).strip(b"\0") == b"", i
                    body += n
                assert body == size, (i, body)

        parallel(read_all, len(socks), timeout=120)
        nbytes = self.spliced()[1]
        self.assertGreaterEqual(nbytes, 64 * size)
        self.assertLess(nbytes, 72 * size)
        self.assert_clean()

    def test_clients_leave_mid_file(self):
        def leave(i):
            s = connect(self.port if i % 3 else self.cport)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
            s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
            got = 0
            while got < 100000 * (i % 4):
                got += len(s.recv(65536))
            if i % 2:  # a reset rather than a FIN
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()

        parallel(leave, 24)
        self.assert_clean()

    def test_send_timeout_between_writes(self):
        """send_timeout bounds the time between two writes, not the whole
        answer: a client that reads steadily gets a file that takes it
        several send_timeouts to read."""
        huge = os.path.join(self.www, "steady.bin")
        with open(huge, "wb") as f:
            f.truncate(48 << 20)
        self.addCleanup(os.unlink, huge)
        t0 = time.monotonic()
        with asking(self.z.ports[2], "/steady.bin") as s:
            n = 0
            while n < (48 << 20) + 100:
                d = s.recv(65536)
                if not d:
                    break
                if n // 65536 != (n + len(d)) // 65536:
                    time.sleep(0.005)  # about 13 MB/s: 1 MiB in 80 ms
                n += len(d)
            self.assertGreater(n, 48 << 20)
        self.assertGreater(time.monotonic() - t0, 2.0)  # two send_timeouts
        self.assert_clean()

    def test_never_reading_clients_time_out(self):
        """send_timeout closes connections whose splice into the socket
        waits for a peer that never reads (an answer larger than the
        socket buffers can hold)."""
        huge = os.path.join(self.www, "huge.bin")
        with open(huge, "wb") as f:
            f.truncate(64 << 20)  # sparse: the page cache's zero pages
        self.addCleanup(os.unlink, huge)
        socks = []
        for _ in range(4):
            socks.append(asking(self.z.ports[2], "/huge.bin", 10))
        time.sleep(2.5)
        for s in socks:
            with s:
                n = 0
                try:
                    while True:
                        d = s.recv(65536)
                        if not d:
                            break
                        n += len(d)
                except ConnectionResetError:
                    pass
                self.assertLess(n, 64 << 20)
        self.assert_clean()

    def test_file_truncated_while_sent(self):
        path = os.path.join(self.www, "shrinks.bin")
        size = 8 << 20
        with open(path, "wb") as f:
            f.write(os.urandom(size))
        try:
            with asking(self.port, "/shrinks.bin", 10) as s:
                buf = s.recv(65536)
                self.assertTrue(buf.startswith(b"HTTP/1.1 200"), buf[:100])
                os.truncate(path, 1 << 20)
                while True:  # the answer ends short: the connection closes
                    try:
                        d = s.recv(65536)
                    except ConnectionResetError:
                        break
                    if not d:
                        break
                    buf += d
                self.assertLess(len(buf), size)
        finally:
            os.unlink(path)
        self.assert_clean()

    def test_off_switch(self):
        z = Zerg(CONF.replace("file_buffer: 64k", "file_buffer: 64k\n      sendfile: false")
                 .replace("{tmp}/www", self.www))
        with z:
            with connect(z.ports[0]) as s:
                _, _, body = get(s, "/big.bin")
                self.assertEqual(body, self.data["big.bin"])
                _, _, body = get(s, "/metrics")
            self.assertIn(b"\nzerg_sends_splice_total 0\n", body)


if __name__ == "__main__":
    unittest.main()

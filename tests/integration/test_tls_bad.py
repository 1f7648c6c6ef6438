#!/usr/bin/env python3
"""test_tls_bad - bad TLS input through the real zerg (beside test_tls.py's
garbage, truncation and close_notify cases): binary garbage and an
oversized record before and after the handshake, a client that stalls in
the middle of its handshake while another is served, a TLS 1.2
renegotiation attempt (refused), compression and 0-RTT off, and a flood of
handshakes held to max_handshakes. Each ends only its own connection, with
one info line in the log (the flood: a warning a second), never a crash, a
hang or a spin; the failure metrics count each by reason. And a PROXY
protocol header in front of TLS."""
import os
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_tls  # noqa: E402  (certificates and TLS helpers)
import test_tls_resume  # noqa: E402  (the metrics)
import zgtest  # noqa: E402
from zgtest import Zerg  # noqa: E402


def setUpModule():
    test_tls.setUpModule()


def tearDownModule():
    test_tls.tearDownModule()


def conf(tls_extra="", top=""):
    return top + """load_modules: [echo, http]
servers:
  - listen: ["127.0.0.1:{port0}"]
    module: echo
    echo: {{ idle_timeout: 2s }}
""" + test_tls.tls_block(tls_extra).replace("{", "{{").replace("}", "}}") + """
  - listen: ["127.0.0.1:{port1}"]
    module: http
    http:
      locations:
        - {{ path: /metrics, status: true }}
"""


def failures(port):
    """The TLS series of the status page: {(name, labels text): value}."""
    return test_tls_resume.metrics(port)


def closed(s, timeout=10):
    """Read until the server closes s (an alert may come first): the bytes."""
    s.settimeout(timeout)
    data = b""
    while True:
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            return data
        if not d:
            return data
        data += d


def echo_ok(port):
    s = test_tls.tls_connect(port)
    s.sendall(b"ping")
    got = s.recv(4)
    s.close()
    return got == b"ping"


def client_hello():
    """The first flight of a real TLS 1.3 client."""
    obj = test_tls.client_context().wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO(),
                                              server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


class BadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.z = Zerg(conf("      handshake_timeout: 1s\n"))
        cls.z.start()
        cls.port, cls.status = cls.z.ports[0], cls.z.ports[1]

    @classmethod
    def tearDownClass(cls):
        cls.z.stop()

    def one_line(self, mark, text):
        """Exactly one info line holding text since mark."""
        line = self.z.wait_log(text, since=mark)
        self.assertIn("[info]", line)
        time.sleep(0.2)
        self.assertEqual(self.z.log_since(mark).count(text), 1, self.z.log_since(mark))

    def test_binary_garbage_instead_of_client_hello(self):
        before = failures(self.status)
        mark = self.z.log_mark()
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(bytes(range(256)) * 4)
            closed(s)
        self.one_line(mark, "TLS: handshake failed")
        after = failures(self.status)
        key = ("zerg_tls_handshake_failures_total", 'reason="protocol"')
        self.assertEqual(after[key], before[key] + 1, after)
        self.assertTrue(echo_ok(self.port))

    def test_oversized_record_before_and_after_the_handshake(self):
        mark = self.z.log_mark()
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(b"\x16\x03\x01\xff\xff" + b"\x01" * 4096)  # a 64 KiB ClientHello record
            closed(s)
        self.one_line(mark, "TLS: handshake failed")
        mark = self.z.log_mark()
        raw, obj, inc, out = test_tls.handshaken(self.port)
        raw.sendall(b"\x17\x03\x03\x48\x01" + b"\x00" * 18433)  # above 2^14 + 256
        closed(raw)
        raw.close()
        self.one_line(mark, "TLS: read failed")
        self.assertTrue(echo_ok(self.port))

    def test_stall_mid_handshake_while_another_is_served(self):
        before = failures(self.status)
        mark = self.z.log_mark()
        stalled = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        stalled.sendall(client_hello())  # then never the client's Finished
        start = time.monotonic()
        ticks = zgtest.cpu_ticks(self.z.workers()[0])
        self.assertTrue(echo_ok(self.port))  # served meanwhile
        closed(stalled)
        self.assertLess(time.monotonic() - start, 5)
        stalled.close()
        self.assertLess(zgtest.cpu_ticks(self.z.workers()[0]) - ticks, 50, "the worker spun")
        self.one_line(mark, "no complete handshake within handshake_timeout")
        key = ("zerg_tls_handshake_failures_total", 'reason="timeout"')
        self.assertEqual(failures(self.status)[key], before[key] + 1)

    def test_tls12_renegotiation_refused(self):
        mark = self.z.log_mark()
        p = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{self.port}",
                              "-tls1_2", "-CAfile", test_tls.cert("ca.pem")],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        try:
            p.stdin.write(b"hello\n")
            p.stdin.flush()
            time.sleep(0.5)
            p.stdin.write(b"R\n")  # s_client's command to renegotiate
            p.stdin.flush()
            out = p.communicate(timeout=10)[0].decode(errors="replace")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertIn("RENEGOTIATING", out)
        self.assertIn("no renegotiation", out)
        self.one_line(mark, "TLS: read failed")
        self.assertTrue(echo_ok(self.port))

    def test_no_compression_no_early_data(self):
        path = os.path.join(self.z.tmp, "sess.pem")
        early = os.path.join(self.z.tmp, "early.txt")
        with open(early, "w") as f:
            f.write("early\n")
        rc, out = test_tls.s_client(self.port, "-sess_out", path, "-ign_eof", stdin=b"ping\n")
        self.assertIn("Compression: NONE", out)
        self.assertIn("Max Early Data: 0", out)
        rc, out = test_tls.s_client(self.port, "-sess_in", path, "-early_data", early, "-ign_eof")
        self.assertIn("Reused, TLSv1.3", out)
        self.assertNotIn("Early data was accepted", out)
        self.assertIn("Early data was not sent", out)


class Flood(unittest.TestCase):
    def test_max_handshakes_bounds_a_flood(self):
        with Zerg(conf("      handshake_timeout: 2s\n", top="max_handshakes: 4\n")) as z:
            def in_progress():
                return failures(z.ports[1])[("zerg_tls_handshakes_in_progress", "")]
            # the start's probe of the port has gone (it counts while it lasts)
            zgtest.wait_until(lambda: in_progress() == 0, 10, "no handshake in progress")
            mark = z.log_mark()
            held = [socket.create_connection(("127.0.0.1", z.ports[0]), timeout=10)
                    for _ in range(4)]
            zgtest.wait_until(lambda: in_progress() == 4, 10, "four handshakes in progress")
            extra = []
            for _ in range(6):
                s = socket.create_connection(("127.0.0.1", z.ports[0]), timeout=10)
                extra.append(s)
            for s in extra:  # closed at once, long before handshake_timeout
                start = time.monotonic()
                closed(s, timeout=5)
                self.assertLess(time.monotonic() - start, 1.5)
                s.close()
            line = z.wait_log("max_handshakes (4) in progress", since=mark)
            self.assertIn("[warn]", line)
            self.assertEqual(z.log_since(mark).count("max_handshakes (4)"), 1)
            m = failures(z.ports[1])
            self.assertEqual(m[("zerg_tls_handshakes_refused_total", "")], 6, m)
            self.assertEqual(m[("zerg_tls_handshakes_in_progress", "")], 4, m)
            for s in held:  # handshake_timeout frees the places
                closed(s)
                s.close()
            zgtest.wait_until(lambda: in_progress() == 0, 10, "no handshake in progress")
            self.assertTrue(echo_ok(z.ports[0]))



class ProxyHeaderFirst(unittest.TestCase):
    """proxy_protocol on a TLS block: the header in the clear, then TLS."""

    def hello_after_header(self, port, header, together):
        """A TLS 1.3 handshake after header (in one segment with the
        ClientHello when together), then an echo."""
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = test_tls.client_context().wrap_bio(inc, out, server_hostname="localhost")
        first = True
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                hello = out.read()
                if first and not together:
                    raw.sendall(header)
                    time.sleep(0.1)
                raw.sendall((header if first and together else b"") + hello)
                first = False
                d = raw.recv(65536)
                if not d:
                    raise AssertionError("closed during the handshake")
                inc.write(d)
        obj.write(b"ping")
        raw.sendall(out.read())
        got = b""
        while b"ping" not in got:
            d = raw.recv(65536)
            if not d:
                break
            inc.write(d)
            try:
                got += obj.read(4096)
            except ssl.SSLWantReadError:
                pass
        raw.close()
        return got

    def test_header_then_handshake(self):
        text = conf().replace("    module: echo\n", "    module: echo\n    proxy_protocol: true\n", 1)
        with Zerg(text) as z:
            header = b"PROXY TCP4 10.9.8.7 10.0.0.1 1111 443\r\n"
            for together in (False, True):
                self.assertEqual(self.hello_after_header(z.ports[0], header, together), b"ping")
            mark = z.log_mark()
            with socket.create_connection(("127.0.0.1", z.ports[0]), timeout=10) as s:
                s.sendall(header + bytes(range(256)))
                closed(s)
            line = z.wait_log("TLS: handshake failed", since=mark)
            self.assertIn("from 10.9.8.7:1111", line)
            self.assertIn("[info]", line)


if __name__ == "__main__":
    zgtest.main()

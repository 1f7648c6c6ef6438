#!/usr/bin/env python3
"""test_tls_proxy - the proxy module over TLS through the real zerg, in front
of redis-server started by the test: a proxy block with tls: terminates TLS
(redis-cli --tls, and Python's ssl), one with upstream_tls re-encrypts to a
redis that listens with TLS only (tls-port), one does both; a 4 MiB value
goes through each byte-exact; an upstream whose certificate does not match
the name is refused with one log line. The certificates are made at test
time with the openssl CLI (test_tls_upstream.make_certs)."""
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zgtest  # noqa: E402
from zgtest import Zerg, recv_exact  # noqa: E402
from test_tls_upstream import make_certs  # noqa: E402

CERTS = None


def setUpModule():
    global CERTS
    CERTS = tempfile.mkdtemp(prefix="zgtlsproxy-")
    make_certs(CERTS)


def tearDownModule():
    shutil.rmtree(CERTS, ignore_errors=True)


def cert(name):
    return os.path.join(CERTS, name)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis(*args):
    return subprocess.Popen(["redis-server", "--save", "", "--appendonly", "no",
                             "--bind", "127.0.0.1", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def resp(*words):
    out = b"*%d\r\n" % len(words)
    for w in words:
        out += b"$%d\r\n%s\r\n" % (len(w), w)
    return out


def read_line(s):
    line = b""
    while not line.endswith(b"\r\n"):
        d = s.recv(1)
        if not d:
            raise AssertionError(f"closed after {line!r}")
        line += d
    return line


def set_get(s, key, value):
    """SET then GET of value on the RESP connection s: what GET returned."""
    s.sendall(resp(b"SET", key, value))
    assert read_line(s) == b"+OK\r\n"
    s.sendall(resp(b"GET", key))
    head = read_line(s)
    assert head.startswith(b"$"), head
    n = int(head[1:])
    data = recv_exact(s, n + 2, timeout=30)
    return data[:n]


def client_tls(port):
    ctx = ssl.create_default_context(cafile=cert("ca.pem"))
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def proxy_block(port, upstream, tls_front=False, upstream_tls=None, check=None):
    text = f'  - listen: ["127.0.0.1:{{{port}}}"]\n    module: proxy\n'
    if tls_front:
        text += ("    tls:\n      certificates:\n"
                 f"        - {{{{ certificate: {cert('good.pem')}, key: {cert('leaf.key')} }}}}\n")
    if check:
        text += (f'    proxy:\n      upstream:\n        servers: ["{upstream}"]\n'
                 f"        health_check: {{{{ {check} }}}}\n")
    else:
        text += f'    proxy:\n      upstream: ["{upstream}"]\n'
    if upstream_tls:
        text += f"      upstream_tls: {{{{ {upstream_tls} }}}}\n"
    return text


class ProxyTls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which("redis-server"):
            raise unittest.SkipTest("redis-server not installed")
        cls.plain_port, cls.tls_port = free_port(), free_port()
        cls.plain = redis("--port", str(cls.plain_port))
        cls.secure = redis("--port", "0", "--tls-port", str(cls.tls_port),
                           "--tls-cert-file", cert("good.pem"), "--tls-key-file", cert("leaf.key"),
                           "--tls-ca-cert-file", cert("ca.pem"), "--tls-auth-clients", "no")
        zgtest.wait_port("127.0.0.1", cls.plain_port)
        zgtest.wait_port("127.0.0.1", cls.tls_port)
        ca = f"ca: {cert('ca.pem')}"
        cls.z = Zerg("load_modules: [proxy]\nservers:\n"
                     + proxy_block("port0", f"127.0.0.1:{cls.plain_port}", tls_front=True)
                     + proxy_block("port1", f"localhost:{cls.tls_port}", upstream_tls=ca)
                     + proxy_block("port2", f"localhost:{cls.tls_port}", True, upstream_tls=ca)
                     + proxy_block("port3", f"localhost:{cls.tls_port}",
                                   upstream_tls=ca + ", server_name: other.example")
                     + proxy_block("port4", f"127.0.0.1:{cls.tls_port}",
                                   upstream_tls="verify: off")
                     + proxy_block("port5", f"localhost:{cls.tls_port}", upstream_tls=ca,
                                   check='interval: 100ms, timeout: 1s, send: "PING\\r\\n", '
                                         'expect: "+PONG"'))
        cls.z.start()
        cls.value = os.urandom(4 << 20)

    @classmethod
    def tearDownClass(cls):
        cls.z.stop()
        for r in (cls.plain, cls.secure):
            r.terminate()
            r.wait()

    def need_tls_cli(self):
        if not shutil.which("redis-cli") or "--tls" not in subprocess.run(
                ["redis-cli", "--help"], stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT).stdout.decode():
            self.skipTest("redis-cli without TLS")

    def redis_cli(self, port, *args):
        r = subprocess.run(["redis-cli", "--tls", "--cacert", cert("ca.pem"), "--sni", "localhost",
                            "-h", "127.0.0.1", "-p", str(port), *args],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        return r.stdout.decode(errors="replace").strip()

    def test_terminates_tls_in_front_of_redis(self):
        self.need_tls_cli()
        self.assertEqual(self.redis_cli(self.z.ports[0], "PING"), "PONG")
        self.assertEqual(self.redis_cli(self.z.ports[0], "SET", "k0", "v0"), "OK")
        self.assertEqual(self.redis_cli(self.z.ports[0], "GET", "k0"), "v0")

    def test_terminated_large_value_byte_exact(self):
        with client_tls(self.z.ports[0]) as s:
            self.assertEqual(set_get(s, b"big0", self.value), self.value)

    def test_reencrypts_to_a_tls_only_redis(self):
        with socket.create_connection(("127.0.0.1", self.z.ports[1]), timeout=30) as s:
            self.assertEqual(set_get(s, b"big1", self.value), self.value)

    def test_tls_on_both_sides(self):
        with client_tls(self.z.ports[2]) as s:
            self.assertEqual(set_get(s, b"big2", self.value), self.value)
        self.need_tls_cli()
        self.assertEqual(self.redis_cli(self.z.ports[2], "SET", "k2", "v2"), "OK")
        self.assertEqual(self.redis_cli(self.z.ports[2], "GET", "k2"), "v2")

    def test_verify_off(self):
        """No ca: the system's store does not know the test CA, but nothing
        is verified."""
        with socket.create_connection(("127.0.0.1", self.z.ports[4]), timeout=30) as s:
            self.assertEqual(set_get(s, b"small4", b"x" * 100), b"x" * 100)

    def test_health_checks_speak_tls(self):
        """A check's PING in clear would fail on the TLS-only redis and mark
        the server down after a few rounds."""
        self.assertTrue(zgtest.holds(lambda: "is down" not in self.z.log_since(0), 1.0),
                        self.z.log_since(0))
        with socket.create_connection(("127.0.0.1", self.z.ports[5]), timeout=30) as s:
            self.assertEqual(set_get(s, b"small5", b"y" * 100), b"y" * 100)

    def test_wrong_name_refused_and_logged(self):
        mark = self.z.log_mark()
        with socket.create_connection(("127.0.0.1", self.z.ports[3]), timeout=30) as s:
            s.sendall(resp(b"PING"))
            try:
                data = s.recv(100)
            except ConnectionResetError:
                data = b""
            self.assertEqual(data, b"")
        line = self.z.wait_log("hostname mismatch", since=mark)
        self.assertIn(f"127.0.0.1:{self.tls_port}", line)
        self.assertIn("server_name other.example", line)
        self.assertEqual(self.z.log_since(mark).count("hostname mismatch"), 1)


if __name__ == "__main__":
    zgtest.main()

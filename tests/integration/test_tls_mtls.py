#!/usr/bin/env python3
"""test_tls_mtls - mutual TLS: a tls: block's client_ca and verify_client.
on: a client certificate from the CA is required (none, or one from another
CA, fails the handshake with one info line); optional: every client is
served and $ssl_client_verify says SUCCESS, FAILED:reason or NONE; the
subject reaches $ssl_client_s_dn; client_ca is re-read at a reload, and a
missing one fails zerg -t and the reload with a line naming it."""
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
from tlscerts import check_conf, make_ca, make_leaf  # noqa: E402
from zgtest import Zerg  # noqa: E402

CERTS = None


def setUpModule():
    global CERTS
    CERTS = tempfile.mkdtemp(prefix="zgmtls-")
    make_ca(CERTS, "ca", "/CN=zerg mtls server CA")
    make_leaf(CERTS, "server", "ca", "/CN=localhost", ["localhost"])
    make_ca(CERTS, "clients", "/CN=zerg clients CA")
    make_leaf(CERTS, "alice", "clients", "/O=Zerg Test/CN=alice", client=True)
    make_ca(CERTS, "other", "/CN=another CA")
    make_leaf(CERTS, "mallory", "other", "/CN=mallory", client=True)


def tearDownModule():
    shutil.rmtree(CERTS, ignore_errors=True)


def cert(name):
    return os.path.join(CERTS, name)


def block(port, verify, client_ca):
    return f"""  - listen: ["127.0.0.1:{{{port}}}"]
    module: http
    tls:
      certificates:
        - {{{{ certificate: {cert('server.pem')}, key: {cert('server.key')} }}}}
      client_ca: {client_ca}
      verify_client: {verify}
    http:
      access_log:
        path: {{tmp}}/access.log
        format: "$ssl_client_verify|$ssl_client_s_dn|$request_uri"
        flush: 100ms
      locations:
        - {{{{ path: =/hello, return: {{{{ status: 200, body: "hello" }}}} }}}}
"""


def conf(client_ca):
    return ("load_modules: [http]\nservers:\n" + block("port0", "on", client_ca)
            + block("port1", "optional", client_ca))


def curl(port, path, who=None):
    extra = ["--cert", cert(who + ".pem"), "--key", cert(who + ".key")] if who else []
    r = subprocess.run(["curl", "-sS", "--cacert", cert("ca.pem"), "--max-time", "20",
                        "--resolve", f"localhost:{port}:127.0.0.1", *extra,
                        f"https://localhost:{port}{path}"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return r.returncode, r.stdout


class Mtls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="zgmtls-ca-")
        cls.ca = os.path.join(cls.dir, "client-ca.pem")
        shutil.copy(cert("clients.pem"), cls.ca)
        cls.z = Zerg(conf(cls.ca))
        cls.z.start()
        cls.on, cls.optional = cls.z.ports[0], cls.z.ports[1]

    @classmethod
    def tearDownClass(cls):
        cls.z.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def logged(self, uri):
        path = os.path.join(self.z.tmp, "access.log")

        def line():
            try:
                with open(path) as f:
                    return next((l.rstrip("\n") for l in f if l.endswith("|" + uri + "\n")), None)
            except OSError:
                return None
        return zgtest.wait_until(line, 10, "the access log line of " + uri)

    def refused(self, port, uri, who, why):
        mark = self.z.log_mark()
        rc, body = curl(port, uri, who)
        self.assertNotEqual(rc, 0, body)
        self.assertNotIn(b"hello", body)
        self.z.wait_log(why, since=mark)
        lines = [l for l in self.z.log_since(mark).splitlines() if "TLS:" in l]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("[info]", lines[0])

    def test_on_accepts_a_certificate_from_the_ca(self):
        self.assertEqual(curl(self.on, "/hello?on-alice", "alice"), (0, b"hello"))
        self.assertEqual(self.logged("/hello?on-alice"),
                         "SUCCESS|CN=alice,O=Zerg Test|/hello?on-alice")

    def test_on_refuses_a_client_without_a_certificate(self):
        self.refused(self.on, "/hello?on-none", None, "certificate")

    def test_on_refuses_a_certificate_of_another_ca(self):
        self.refused(self.on, "/hello?on-mallory", "mallory", "certificate verify failed")

    def test_optional_serves_everyone_and_says_how_it_went(self):
        for who, uri, want in ((None, "/hello?opt-none", "NONE|-"),
                               ("alice", "/hello?opt-alice", "SUCCESS|CN=alice,O=Zerg Test"),
                               ("mallory", "/hello?opt-mallory", "FAILED:")):
            self.assertEqual(curl(self.optional, uri, who), (0, b"hello"), who)
            self.assertTrue(self.logged(uri).startswith(want), self.logged(uri))
        self.assertIn("|CN=mallory|", self.logged("/hello?opt-mallory"))


SNI_CONF = """load_modules: [http]
servers:
  - listen: ["127.0.0.1:{{port0}}"]
    module: http
    server_name: [open.test]
    tls:
      certificates:
        - {{{{ certificate: {server}, key: {key} }}}}
    http:
      locations:
        - {{{{ path: =/who, return: {{{{ status: 200, body: "open" }}}} }}}}
  - listen: ["127.0.0.1:{{port0}}"]
    module: http
    server_name: [secure.test]
    tls:
      certificates:
        - {{{{ certificate: {server}, key: {key} }}}}
      client_ca: {ca}
      verify_client: on
    http:
      locations:
        - {{{{ path: =/who, return: {{{{ status: 200, body: "secure" }}}} }}}}
"""


def sni_request(port, sni, host, who=None):
    """(status line, body) of GET /who with SNI sni and Host host, or None
    when the handshake or the request fails."""
    ctx = ssl.create_default_context(cafile=cert("ca.pem"))
    ctx.check_hostname = False  # the certificate names localhost
    if who:
        ctx.load_cert_chain(cert(who + ".pem"), cert(who + ".key"))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                ctx.wrap_socket(raw, server_hostname=sni) as s:
            s.sendall(f"GET /who HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                      .encode())
            data = zgtest.recv_exact(s, 1 << 16)
    except (ssl.SSLError, OSError):
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    return (head.split(b"\r\n")[0].decode(), body.decode()) if data else None


class SniVerify(unittest.TestCase):
    """verify_client on one of the blocks sharing an address: the SNI name
    brings its verification, and a Host cannot reach it without it."""

    def test_the_sni_blocks_verification_applies(self):
        text = SNI_CONF.format(server=cert("server.pem"), key=cert("server.key"),
                               ca=cert("clients.pem"))
        with Zerg(text) as z:
            port = z.ports[0]
            self.assertEqual(sni_request(port, "open.test", "open.test"),
                             ("HTTP/1.1 200 OK", "open"))
            self.assertIsNone(sni_request(port, "secure.test", "secure.test"))
            self.assertIsNone(sni_request(port, "secure.test", "secure.test", "mallory"))
            self.assertEqual(sni_request(port, "secure.test", "secure.test", "alice"),
                             ("HTTP/1.1 200 OK", "secure"))
            for sni in ("open.test", None):
                got = sni_request(port, sni, "secure.test")
                self.assertEqual(got[0], "HTTP/1.1 421 Misdirected Request", sni)


def chain_sent(port):
    """How many certificates the server sends on a new connection."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-showcerts",
                        "-servername", "localhost"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    return r.stdout.count(b"-----BEGIN CERTIFICATE-----")


class ServerChain(unittest.TestCase):
    """A certificate file without its issuers: the chain sent is what the
    block's store (client_ca) holds of them, as OpenSSL builds it; zerg
    builds it once at load instead of at every handshake."""

    def test_client_ca_that_issued_the_certificate_completes_the_chain(self):
        text = ("load_modules: [http]\nservers:\n" + block("port0", "optional", cert("ca.pem"))
                + block("port1", "optional", cert("clients.pem")))
        with Zerg(text) as z:
            for _ in range(2):  # every handshake, not only the first
                self.assertEqual(chain_sent(z.ports[0]), 2)
                self.assertEqual(chain_sent(z.ports[1]), 1)


class Reload(unittest.TestCase):
    def test_client_ca_is_reread_and_a_missing_one_fails_the_reload(self):
        d = tempfile.mkdtemp(prefix="zgmtls-r-")
        try:
            ca = os.path.join(d, "client-ca.pem")
            shutil.copy(cert("clients.pem"), ca)
            with Zerg(conf(ca)) as z:
                self.assertEqual(curl(z.ports[0], "/hello", "alice"), (0, b"hello"))
                self.assertNotEqual(curl(z.ports[0], "/hello", "mallory")[0], 0)
                shutil.copy(cert("other.pem"), ca)  # now the other CA's clients
                self.assertIn("reload done", z.reload())
                self.assertEqual(curl(z.ports[0], "/hello", "mallory"), (0, b"hello"))
                self.assertNotEqual(curl(z.ports[0], "/hello", "alice")[0], 0)
                os.unlink(ca)
                mark = z.log_mark()
                self.assertIn("reload failed", z.reload())
                self.assertIn(f"client_ca {ca}: cannot read", z.log_since(mark))
                self.assertEqual(curl(z.ports[0], "/hello", "mallory"), (0, b"hello"))
        finally:
            shutil.rmtree(d, ignore_errors=True)


class Check(unittest.TestCase):
    def check(self, tls_extra):
        return check_conf(f"""load_modules: [echo]
servers:
  - listen: ["127.0.0.1:1"]
    module: echo
    tls:
      certificates:
        - {{ certificate: {cert('server.pem')}, key: {cert('server.key')} }}
""" + tls_extra)

    def test_check(self):
        rc, out = self.check(f"      client_ca: {cert('clients.pem')}\n      verify_client: on\n")
        self.assertEqual(rc, 0, out)
        missing = os.path.join(CERTS, "nothere.pem")
        rc, out = self.check(f"      client_ca: {missing}\n      verify_client: on\n")
        self.assertEqual(rc, 1, out)
        self.assertIn(missing, out)
        rc, out = self.check(f"      client_ca: {cert('alice.key')}\n")  # no certificate in it
        self.assertEqual(rc, 1, out)
        self.assertIn(cert("alice.key"), out)
        rc, out = self.check("      verify_client: optional\n")
        self.assertEqual(rc, 1, out)
        self.assertIn("verify_client: needs client_ca", out)
        rc, out = self.check(f"      client_ca: {cert('clients.pem')}\n      verify_client: maybe\n")
        self.assertEqual(rc, 1, out)
        self.assertIn("verify_client: expected off, optional or on", out)


if __name__ == "__main__":
    zgtest.main()

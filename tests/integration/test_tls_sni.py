#!/usr/bin/env python3
"""test_tls_sni - server blocks sharing a TLS address, each with its own
certificate: the ClientHello's SNI picks the block (server_name as a key of
the block, or under http: as before) with the rules of Host (exact,
wildcards), an unknown or absent name gets the default block, the chosen
block's protocols apply, and a request whose Host selects a block of other
TLS settings than the handshake's is answered 421 Misdirected Request."""
import os
import shutil
import socket
import ssl
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zgtest  # noqa: E402
from tlscerts import check_conf, make_ca, make_leaf, openssl  # noqa: E402
from zgtest import Zerg, recv_all  # noqa: E402

CERTS = None


def setUpModule():
    global CERTS
    CERTS = tempfile.mkdtemp(prefix="zgsni-")
    make_ca(CERTS, "ca", "/CN=zerg sni CA")
    make_leaf(CERTS, "a", "ca", "/CN=a.test", ["a.test", "a2.test"])
    make_leaf(CERTS, "b", "ca", "/CN=b.test", ["b.test", "*.b.test"])
    make_leaf(CERTS, "c", "ca", "/CN=c.test", ["c.test"])


def tearDownModule():
    shutil.rmtree(CERTS, ignore_errors=True)


def cert(name):
    return os.path.join(CERTS, name)


def tls(name, extra=""):
    return (f"    tls:\n      certificates:\n"
            f"        - {{{{ certificate: {cert(name + '.pem')}, key: {cert(name + '.key')} }}}}\n"
            + extra)


def block(names, tls_text, who, names_under_http=False):
    key = f"server_name: [{', '.join(names)}]"
    return (f"  - listen: [\"127.0.0.1:{{port0}}\"]\n    module: http\n"
            + ("" if names_under_http else f"    {key}\n") + tls_text
            + "    http:\n" + (f"      {key}\n" if names_under_http else "")
            + f"      locations:\n        - {{{{ path: =/who, return: {{{{ status: 200, "
              f"body: \"{who}\" }}}} }}}}\n")


def conf():
    return ("load_modules: [http]\nservers:\n"
        + block(["a.test"], tls("a"), "a")                      # the default: first
        + block(['"*.b.test"', "b.test"], tls("b", "      protocols: [TLSv1.3]\n"), "b")
        + block(["c.test"], tls("c"), "c", names_under_http=True)  # as configs had it
        + block(["a2.test"], tls("a"), "a2")                    # a's settings exactly
        # another address whose default is its second block
        + block(["a.test"], tls("a"), "a").replace("{port0}", "{port2}")
        + block(["c.test"], tls("c", "    default_server: true\n"), "c").replace("{port0}",
                                                                              "{port2}")
        # plain HTTP blocks on another address: the block's server_name for Host
        + """  - listen: ["127.0.0.1:{port1}"]
    module: http
    server_name: [one.test]
    http:
      locations:
        - {{ path: =/who, return: {{ status: 200, body: "one" }} }}
  - listen: ["127.0.0.1:{port1}"]
    module: http
    server_name: [two.test]
    http:
      locations:
        - {{ path: =/who, return: {{ status: 200, body: "two" }} }}
""")


def served_subject(port, *args):
    r = openssl("s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", cert("ca.pem"), *args,
                stdin=b"")
    out = r.stdout.decode(errors="replace")
    for line in out.splitlines():
        if line.startswith("subject="):
            return line.split("=", 1)[1].replace(" ", ""), out
    return None, out


def request(port, sni, host):
    """The status line and body of GET /who over TLS with SNI sni (None: no
    SNI) and Host host."""
    ctx = ssl.create_default_context(cafile=cert("ca.pem"))
    ctx.check_hostname = False  # the name checked is not always the one sent
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with ctx.wrap_socket(raw, server_hostname=sni) as s:
        s.sendall(f"GET /who HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = recv_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), body.decode()


class Sni(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.z = Zerg(conf())
        cls.z.start()
        cls.port = cls.z.ports[0]

    @classmethod
    def tearDownClass(cls):
        cls.z.stop()

    def test_sni_picks_the_blocks_certificate(self):
        for name, want in (("a.test", "CN=a.test"), ("b.test", "CN=b.test"),
                           ("www.b.test", "CN=b.test"), ("A.Test", "CN=a.test"),
                           ("c.test", "CN=c.test"), ("a2.test", "CN=a.test")):
            got, out = served_subject(self.port, "-servername", name)
            self.assertEqual(got, want, f"{name}: {out}")
            self.assertIn("Verify return code: 0 (ok)", out)

    def test_unknown_or_absent_sni_gets_the_default(self):
        got, out = served_subject(self.port, "-servername", "nowhere.test")
        self.assertEqual(got, "CN=a.test", out)
        got, out = served_subject(self.port, "-noservername")
        self.assertEqual(got, "CN=a.test", out)

    def test_default_server_is_the_default_for_sni(self):
        port = self.z.ports[2]
        for args, want in ((["-servername", "nowhere.test"], "CN=c.test"),
                           (["-noservername"], "CN=c.test"),
                           (["-servername", "a.test"], "CN=a.test")):
            got, out = served_subject(port, *args)
            self.assertEqual(got, want, f"{args}: {out}")

    def test_the_chosen_blocks_protocols_apply(self):
        """b accepts TLS 1.3 only, a (the default) 1.2 as well."""
        got, out = served_subject(self.port, "-servername", "a.test", "-tls1_2")
        self.assertEqual(got, "CN=a.test", out)
        got, out = served_subject(self.port, "-servername", "b.test", "-tls1_2")
        self.assertIsNone(got, out)
        got, out = served_subject(self.port, "-servername", "b.test", "-tls1_3")
        self.assertEqual(got, "CN=b.test", out)

    def test_host_selects_the_block_sni_chose(self):
        for sni, host, who in (("a.test", "a.test", "a"), ("www.b.test", "www.b.test", "b"),
                               ("c.test", "c.test", "c"), (None, "a.test", "a"),
                               (None, "nowhere.test", "a")):
            self.assertEqual(request(self.port, sni, host), ("HTTP/1.1 200 OK", who), sni)

    def test_host_of_other_tls_settings_is_misdirected(self):
        for sni, host in (("a.test", "b.test"), ("b.test", "c.test"), ("c.test", "a.test"),
                          (None, "b.test"), ("nowhere.test", "c.test")):
            status, _ = request(self.port, sni, host)
            self.assertEqual(status, "HTTP/1.1 421 Misdirected Request", (sni, host))

    def test_host_of_the_same_tls_settings_is_served(self):
        """a2 has a's settings exactly: a connection made for one serves both."""
        self.assertEqual(request(self.port, "a.test", "a2.test"), ("HTTP/1.1 200 OK", "a2"))
        self.assertEqual(request(self.port, "a2.test", "a.test"), ("HTTP/1.1 200 OK", "a"))
        self.assertEqual(request(self.port, None, "a2.test"), ("HTTP/1.1 200 OK", "a2"))

    def test_plain_http_blocks_take_the_blocks_server_name(self):
        for host, who in (("one.test", "one"), ("two.test", "two"), ("other.test", "one")):
            with socket.create_connection(("127.0.0.1", self.z.ports[1]), timeout=10) as s:
                s.sendall(f"GET /who HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                          .encode())
                data = zgtest.recv_exact(s, 1 << 16)
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data)
            self.assertTrue(data.endswith(who.encode()), (host, data))


class Config(unittest.TestCase):
    def test_server_name_in_both_places_fails(self):
        body = ("load_modules: [http]\nservers:\n  - listen: [\"127.0.0.1:1\"]\n    module: http\n"
                "    server_name: [a.test]\n    http:\n      server_name: [b.test]\n")
        rc, out = check_conf(body)
        self.assertEqual(rc, 1, out)
        self.assertIn("server_name: set for the block and in its http section", out)

    def test_server_name_needs_a_module_with_virtual_hosts(self):
        body = ("load_modules: [echo]\nservers:\n  - listen: [\"127.0.0.1:1\"]\n    module: echo\n"
                "    server_name: [a.test]\n")
        rc, out = check_conf(body)
        self.assertEqual(rc, 1, out)
        self.assertIn("server_name: module echo has no virtual hosts", out)


if __name__ == "__main__":
    zgtest.main()

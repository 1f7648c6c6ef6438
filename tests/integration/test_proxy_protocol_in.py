"""test_proxy_protocol_in - server blocks with `proxy_protocol: true` through
the real zerg binary: the PROXY protocol header (v1, v2) a load balancer sends
first gives the modules the client's address; a connection without a valid
header is closed before any module sees it."""
import os
import socket
import struct
import time
import unittest

import zgtest
from zgtest import Zerg, recv_exact, wait_for

from httptest import assert_refused, read_response
from test_proxy_helpers import Backend, recv_line, tag_handler

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_tcp4(src, sport, dst, dport, command=0x21):
    body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return SIG + bytes([command, 0x11]) + struct.pack("!H", len(body)) + body


def v1(src, dst="192.0.2.1", sport=5555, dport=80):
    fam = "TCP6" if ":" in src else "TCP4"
    return f"PROXY {fam} {src} {dst} {sport} {dport}\r\n".encode()


def closed_without_answer(test, s, timeout=3.0):
    """The server closes s without sending a byte."""
    s.settimeout(timeout)
    try:
        test.assertEqual(s.recv(100), b"")
    except ConnectionResetError:
        pass



SITE = """worker_processes: 1
load_modules: [echo, http, proxy]
servers:
  - listen: ["127.0.0.1:{port0}"]
    module: echo
    proxy_protocol: true
    proxy_protocol_timeout: 300ms
  - listen: ["127.0.0.1:{port1}", "[::1]:{port1}"]
    module: http
    proxy_protocol: true
    http:
      access_log: {{ path: "{tmp}/access.log", format: "$remote_addr $request_uri $status", flush: 10ms }}
      locations:
        - {{ path: /inside, return: {{ status: 200, body: "in\\n" }}, allow: [203.0.113.0/24, "2001:db8::/32"] }}
        - {{ path: /, return: {{ status: 200, body: "hi\\n" }} }}
  - listen: ["127.0.0.1:{port2}"]
    module: proxy
    proxy:
      proxy_protocol: v2
      upstream: {{ servers: ["127.0.0.1:{port1}"] }}
  - listen: ["127.0.0.1:{port3}"]
    module: proxy
    proxy:
      proxy_protocol: v1
      upstream: {{ servers: ["127.0.0.1:{port1}"] }}
  - listen: ["127.0.0.1:{port4}"]
    module: proxy
    proxy_protocol: true
    proxy:
      proxy_protocol: v2
      upstream: {{ servers: ["127.0.0.1:{port1}"] }}
"""


class ProxyProtocolIn(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.z = Zerg(SITE)
        cls.z.start()

    @classmethod
    def tearDownClass(cls):
        cls.z.stop()

    def access_lines(self):
        path = os.path.join(self.z.tmp, "access.log")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return f.read().splitlines()

    def get(self, header, path, port=None, host="127.0.0.1", source=None):
        s = socket.create_connection((host, port or self.z.ports[1]), timeout=5,
                                     source_address=(source, 0) if source else None)
        s.sendall(header + f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        st, _, body, _ = read_response(s)
        s.close()
        return st, body

    def test_echo_gets_every_byte_after_the_header(self):
        port = self.z.ports[0]
        for head in (v1("203.0.113.7"), v2_tcp4("203.0.113.7", 5555, "192.0.2.1", 80),
                     b"PROXY UNKNOWN\r\n", v2_tcp4("0.0.0.0", 0, "0.0.0.0", 0, command=0x20)):
            payload = os.urandom(70000)
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(head + payload[:1000])  # header and data in one packet
                s.sendall(payload[1000:])
                self.assertEqual(recv_exact(s, len(payload)), payload, head)
            # the header a byte at a time, then the data
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for b in head:
                    s.sendall(bytes([b]))
                    time.sleep(0.001)  # the point: trickled (all within proxy_protocol_timeout)
                s.sendall(b"after")
                self.assertEqual(recv_exact(s, 5), b"after")

    def test_http_sees_the_client_address(self):
        self.assertEqual(self.get(v1("203.0.113.7"), "/inside"), (200, b"in\n"))
        self.assertEqual(self.get(v1("198.51.100.1"), "/inside")[0], 403)
        self.assertEqual(self.get(v1("2001:db8::5", "2001:db8::1"), "/inside", host="::1"),
                         (200, b"in\n"))
        self.assertEqual(self.get(v2_tcp4("203.0.113.9", 1, "192.0.2.1", 80), "/inside")[0], 200)
        # LOCAL (a balancer's health check): the connection's own address
        local = v2_tcp4("0.0.0.0", 0, "0.0.0.0", 0, command=0x20)
        self.assertEqual(self.get(local, "/inside")[0], 403)
        self.assertEqual(self.get(local, "/local"), (200, b"hi\n"))
        want = ["203.0.113.7 /inside 200", "198.51.100.1 /inside 403",
                "2001:db8::5 /inside 200", "203.0.113.9 /inside 200",
                "127.0.0.1 /inside 403", "127.0.0.1 /local 200"]
        self.assertTrue(wait_for(lambda: all(w in self.access_lines() for w in want)),
                        self.access_lines())

    def test_zerg_proxy_to_zerg_http_keeps_the_client(self):
        for port, src in ((self.z.ports[2], "127.0.0.9"), (self.z.ports[3], "127.0.0.10")):
            self.assertEqual(self.get(b"", f"/chain{port}", port=port, source=src), (200, b"hi\n"))
            self.assertTrue(wait_for(lambda: f"{src} /chain{port} 200" in self.access_lines()),
                            self.access_lines())

    def test_a_balancer_in_front_of_zerg_proxy_in_front_of_zerg_http(self):
        # the proxy pauses reading while it connects upstream: the request,
        # in the header's packet, waits for it
        self.assertEqual(self.get(v1("203.0.113.77"), "/hop", port=self.z.ports[4]),
                         (200, b"hi\n"))
        self.assertTrue(wait_for(lambda: "203.0.113.77 /hop 200" in self.access_lines()),
                        self.access_lines())

    def test_connections_without_a_valid_header_are_closed(self):
        port = self.z.ports[1]
        before = len(self.access_lines())
        for data in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
                     b"PROXY TCP9 x\r\n", SIG + b"\x11\x11\x00\x0c" + bytes(12),
                     b"PROXY " + b"x" * 200):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(data)
                closed_without_answer(self, s)
        # the end of the stream, or silence, in the middle of a header
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"PROXY TCP4 1.2.3.4 ")
            s.shutdown(socket.SHUT_WR)
            closed_without_answer(self, s)
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.z.ports[0]), timeout=5) as s:
            s.sendall(b"PROXY TCP4 1.2.3.4 ")
            closed_without_answer(self, s)
        self.assertLess(time.monotonic() - t0, 2.0, "proxy_protocol_timeout is 300ms")
        out = self.z.output()
        http, echo = f"127.0.0.1:{port}: ", f"127.0.0.1:{self.z.ports[0]}: "
        self.assertIn(http + "PROXY protocol: no valid header from 127.0.0.1", out)
        self.assertIn(http + "PROXY protocol: end of stream before a complete header", out)
        self.assertIn(echo + "PROXY protocol: no complete header within proxy_protocol_timeout",
                      out)
        # none of them reached the http module, and it still serves
        self.assertEqual(self.get(v1("203.0.113.7"), "/ok"), (200, b"hi\n"))
        self.assertTrue(wait_for(lambda: "203.0.113.7 /ok 200" in self.access_lines()))
        self.assertEqual(len(self.access_lines()), before + 1, self.access_lines()[before:])


class PausedAtOpen(unittest.TestCase):
    def test_bytes_with_the_header_wait_for_a_module_that_paused(self):
        mods = os.path.join(os.environ.get("ZERG_BUILDDIR", "."), "tests/modules/.libs")
        text = f"""modules_path: {mods}
load_modules: [slow_open]
servers:
  - listen: ["127.0.0.1:{{port0}}"]
    module: slow_open
    proxy_protocol: true
"""
        with Zerg(text) as z:
            # UNKNOWN leaves the connection's own address, which this module,
            # not having asked for client addresses, does not get (family 0)
            for head, family in ((v1("203.0.113.7"), 2), (v1("2001:db8::1", "2001:db8::2"), 10),
                                 (b"PROXY UNKNOWN\r\n", 0)):
                with socket.create_connection(("127.0.0.1", z.ports[0]), timeout=5) as s:
                    s.sendall(head + b"sent with the header")
                    want = f"family {family}\n".encode() + b"sent with the header"
                    self.assertEqual(recv_exact(s, len(want)), want)


class HashBehindABalancer(unittest.TestCase):
    def test_hash_follows_the_client_the_header_names(self):
        bs = [Backend(tag_handler, name=f"s{i}") for i in range(3)]
        servers = ", ".join(f'"{b.addr()}"' for b in bs)
        text = f"""load_modules: [proxy]
servers:
  - listen: ["127.0.0.1:{{port0}}"]
    module: proxy
    proxy_protocol: true
    proxy:
      upstream: {{{{ balance: hash, servers: [{servers}] }}}}
"""

        def reached(client):
            with socket.create_connection(("127.0.0.1", z.ports[0]), timeout=5) as s:
                s.sendall(v1(client))
                return recv_line(s)

        try:
            with Zerg(text) as z:
                clients = [f"198.51.100.{i}" for i in range(1, 61)]
                first = {c: reached(c) for c in clients}
                # every connection comes from 127.0.0.1: only the header's
                # address can spread them, and keep each client on its server
                self.assertEqual(set(first.values()), {"s0", "s1", "s2"}, first)
                for c in clients[:20]:
                    self.assertEqual(reached(c), first[c], c)
        finally:
            for b in bs:
                b.stop()


class Config(unittest.TestCase):
    def test_blocks_sharing_an_address_agree(self):
        text = """load_modules: [http]
servers:
  - listen: ["127.0.0.1:{port0}"]
    module: http
    proxy_protocol: true
    http: {{ server_name: [a] }}
  - listen: ["127.0.0.1:{port0}"]
    module: http
    http: {{ server_name: [b] }}
"""
        assert_refused(self, text, "shares it with proxy_protocol on: the blocks of one "
                                   "address must agree")
        assert_refused(self, text.replace("proxy_protocol: true",
                                          "proxy_protocol: true\n    proxy_protocol_timeout: 0s"),
                       "proxy_protocol_timeout")


if __name__ == "__main__":
    zgtest.main()

"""test_http_proxy_tunnel - a protocol switch (WebSocket) through proxy_pass,
through the real zerg binary: the Upgrade request reaches the upstream with
its fields, the 101 reaches the client, then bytes flow both ways as they
are (1 MiB each way, bytes and a FIN sent before the 101, a half-close, the
upstream closing, the idle timeout), and an upgrade the upstream declines or
a 101 nobody asked for.

The upstream is a small raw server in this process that switches to an
echo when asked for websocket."""
import os
import random
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zgtest  # noqa: E402
from httptest import HTTP_SERVER  # noqa: E402
from httpproxytest import Client, RawUpstream, RawUpstreamTest, request  # noqa: E402

SWITCH = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
          b"Connection: Upgrade\r\nSec-WebSocket-Accept: abc=\r\n\r\n")
WS_HEADERS = (("Upgrade", "websocket"), ("Connection", "Upgrade"),
              ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"))


class Backend(RawUpstream):
    """/ws: 101, "hello", then an echo; at the client's FIN "bye" and a
    close. /ws-late: the same once the test sets release. /ws-close: 101
    then a close. /force101: a 101 to anything. Anything else: 200 "plain"
    with keep-alive."""

    def __init__(self):
        self.heads = []
        self.release = threading.Event()
        super().__init__()

    def answer(self, s, n, k, line, fields, rest):
        self.heads.append((line, fields))
        path = line.split(" ")[1]
        asked = fields.get("upgrade", "").lower() == "websocket"
        if path == "/ws-late" and asked:
            self.release.wait(5)
            path = "/ws"
        if path == "/force101" or (path in ("/ws", "/ws-close") and asked):
            s.sendall(SWITCH + (b"hello" if path == "/ws" else b""))
            if path == "/ws":
                self.echo(s, rest)
            return False
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nplain")
        return True

    def echo(self, s, first):
        if first:
            s.sendall(first)
        while True:
            d = s.recv(65536)
            if not d:
                s.sendall(b"bye")
                s.shutdown(socket.SHUT_WR)
                return
            s.sendall(d)


CONF = HTTP_SERVER + """      locations:
        - path: /
          proxy_pass: "http://127.0.0.1:@BE@"
          proxy_read_timeout: 700ms
"""


class TestProxyTunnel(RawUpstreamTest):
    BACKEND = Backend
    CONF = CONF

    def switch(self, path="/ws", extra=b""):
        c = Client(self.z.ports[0])
        self.addCleanup(c.close)
        c.send(request("GET", path, WS_HEADERS) + extra)
        r = c.head()
        self.assertEqual(r.status, 101, r)
        return c, r

    def test_switch_and_echo_both_ways(self):
        c, r = self.switch()
        self.assertEqual(r.h("upgrade"), "websocket")
        self.assertEqual(r.h("connection").lower(), "upgrade")
        self.assertEqual(r.h("sec-websocket-accept"), "abc=")
        self.assertIsNone(r.h("content-length"))
        self.assertEqual(c.exact(5), b"hello")  # sent with the 101 head
        fields = self.be.heads[0][1]
        self.assertEqual((fields["connection"], fields["upgrade"], fields["sec-websocket-key"],
                          fields["sec-websocket-version"]),
                         ("upgrade", "websocket", "dGhlIHNhbXBsZSBub25jZQ==", "13"))
        data = random.Random(5).randbytes(1 << 20)
        got = bytearray()

        def reader():
            while len(got) < len(data) and c.fill():
                got.extend(c.take(len(c.buf)))
        t = threading.Thread(target=reader)
        t.start()
        for i in range(0, len(data), 50000):
            c.send(data[i:i + 50000])
        t.join(10)
        self.assertTrue(bytes(got) == data, f"{len(got)} of {len(data)} bytes back")

    def test_bytes_sent_before_the_switch_go_through(self):
        c, _ = self.switch(extra=b"early bytes")
        self.assertEqual(c.exact(5 + 11), b"hello" + b"early bytes")

    def test_bytes_and_fin_sent_while_the_upstream_decides_go_through(self):
        # they come while the request waits for its answer: zerg keeps them
        # (and the FIN behind them) until the 101 opens the tunnel
        c = Client(self.z.ports[0])
        self.addCleanup(c.close)
        c.send(request("GET", "/ws-late", WS_HEADERS))
        self.assertTrue(zgtest.wait_for(lambda: self.be.heads, 5), "the upstream got no request")
        c.send(b"late bytes")
        c.s.shutdown(socket.SHUT_WR)
        self.be.release.set()
        r = c.head()
        self.assertEqual(r.status, 101, r)
        self.assertEqual(c.to_close(), b"hello" + b"late bytes" + b"bye")

    def test_half_close_passed_on(self):
        c, _ = self.switch()
        self.assertEqual(c.exact(5), b"hello")
        c.send(b"ping")
        self.assertEqual(c.exact(4), b"ping")
        c.s.shutdown(socket.SHUT_WR)  # the upstream sees a FIN, answers, closes
        self.assertEqual(c.to_close(), b"bye")

    def test_upstream_closing_ends_it(self):
        c, _ = self.switch("/ws-close")
        t0 = time.monotonic()
        self.assertEqual(c.to_close(), b"")
        self.assertLess(time.monotonic() - t0, 2)

    def test_idle_timeout(self):
        c, _ = self.switch()
        self.assertEqual(c.exact(5), b"hello")
        t0 = time.monotonic()
        self.assertEqual(c.to_close(), b"")
        self.assertTrue(0.5 < time.monotonic() - t0 < 3, time.monotonic() - t0)

    def test_upgrade_declined_is_a_plain_answer(self):
        c = Client(self.z.ports[0])
        self.addCleanup(c.close)
        c.send(request("GET", "/nows", WS_HEADERS))
        r = c.response()
        self.assertEqual((r.status, r.body), (200, b"plain"), r)
        c.send(request("GET", "/again"))
        self.assertEqual(c.response().body, b"plain")

    def test_101_nobody_asked_for_is_502(self):
        c = Client(self.z.ports[0])
        self.addCleanup(c.close)
        c.send(request("GET", "/force101"))
        self.assertEqual(c.response().status, 502)


if __name__ == "__main__":
    zgtest.main()

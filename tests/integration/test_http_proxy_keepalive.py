"""test_http_proxy_keepalive - proxy_keepalive through the real zerg binary:
upstream connections kept between requests (and not when the answer or the
default says close), the idle timeout, the pool's bound, a kept connection
the upstream closed meanwhile (sent again on a new one, but not a POST),
the pool emptied when the worker drains, and a kept connection retired
after proxy_keepalive_requests requests or proxy_keepalive_time.

The upstream is a small raw HTTP/1.1 server in this process that numbers its
connections, so a test sees which one served each request."""
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zgtest  # noqa: E402
from zgtest import in_parallel, wait_for  # noqa: E402
from httptest import HTTP_SERVER, assert_refused  # noqa: E402
from httpproxytest import Client, RawUpstream, RawUpstreamTest, request  # noqa: E402


class Backend(RawUpstream):
    """Answers "conn=N" (N: its connection's number) with keep-alive;
    /close answers with Connection: close; /slow waits 300 ms. With
    drop_next set, the next request on a connection that served before is
    answered by closing it (a keep-alive race lost)."""

    def __init__(self):
        self.log = []  # (conn number, request line, Connection field)
        self.drop_next = False
        super().__init__()

    def answer(self, s, n, k, line, fields, rest):
        with self.lock:
            self.log.append((n, line, fields.get("connection")))
            drop = self.drop_next and k > 0
            if drop:
                self.drop_next = False
        if drop:
            return False
        path = line.split(" ")[1]
        if path == "/slow":
            time.sleep(0.3)  # the point: answers that overlap
        body = f"conn={n}".encode()
        extra = "Connection: close\r\n" if path == "/close" else ""
        s.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body)
        return not extra


CONF = HTTP_SERVER + """      locations:
        - path: /ka/
          proxy_pass: "http://127.0.0.1:@BE@/"
          proxy_keepalive: 2
          proxy_keepalive_timeout: 500ms
        - path: /plain/
          proxy_pass: "http://127.0.0.1:@BE@/"
        - path: /ka3/
          proxy_pass: "http://127.0.0.1:@BE@/"
          proxy_keepalive: 2
          proxy_keepalive_requests: 3
        - path: /kat/
          proxy_pass: "http://127.0.0.1:@BE@/"
          proxy_keepalive: 2
          proxy_keepalive_time: 300ms
"""


class TestProxyKeepalive(RawUpstreamTest):
    BACKEND = Backend
    CONF = CONF

    def get(self, path, method="GET", body=None):
        with Client(self.z.ports[0]) as c:
            c.send(request(method, path, (("Connection", "close"),), body))
            return c.response()

    def conn_of(self, r):
        self.assertEqual(r.status, 200, r)
        return int(r.body.split(b"=")[1])

    def test_connection_reused(self):
        conns = {self.conn_of(self.get("/ka/x")) for _ in range(5)}
        self.assertEqual(len(conns), 1, conns)
        # HTTP/1.1 keep-alive upstream: no Connection: close sent
        self.assertEqual({c for _, _, c in self.be.log}, {None})

    def test_without_proxy_keepalive_each_request_has_its_connection(self):
        conns = [self.conn_of(self.get("/plain/x")) for _ in range(3)]
        self.assertEqual(len(set(conns)), 3, conns)
        self.assertEqual({c for _, _, c in self.be.log}, {"close"})

    def test_close_from_upstream_not_kept(self):
        a = self.conn_of(self.get("/ka/close"))
        b = self.conn_of(self.get("/ka/x"))
        self.assertNotEqual(a, b)

    def test_idle_timeout_closes(self):
        a = self.conn_of(self.get("/ka/x"))
        self.assertTrue(wait_for(lambda: self.be.open == 0, 3), "idle connection not closed")
        b = self.conn_of(self.get("/ka/x"))
        self.assertNotEqual(a, b)

    def test_pool_bounded(self):
        rs = []
        in_parallel(lambda _: rs.append(self.get("/ka/slow")), 5, 10)
        self.assertEqual([r.status for r in rs], [200] * 5)
        self.assertEqual(self.be.nconns, 5)
        # two are kept (proxy_keepalive: 2), the other three closed
        self.assertTrue(wait_for(lambda: self.be.open == 2, 2), f"open: {self.be.open}")

    def test_kept_connection_lost_get_sent_again(self):
        a = self.conn_of(self.get("/ka/x"))
        self.be.drop_next = True
        b = self.conn_of(self.get("/ka/y"))
        self.assertNotEqual(a, b)
        # the upstream saw the GET twice: on the kept connection, then anew
        self.assertEqual([n for n, line, _ in self.be.log if "/y" in line], [a, b])

    def test_kept_connection_lost_post_not_sent_again(self):
        self.conn_of(self.get("/ka/x"))
        self.be.drop_next = True
        r = self.get("/ka/p", method="POST", body=b"once")
        self.assertEqual(r.status, 502, r)
        self.assertEqual(len([1 for _, line, _ in self.be.log if "/p" in line]), 1)

    def test_drain_closes_kept_connections(self):
        self.conn_of(self.get("/ka/x"))
        self.assertEqual(self.be.open, 1)
        self.z.send(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: self.be.open == 0, 3), "kept connection not closed")
        self.assertEqual(self.conn_of(self.get("/ka/x")), 2)

    def test_keepalive_requests_retires_a_connection(self):
        conns = [self.conn_of(self.get("/ka3/x")) for _ in range(7)]
        self.assertEqual(len(set(conns[0:3])), 1, conns)
        self.assertEqual(len(set(conns[3:6])), 1, conns)
        self.assertEqual(len(set([conns[0], conns[3], conns[6]])), 3, conns)
        # the first two closed after their third answer; the third is kept
        self.assertTrue(wait_for(lambda: self.be.open == 1, 3), f"open: {self.be.open}")

    def test_keepalive_time_retires_a_connection(self):
        a = self.conn_of(self.get("/kat/x"))
        time.sleep(0.45)  # the point: the connection's proxy_keepalive_time (300 ms) passes
        # kept (parked before 300 ms), then retired after this answer
        b = self.conn_of(self.get("/kat/x"))
        self.assertEqual(a, b)
        self.assertTrue(wait_for(lambda: self.be.open == 0, 3), f"open: {self.be.open}")
        self.assertNotEqual(self.conn_of(self.get("/kat/x")), a)


class TestProxyKeepaliveConfig(unittest.TestCase):
    def test_keys_need_proxy_pass(self):
        for key in ("proxy_keepalive_requests: 5", "proxy_keepalive_time: 1m"):
            assert_refused(self, HTTP_SERVER + "      locations:\n"
                           "        - path: /\n"
                           "          root: /tmp\n"
                           "          " + key + "\n",
                           "proxy_* keys need proxy_pass")

    def test_keepalive_requests_range(self):
        assert_refused(self, HTTP_SERVER + "      locations:\n"
                       "        - path: /\n"
                       "          proxy_pass: \"http://127.0.0.1:1/\"\n"
                       "          proxy_keepalive_requests: 0\n",
                       "proxy_keepalive_requests: 0 is out of range")


if __name__ == "__main__":
    zgtest.main()

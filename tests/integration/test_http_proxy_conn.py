"""test_http_proxy_conn - the http module's proxy_pass through the real zerg
binary, beyond one good exchange: errors (502, 504 on connect and read
timeouts, an upstream closing inside a body, a client going away),
keep-alive and pipelining through the proxy, clients gone before the answer,
many clients at once, the access log, a slow reader of a big response
(bounded memory) and configuration errors.

The upstream, the dead ones and the rest of the scaffolding: httpproxytest."""
import hashlib
import json
import os
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zgtest  # noqa: E402
from zgtest import Zerg, run_zerg, wait_for, wait_until  # noqa: E402
from httptest import HTTP_SERVER, assert_refused  # noqa: E402
import httpproxytest as hp  # noqa: E402
from httpproxytest import (Client, ProxyTest, conf_text, pattern, pattern_iter,  # noqa: E402
                           request, sha, up_requests)
from httpproxytest import setUpModule, tearDownModule  # noqa: E402,F401


class TestErrors(ProxyTest):
    def test_502(self):
        for target in ("/dead/x", "/api/garbage", "/api/headclose", "/api/hangup",
                       "/api/bighead?n=20000", "/api/status20", "/api/status199"):
            with self.subTest(target=target):
                t0 = time.monotonic()
                r = self.get(target)
                self.assertEqual(r.status, 502, r)
                self.assertLess(time.monotonic() - t0, 2.0)

    def test_answer_without_fields(self):
        r = self.get("/api/nofields")
        self.assertEqual((r.status, r.body, r.h("server")), (204, b"", "zerg"), r)

    def test_proxy_buffer_size_is_not_too_small(self):
        r = self.get("/api/bighead?n=12000")
        self.assertEqual((r.status, r.body), (200, b"bighead"), r)
        self.assertEqual(len(r.h("x-big")), 12000)

    def test_504_read_timeout_before_head(self):
        for target, lo in (("/mute/x", 0.9), ("/api/slow?ms=2500", 0.9)):
            with self.subTest(target=target):
                t0 = time.monotonic()
                r = self.get(target)
                dt = time.monotonic() - t0
                self.assertEqual(r.status, 504, r)
                self.assertGreater(dt, lo)
                self.assertLess(dt, 2.3)

    def test_slow_upstream_within_timeout(self):
        r = self.get("/api/slow?ms=300")
        self.assertEqual((r.status, r.body), (200, b"slow 300"), r)

    def test_connect_timeout(self):
        # /deaf/ goes to a listener whose accept queue the test fills: zerg's
        # SYN is dropped and its proxy_connect_timeout (500ms) ends the wait
        if not hp.DEAF.fill():
            self.skipTest("a connect to a full accept queue does not hang here (syncookies?)")
        t0 = time.monotonic()
        r = self.get("/deaf/x")
        dt = time.monotonic() - t0
        self.assertEqual(r.status, 504, r)
        self.assertGreater(dt, 0.45)
        self.assertLess(dt, 1.5)

    def test_upstream_closes_inside_a_body(self):
        c = self.client()
        c.send(request("GET", "/api/truncate"))
        r = c.head()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.h("content-length"), "1000")
        t0 = time.monotonic()
        self.assertTrue(c.closed_soon(3.0), "the client connection stays open after the upstream closed")
        self.assertLess(len(c.buf), 1000)
        self.assertLess(time.monotonic() - t0, 3.0)

    def test_upstream_closes_inside_a_chunked_body(self):
        c = self.client()
        c.send(request("GET", "/api/chunktrunc"))
        r = c.head()
        self.assertEqual(r.status, 200, r)
        self.assertTrue(c.closed_soon(3.0), "the client connection stays open after the upstream closed")
        self.assertNotIn(b"0\r\n\r\n", bytes(c.buf), "a clean end of a body that was cut")

    def test_read_timeout_inside_a_body(self):
        c = self.client()
        c.send(request("GET", "/api/stall"))
        r = c.head()
        self.assertEqual(r.status, 200, r)
        t0 = time.monotonic()
        self.assertTrue(c.closed_soon(3.5), "not closed after the read timeout")
        self.assertLess(len(c.buf), 1000)
        self.assertLess(time.monotonic() - t0, 3.0)

    def test_client_going_away_mid_response(self):
        c = Client(self.port)
        c.send(request("GET", "/api/big?n=%d" % (32 << 20)))
        r = c.head()
        self.assertEqual(r.status, 200, r)
        c.fill(100000)
        c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()  # a reset
        for _ in range(3):
            r = self.get("/api/big?n=100000")
            self.assertEqual((r.status, sha(r.body)), (200, sha(pattern(100000))), r)


class TestConnection(ProxyTest):
    def test_keepalive_reuse(self):
        c = self.client()
        steps = [("GET", "/api/echo?k=1", None), ("GET", "/v2/echo?k=2", None),
                 ("GET", "/api/big?n=100000", None), ("GET", "/api/chunked?n=5000", None),
                 ("GET", "/local", None), ("HEAD", "/api/big?n=1000", None),
                 ("POST", "/api/echo?k=7", b"post body"), ("GET", "/api/status/404", None),
                 ("GET", "/api/echo?k=9", None)]
        for m, target, body in steps:
            with self.subTest(target=target):
                c.send(request(m, target, body=body))
                r = c.response(head_req=(m == "HEAD"))
                self.assertIn(r.status, (200, 404), r)
                if "echo" in target:
                    d = json.loads(r.body)
                    self.assertEqual(d["target"], target.replace("/v2/", "/v1/"))
                    self.assertEqual(d["body"], (body or b"").decode())
                elif target == "/local":
                    self.assertEqual(r.body, b"local")
                elif m == "GET" and "n=" in target:
                    n = int(target.rsplit("=", 1)[1])
                    self.assertEqual(sha(r.body), sha(pattern(n)))
        self.assertFalse(c.eof)

    def test_pipelining_in_order(self):
        c = self.client()
        batch = [request("GET", "/api/slow?ms=300&i=0"), request("GET", "/local"),
                 request("GET", "/v2/echo?i=2"), request("GET", "/api/big?n=70000&i=3"),
                 request("POST", "/api/echo?i=4", body=b"fourth"),
                 request("GET", "/api/chunked?n=3000&i=5"), request("GET", "/local")]
        c.send(b"".join(batch))
        rs = self.responses(c, len(batch))
        self.assertEqual([r.status for r in rs], [200] * len(batch), rs)
        self.assertEqual(rs[0].body, b"slow 300")
        self.assertEqual(rs[1].body, b"local")
        self.assertEqual(json.loads(rs[2].body)["target"], "/v1/echo?i=2")
        self.assertEqual(sha(rs[3].body), sha(pattern(70000)))
        self.assertEqual(json.loads(rs[4].body)["body"], "fourth")
        self.assertEqual(rs[5].body, pattern(3000))
        self.assertEqual(rs[6].body, b"local")

    def test_pipelining_bodies_and_big_responses(self):
        c = self.client()
        chunked = (request("POST", "/api/echo?p=0", (("Transfer-Encoding", "chunked"),))
                   + b"3;e=1\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
        batch = [chunked, request("GET", "/api/big?n=%d&p=1" % (2 << 20)),
                 request("HEAD", "/api/big?n=500&p=2"), request("GET", "/local"),
                 request("GET", "/api/chunked?n=%d&cs=65536&p=4" % (2 << 20)),
                 request("PUT", "/v2/echo?p=5", body=b"x" * 70000), request("GET", "/local")]
        c.send(b"".join(batch))
        rs = self.responses(c, len(batch), heads=(2,))
        self.assertEqual([r.status for r in rs], [200] * len(batch), rs)
        self.assertEqual(json.loads(rs[0].body)["body"], "abcdefg")
        self.assertEqual(sha(rs[1].body), sha(pattern(2 << 20)))
        self.assertEqual((rs[2].h("content-length"), rs[2].body), ("500", b""))
        self.assertEqual(rs[3].body, b"local")
        self.assertEqual(sha(rs[4].body), sha(pattern(2 << 20)))
        d = json.loads(rs[5].body)
        self.assertEqual((d["method"], d["target"], d["body_len"]), ("PUT", "/v1/echo?p=5", 70000))
        self.assertEqual(rs[6].body, b"local")

    def test_pipelined_body_arriving_while_proxying(self):
        # a big pipelined request comes in while the first waits on the upstream
        c = self.client()
        c.send(request("GET", "/api/slow?ms=300") + request("POST", "/api/echo?after=slow", body=b"y" * 70000)
               + request("GET", "/local"))
        rs = self.responses(c, 3)
        self.assertEqual([r.status for r in rs], [200, 200, 200], rs)
        self.assertEqual(rs[0].body, b"slow 300")
        self.assertEqual(json.loads(rs[1].body)["body_len"], 70000)
        self.assertEqual(rs[2].body, b"local")

    def test_requests_arriving_while_the_upstream_answers_late(self):
        # they come in sends of their own while the first waits on the
        # upstream: zerg keeps them, over 16 KiB of them, and answers each
        # in order once the one before is done
        c = self.client()
        c.send(request("GET", "/api/slow?ms=500&late=0"))
        self.assertTrue(wait_for(lambda: up_requests("late=0"), 5), "the upstream got nothing")
        pad = (("X-Pad", "p" * 600),)
        batch = []
        for i in range(1, 31):
            if i % 3 == 0:
                batch.append(request("GET", "/local", pad))
            elif i % 3 == 1:
                batch.append(request("GET", "/api/echo?late=%d" % i, pad))
            else:
                batch.append(request("POST", "/api/echo?late=%d" % i, pad, body=b"b" * 1500))
        for i in range(0, len(batch), 5):
            c.send(b"".join(batch[i:i + 5]))
        rs = self.responses(c, 1 + len(batch))
        self.assertEqual([r.status for r in rs], [200] * len(rs), rs)
        self.assertEqual(rs[0].body, b"slow 500")
        for i, r in enumerate(rs[1:], 1):
            if i % 3 == 0:
                self.assertEqual(r.body, b"local")
            else:
                d = json.loads(r.body)
                self.assertEqual(d["target"], "/api/echo?late=%d" % i)
                self.assertEqual(d["body_len"], 0 if i % 3 == 1 else 1500)

    def test_clients_gone_before_the_upstream_answers(self):
        w = self.workers[0]
        base = zgtest.fd_count(w)
        mute0, slow0 = len(hp.MUTE.conns), hp.SLOW.count("gone")
        cs = []
        for i in range(10):
            for target in ("/mute/gone%d" % i, "/api/slow?ms=400&gone=%d" % i):
                c = Client(self.port)
                c.send(request("GET", target))
                cs.append(c)
        # zerg has them all and waits on the upstreams: the mute one holds
        # ten connections, the other ten slow requests
        wait_until(lambda: len(hp.MUTE.conns) >= mute0 + 10 and hp.SLOW.count("gone") >= slow0 + 10,
                   10, "the twenty requests at their upstreams")
        for c in cs:
            c.close()
        # everything is let go at the latest when the read timeout (1 s) ends
        left = wait_for(lambda: zgtest.fd_count(w) <= base, 4)
        self.assertTrue(left, f"worker fds: {base} before, {zgtest.fd_count(w)} after")
        r = self.get("/api/echo?after=gone")
        self.assertEqual(r.status, 200, r)

    def test_concurrent_clients(self):
        errors = []

        def one(i):
            try:
                with Client(self.port) as c:
                    for j in range(5):
                        n = 1000 * (i + 1) + j
                        c.send(request("GET", "/api/big?n=%d" % n))
                        r = c.response()
                        if r.status != 200 or r.body != pattern(n):
                            errors.append((i, j, r))
                        c.send(request("GET", f"/api/echo?i={i}&j={j}"))
                        if json.loads(c.response().body)["target"] != f"/api/echo?i={i}&j={j}":
                            errors.append((i, j, "echo"))
            except Exception as e:  # noqa: BLE001
                errors.append((i, repr(e)))
        zgtest.in_parallel(one, 20, 30)
        self.assertEqual(errors, [])

    def test_access_log(self):
        self.get("/api/status/404?log=1")
        self.get("/api/echo?log=2")
        self.get("/dead/x?log=3")
        path = os.path.join(self.z.tmp, "access.log")

        def lines():
            try:
                with open(path) as f:
                    text = f.read()
            except OSError:
                return None
            return text if all(f"log={i}" in text for i in (1, 2, 3)) else None
        text = wait_for(lines, 5) or ""
        self.assertIn('"GET /api/status/404?log=1 HTTP/1.1" 404 ', text)
        self.assertIn('"GET /api/echo?log=2 HTTP/1.1" 200 ', text)
        self.assertIn('"GET /dead/x?log=3 HTTP/1.1" 502 ', text)


class TestSlowReader(unittest.TestCase):
    """A client reading a big proxied response slowly: zerg does not take it
    all in from the upstream."""

    def test_rss_bounded(self):
        z = Zerg(conf_text())
        z.start()
        self.addCleanup(z.stop)
        port = z.ports[0]
        ws = z.workers()
        self.assertEqual(len(ws), 1, ws)
        w = ws[0]
        # warm up: a few proxied responses
        with Client(port) as c:
            for _ in range(3):
                c.send(request("GET", "/api/big?n=%d" % (1 << 20)))
                self.assertEqual(len(c.response().body), 1 << 20)
        base = zgtest.rss_kb(w)
        n = 64 << 20
        c = Client(port, rcvbuf=32768)
        self.addCleanup(c.close)
        c.send(request("GET", "/api/big?n=%d" % n, (("Connection", "close"),)))
        # not reading: the upstream would fill zerg up if nothing held it back.
        # Wait until the whole way is full: the client's receive queue, and
        # the upstream blocked in its send (VmHWM below catches a zerg that
        # read on)
        me = c.s.getsockname()[1]
        wait_until(lambda: any(q[0] for q in zgtest.tcp_queues(me))
                   and any(q[1] for q in zgtest.tcp_queues(hp.up_port())), 10,
                   "the client's queue full and the upstream blocked",
                   detail=lambda: (zgtest.tcp_queues(me), zgtest.tcp_queues(hp.up_port())))
        peaks = [zgtest.rss_kb(w)]
        r = c.head()
        self.assertEqual(r.status, 200, r)
        h = hashlib.sha256()
        got = len(c.buf)
        h.update(c.buf)
        c.buf.clear()
        for _ in range(64):  # a slow part: 64 small reads with pauses
            d = c.s.recv(65536)
            if not d:
                break
            h.update(d)
            got += len(d)
            time.sleep(0.003)  # the point: a client that reads slowly
        peaks.append(zgtest.rss_kb(w))
        time.sleep(0.5)  # the point: a pause in reading, where zerg must not fill up
        peaks.append(zgtest.rss_kb(w))
        while got < n:
            d = c.s.recv(1 << 20)
            if not d:
                break
            h.update(d)
            got += len(d)
        self.assertEqual(got, n)
        want = hashlib.sha256()
        for piece in pattern_iter(n):
            want.update(piece)
        self.assertEqual(h.hexdigest(), want.hexdigest())
        with open(f"/proc/{w}/status") as f:
            hwm = [int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:")][0]
        growth = max(peaks + [hwm]) - base
        if os.environ.get("ZERG_SANITIZERS") == "1":
            self.skipTest(f"the sanitizers own malloc (RSS grew {growth} kB)")
        self.assertLess(growth, 40 * 1024, f"RSS base {base} kB, samples {peaks}, peak {hwm} kB")


class TestConfig(unittest.TestCase):
    LOC = HTTP_SERVER + "      locations:\n        - path: /api/\n          proxy_pass: \"%s\"\n"

    def test_valid_proxy_pass_accepted(self):
        for url in ("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1/", "http://127.0.0.1:81/"):
            with self.subTest(url=url):
                z = Zerg(self.LOC % url, wait=False)
                rc, out = run_zerg(["-c", z.conf, "-t"])
                self.assertEqual(rc, 0, out)

    def test_bad_scheme_refused(self):
        for url in ("https://x", "ftp://x"):
            with self.subTest(url=url):
                assert_refused(self, self.LOC % url, "proxy_pass")


if __name__ == "__main__":
    zgtest.main()

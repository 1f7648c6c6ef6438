"""test_http_proxy - the http module's proxy_pass (an nginx-style reverse
proxy in a location) through the real zerg binary, from request to upstream
and back: what the upstream gets (request line, URI with and without a URI
part, headers passed, dropped and set by proxy_set_header, bodies with a
length and chunked, any method) and what the client gets (status, headers,
Content-Length, chunked and close-delimited bodies, HEAD, 1xx dropped, HTTP/1.0
clients and upstreams).

Errors, connections, a slow reader and configuration: test_http_proxy_conn.
The upstream and the rest of the scaffolding: httpproxytest."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zgtest  # noqa: E402
from httpproxytest import (UPSTREAM_DATE, ProxyTest, pattern, request, sha,  # noqa: E402
                           up_port, up_requests)
from httpproxytest import setUpModule, tearDownModule  # noqa: E402,F401


class TestRequestToUpstream(ProxyTest):
    def test_request_line_and_uri_without_uri_part(self):
        for target in ("/api/echo", "/api/echo/x?y=1", "/api/echo/%41b?x=%20y&z", "/api/echo?"):
            with self.subTest(target=target):
                d = self.echo(self.get(target))
                self.assertEqual(d["method"], "GET")
                self.assertEqual(d["target"], target)
                self.assertEqual(d["version"], "HTTP/1.1")

    def test_uri_part_replaces_the_location_prefix(self):
        for target, want in (("/v2/echo/a?b=1", "/v1/echo/a?b=1"), ("/v2/echo", "/v1/echo"),
                             ("/v2/echo/x/y/z.txt?q=a&r=b", "/v1/echo/x/y/z.txt?q=a&r=b")):
            with self.subTest(target=target):
                self.assertEqual(self.echo(self.get(target))["target"], want)

    def test_headers_passed_and_hop_by_hop_dropped(self):
        up = up_port()
        hs = (("Connection", "keep-alive, X-Hop-Custom"), ("Keep-Alive", "timeout=5"),
              ("Proxy-Connection", "keep-alive"), ("TE", "trailers"), ("Upgrade", "foo/1"),
              ("Trailer", "X-T"), ("X-Hop-Custom", "secret"), ("X-Custom", "1"), ("X-Custom", "2"),
              ("User-Agent", "ua/1"), ("Accept", "*/*"), ("Cookie", "a=b; c=d"),
              ("X-Forwarded-For", "10.1.1.1"), ("X-Drop", "kept here"))
        c = self.client()
        c.send(request("GET", "/api/echo?h=1", hs, host="Client.Example:8080"))
        r = c.response()
        d = self.echo(r)
        got = [(k.lower(), v) for k, v in d["headers"]]
        names = [k for k, _ in got]
        self.assertEqual([v for k, v in got if k == "host"], [f"127.0.0.1:{up}"], got)
        self.assertEqual([v for k, v in got if k == "connection"], ["close"], got)
        for gone in ("keep-alive", "proxy-connection", "te", "upgrade", "trailer", "x-hop-custom",
                     "transfer-encoding", "content-length", "expect"):
            self.assertNotIn(gone, names, got)
        self.assertEqual([v for k, v in got if k == "x-custom"], ["1", "2"], got)
        for k, v in (("user-agent", "ua/1"), ("accept", "*/*"), ("cookie", "a=b; c=d"),
                     ("x-forwarded-for", "10.1.1.1"), ("x-drop", "kept here")):
            self.assertEqual([x for n, x in got if n == k], [v], got)
        # the client's connection stays open (it asked for keep-alive)
        c.send(request("GET", "/local", (("Connection", "close"),)))
        self.assertEqual(c.response().body, b"local")

    def test_proxy_set_header(self):
        up = up_port()
        c = self.client()
        c.send(request("GET", "/hdr/echo?q=1", (("X-Forwarded-For", "10.1.1.1"), ("x-drop", "gone"),
                                                ("X-Real-IP", "6.6.6.6"), ("Connection", "close")),
                       host="Client.Example:8080"))
        got = [(k.lower(), v) for k, v in self.echo(c.response())["headers"]]
        want = {"x-real-ip": ["127.0.0.1"], "host": ["client.example"],
                "x-forwarded-for": ["10.1.1.1, 127.0.0.1"], "x-drop": [], "x-scheme": ["http"],
                "x-uri": ["/hdr/echo?q=1"], "x-ph": [f"127.0.0.1:{up}"], "x-added": ["fixed value"],
                "connection": ["close"]}
        for k, v in want.items():
            with self.subTest(header=k):
                self.assertEqual([x for n, x in got if n == k], v, got)
        # without a client X-Forwarded-For: just the address
        got = [(k.lower(), v) for k, v in self.echo(self.get("/hdr/echo?q=2"))["headers"]]
        self.assertEqual([x for n, x in got if n == "x-forwarded-for"], ["127.0.0.1"], got)

    def test_any_method(self):
        for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            with self.subTest(method=m):
                tag = f"/api/echo?m={m}"
                body = f"body of {m}".encode() if m in ("POST", "PUT", "PATCH") else None
                r = self.get(tag, method=m, body=body)
                self.assertEqual(r.status, 200, r)
                if m == "HEAD":
                    self.assertEqual(r.body, b"")
                    self.assertTrue(up_requests(tag) and up_requests(tag)[-1][0] == "HEAD",
                                    up_requests(tag))
                    continue
                d = json.loads(r.body)
                self.assertEqual(d["method"], m)
                self.assertEqual(d["body"], body.decode() if body else "")

    def test_post_content_length_body(self):
        for n in (0, 1, 5000, 300000, 1000000):
            with self.subTest(n=n):
                body = pattern(n)
                d = self.echo(self.get("/api/echo?post=%d" % n, method="POST", body=body))
                self.assertEqual((d["body_len"], d["body_sha"]), (n, sha(body)))
                cl = [v for k, v in d["headers"] if k.lower() == "content-length"]
                self.assertEqual(cl, [str(n)])
                self.assertNotIn("transfer-encoding", [k.lower() for k, _ in d["headers"]])

    def test_post_body_arriving_in_pieces(self):
        body = pattern(200000)
        c = self.client()
        c.send(request("POST", "/api/echo?pieces=1", (("Content-Length", str(len(body))),
                                                      ("Connection", "close"))) + body[:10000])
        zgtest.wait_consumed(c.s)  # the body comes in more than one read
        c.send(body[10000:150000])
        zgtest.wait_consumed(c.s)
        c.send(body[150000:])
        d = self.echo(c.response())
        self.assertEqual((d["body_len"], d["body_sha"]), (len(body), sha(body)))

    def test_post_chunked_body(self):
        body = pattern(70000)
        c = self.client()
        c.send(request("POST", "/api/echo?chunked=1", (("Transfer-Encoding", "chunked"),
                                                       ("Connection", "close"))))
        pieces = [body[:1], body[1:4000], body[4000:69999], body[69999:]]
        for i, p in enumerate(pieces):
            c.send(b"%x\r\n%s\r\n" % (len(p), p))
            if i == 1:
                zgtest.wait_consumed(c.s)  # the body comes in more than one read
        c.send(b"0\r\n\r\n")
        d = self.echo(c.response())
        self.assertEqual((d["body_len"], d["body_sha"]), (len(body), sha(body)))
        hs = {k.lower(): v for k, v in d["headers"]}
        self.assertEqual(hs.get("transfer-encoding", "").lower(), "chunked", d["headers"])
        self.assertNotIn("content-length", hs)

    def test_expect_100_continue(self):
        c = self.client()
        c.send(request("POST", "/api/echo?expect=1", (("Expect", "100-continue"),
                                                      ("Content-Length", "11"), ("Connection", "close"))))
        r = c.response(keep_1xx=True)
        self.assertEqual(r.status, 100, r)
        c.send(b"hello world")
        d = self.echo(c.response())
        self.assertEqual(d["body"], "hello world")
        self.assertNotIn("expect", [k.lower() for k, _ in d["headers"]])

    def test_client_max_body_size(self):
        # a Content-Length over the limit: 413, the upstream never asked
        c = self.client()
        c.send(request("POST", "/api/echo?t=413cl", (("Content-Length", str(2 << 20)),)))
        r = c.response()
        self.assertEqual(r.status, 413, r)
        self.assertEqual(up_requests("t=413cl"), [])
        # a chunked body growing over it
        c = self.client()
        c.send(request("POST", "/api/echo?t=413ch", (("Transfer-Encoding", "chunked"),)))
        piece = b"x" * 65536
        try:
            for _ in range(24):  # 1.5 MiB
                c.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            c.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.response()
        self.assertEqual(r.status, 413, r)


class TestResponseToClient(ProxyTest):
    def test_content_length_body_and_headers(self):
        c = self.client()
        for n in (0, 1, 100000, 3 << 20):
            with self.subTest(n=n):
                c.send(request("GET", "/api/big?n=%d" % n))
                r = c.response()
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.all("content-length"), [str(n)])
                self.assertEqual(sha(r.body), sha(pattern(n)))
                self.assertEqual(r.all("x-up"), ["yes"])
                self.assertEqual(r.all("content-type"), ["application/octet-stream"])
                self.assertEqual(r.all("server"), ["zerg"], r.headers)
                self.assertEqual(len(r.all("date")), 1, r.headers)
                self.assertNotEqual(r.h("date"), UPSTREAM_DATE)
                self.assertNotEqual((r.h("connection") or "").lower(), "close", r.headers)
                self.assertIsNone(r.h("transfer-encoding"))
                self.assertEqual(r.version, "HTTP/1.1")

    def test_status_passed(self):
        c = self.client()
        for st in (201, 301, 404, 418, 500, 503, 204, 304):
            with self.subTest(status=st):
                c.send(request("GET", "/api/status/%d" % st))
                r = c.response()
                self.assertEqual(r.status, st, r)
                if st in (204, 304):
                    self.assertEqual(r.body, b"")
                else:
                    self.assertEqual(r.body, b"status %d body\n" % st)
                if st == 301:
                    self.assertEqual(r.h("location"), "http://elsewhere.example/x")
        # the connection still works after all of those
        self.assert_serves_local(c)

    def test_204_and_304_end_at_their_head(self):
        # whatever Content-Length or body the upstream gives them; found by
        # tests/fuzz/fuzz_http_upstream: zerg waited for that body (the
        # client's next request stalled) or relayed it (a 204 with bytes
        # after it, which the client took for its next answer)
        c = self.client()
        for path in ("/api/lenonly/304", "/api/lenonly/204", "/api/lenonly/204?body=1"):
            with self.subTest(path=path):
                c.send(request("GET", path))
                r = c.response()
                self.assertEqual((r.status, r.body, r.h("etag")), (int(path[13:16]), b"", '"e"'), r)
                self.assert_serves_local(c)

    def test_read_timeout_is_between_reads(self):
        # 5 pieces 400 ms apart: 2 s in all, over proxy_read_timeout 1s
        r = self.get("/api/drip?k=5&ms=400")
        self.assertEqual((r.status, r.body), (200, b"drip 0drip 1drip 2drip 3drip 4"), r)

    def test_head_in_small_pieces(self):
        r = self.get("/api/headdrip")
        self.assertEqual((r.status, r.body, r.h("x-drip")), (200, b"hello", "d" * 100), r)

    def test_many_upstream_headers(self):
        r = self.get("/api/manyheaders?n=100")
        self.assertEqual((r.status, r.body), (200, b"many"), r)
        got = [(k, v) for k, v in r.headers if k.lower().startswith("x-h-")]
        self.assertEqual(got, [(f"X-H-{i}", f"v{i}") for i in range(100)])

    def test_more_than_content_length_from_upstream(self):
        c, r = self.ask("/api/overlong")
        self.assertEqual((r.status, r.body), (200, b"hello"), r)
        # what the upstream sent past its length is not the next response
        self.assert_serves_local(c)

    def test_chunk_extensions_and_trailers(self):
        c, r = self.ask("/api/chunkext")
        self.assertEqual((r.status, r.body), (200, b"hello world"), r)
        self.assert_serves_local(c)

    def test_chunk_size_with_whitespace_cuts_the_answer(self):
        # llhttp parses strictly (no lenient flag for it): "5 ;a=b" is an
        # invalid chunk size line, so the answer ends short after its head,
        # like any upstream failing inside a body (no final 0 chunk)
        c = self.client()
        c.send(request("GET", "/api/chunkbws"))
        with self.assertRaises(EOFError):
            c.response()

    def test_head_with_a_body_from_upstream(self):
        c, r = self.ask("/api/headbody", "HEAD")
        self.assertEqual((r.status, r.h("content-length")), (200, "5"), r)
        self.assert_serves_local(c)

    def test_big_client_headers_forwarded(self):
        hs = (("Cookie", "c" * 6000),) + tuple((f"X-C-{i}", f"v{i}") for i in range(60))
        d = self.echo(self.get("/api/echo?bigheaders=1", headers=hs))
        got = [(k.lower(), v) for k, v in d["headers"]]
        self.assertIn(("cookie", "c" * 6000), got)
        self.assertEqual([(k, v) for k, v in got if k.startswith("x-c-")],
                         [(f"x-c-{i}", f"v{i}") for i in range(60)])

    def test_http10_upstream(self):
        c, r = self.ask("/api/old")
        self.assertEqual((r.status, r.body, r.h("x-up")), (200, b"old", "old"), r)
        self.assertEqual(r.version, "HTTP/1.1")
        self.assert_serves_local(c)

    def test_upstream_hop_by_hop_headers_dropped(self):
        c, r = self.ask("/api/hop")
        self.assertEqual((r.status, r.body), (200, b"hop"), r)
        self.assertIsNone(r.h("keep-alive"), r.headers)
        self.assertNotIn("close", [v.lower() for v in r.all("connection")], r.headers)
        self.assertEqual(r.all("x-multi"), ["one", "two"])
        # the upstream's Connection: close is its own business: the client's stays
        c.send(request("GET", "/api/echo?after=hop"))
        self.assertEqual(c.response().status, 200)

    def test_chunked_upstream_rechunked_for_http11(self):
        c = self.client()
        for n, cs in ((5000, 1000), (0, 1), (200000, 7001), (1 << 20, 65536)):
            with self.subTest(n=n):
                c.send(request("GET", "/api/chunked?n=%d&cs=%d" % (n, cs)))
                r = c.response()
                self.assertEqual(r.status, 200, r)
                self.assertEqual((r.h("transfer-encoding") or "").lower(), "chunked", r.headers)
                self.assertIsNone(r.h("content-length"))
                self.assertEqual(sha(r.body), sha(pattern(n)))
        # keep-alive kept
        self.assert_serves_local(c)

    def test_chunked_upstream_raw_for_http10(self):
        c = self.client()
        c.send(request("GET", "/api/chunked?n=30000&cs=999", version="1.0", host=None))
        r = c.head()
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.h("transfer-encoding"), r.headers)
        body = c.to_close()
        self.assertEqual(len(body), 30000)
        self.assertEqual(sha(body), sha(pattern(30000)))

    def test_close_delimited_upstream(self):
        c = self.client()
        c.send(request("GET", "/api/close?n=300000"))
        r = c.head()
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.h("connection") or "").lower(), "close", r.headers)
        if r.h("transfer-encoding"):
            self.fail(f"close-delimited upstream body sent chunked: {r.headers}")
        body = c.to_close()
        self.assertEqual(len(body), 300000)
        self.assertEqual(sha(body), sha(pattern(300000)))

    def test_head(self):
        c = self.client()
        for target in ("/api/big?n=1000", "/api/chunked?n=100", "/api/echo?head=1"):
            with self.subTest(target=target):
                c.send(request("HEAD", target))
                r = c.response(head_req=True)
                self.assertEqual(r.status, 200, r)
                if "big" in target:
                    self.assertEqual(r.h("content-length"), "1000")
        # nothing after the heads: the next response's head comes first
        self.assert_serves_local(c)

    def test_1xx_dropped(self):
        c, r = self.ask("/api/early-hints", keep_1xx=True)
        self.assertEqual((r.status, r.body), (200, b"ok"), r)
        self.assert_serves_local(c)


if __name__ == "__main__":
    zgtest.main()

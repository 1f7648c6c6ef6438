"""test_http - the http module through the real zerg binary: keep-alive and
pipelining, HEAD, error statuses and smuggling refusals, static files
(conditional, ranges, path safety, add_header, alias, fallback, gzip_static,
allow/deny, redirects), timeouts, 1 GiB file, drain and reload."""
import gzip
import hashlib
import os
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zgtest  # noqa: E402
from zgtest import rss_kb  # noqa: E402
from httptest import (CONF, Server, SharedServer, closed_after, connect, curl,  # noqa: E402
                      raw, read_response, status_of)


class TestProtocol(SharedServer):
    def test_keepalive_and_headers(self):
        s = connect(Server.port)
        rest = b""
        for _ in range(5):
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: example.com\r\n\r\n")
            st, h, body, rest = read_response(s, rest)
            self.assertEqual(st, 200)
            self.assertEqual(body, b"Hello, World!")
            self.assertEqual(h["server"], "zerg")
            self.assertRegex(h["date"], r"^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$")
            self.assertEqual(h["x-test"], "yes")
            self.assertEqual(h["content-type"], "text/plain")
            self.assertNotIn("connection", h)
        s.close()

    def test_connection_close_and_http10(self):
        out = raw(Server.port, b"GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        self.assertIn(b"Connection: close\r\n", out)
        self.assertTrue(out.endswith(b"Hello, World!"))
        out = raw(Server.port, b"GET /hello HTTP/1.0\r\n\r\n")
        self.assertEqual(status_of(out), 200)
        self.assertIn(b"Connection: close\r\n", out)
        s = connect(Server.port)
        s.sendall(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        st, h, body, rest = read_response(s)
        self.assertEqual(h.get("connection"), "keep-alive")
        s.sendall(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        st, h, body, rest = read_response(s, rest)
        self.assertEqual(st, 200)
        s.close()

    def test_pipelining_order(self):
        paths = ["/hello", "/nothere", "/index.html", "/hello", "/style.css", "/gone",
                 "/sub/", "/alpha.txt", "/hello"] * 3
        req = b"".join(b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % p.encode() for p in paths)
        s = connect(Server.port)
        s.sendall(req)
        rest = b""
        expect = {"/hello": 200, "/nothere": 404, "/index.html": 200, "/style.css": 200,
                  "/gone": 301, "/sub/": 200, "/alpha.txt": 200}
        for p in paths:
            st, h, body, rest = read_response(s, rest)
            self.assertEqual(st, expect[p], p)
            if p == "/sub/":
                self.assertEqual(body, b"<h1>sub</h1>\n")
            if p == "/alpha.txt":
                self.assertEqual(len(body), 26000)
        self.assertEqual(rest, b"")
        s.close()

    def test_pipelined_streamed_file(self):
        """A file above file_mmap_max streams through io_uring reads; requests
        pipelined behind it wait and are answered in order."""
        data = os.urandom(5 << 20)
        with open(os.path.join(Server.tmp, "www", "five.bin"), "wb") as f:
            f.write(data)
        s = connect(Server.port, timeout=10)
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"
                  b"GET /five.bin HTTP/1.1\r\nHost: a\r\n\r\n"
                  b"GET /alpha.txt HTTP/1.1\r\nHost: a\r\nRange: bytes=0-2\r\n\r\n"
                  b"GET /five.bin HTTP/1.1\r\nHost: a\r\nRange: bytes=1000000-\r\n\r\n"
                  b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        st, h, body, rest = read_response(s)
        self.assertEqual(body, b"Hello, World!")
        st, h, body, rest = read_response(s, rest)
        self.assertEqual((st, len(body)), (200, len(data)))
        self.assertTrue(body == data)
        st, h, body, rest = read_response(s, rest)
        self.assertEqual((st, body), (206, b"abc"))
        st, h, body, rest = read_response(s, rest)
        self.assertEqual(st, 206)
        self.assertTrue(body == data[1000000:])
        st, h, body, rest = read_response(s, rest)
        self.assertEqual(body, b"Hello, World!")
        s.close()

    def test_requests_arriving_while_a_file_streams(self):
        """Requests sent on their own while a streamed file waits for a
        reader with a small receive buffer: zerg keeps them (over 16 KiB)
        until the file is sent, then answers them in order."""
        data = b"0123456789abcdef" * (8 << 16)  # 8 MiB, above file_mmap_max
        with open(os.path.join(Server.tmp, "www", "late.bin"), "wb") as f:
            f.write(data)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.settimeout(10)
        s.connect(("127.0.0.1", Server.port))
        s.sendall(b"GET /late.bin HTTP/1.1\r\nHost: a\r\n\r\n")
        st, h, _, rest = read_response(s, head=True)
        self.assertEqual((st, h["content-length"]), (200, str(len(data))))
        paths = ["/hello", "/alpha.txt", "/nothere", "/index.html"] * 10
        pad = b"X-Pad: " + b"p" * 500 + b"\r\n"
        for i in range(0, len(paths), 8):
            s.sendall(b"".join(b"GET %s HTTP/1.1\r\nHost: a\r\n%s\r\n" % (p.encode(), pad)
                               for p in paths[i:i + 8]))
        body = bytearray(rest)
        while len(body) < len(data):
            chunk = s.recv(1 << 20)
            self.assertTrue(chunk, "closed inside the file")
            body += chunk
        self.assertTrue(body[:len(data)] == data)
        rest = bytes(body[len(data):])
        expect = {"/hello": 200, "/alpha.txt": 200, "/nothere": 404, "/index.html": 200}
        for p in paths:
            st, h, body, rest = read_response(s, rest)
            self.assertEqual(st, expect[p], p)
        self.assertEqual(rest, b"")
        s.close()

    def test_keepalive_requests_limit(self):
        s = connect(Server.port)
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n" * 60)
        rest = b""
        n = 0
        while True:
            try:
                st, h, body, rest = read_response(s, rest)
            except EOFError:
                break
            n += 1
            if h.get("connection") == "close":
                break
        self.assertEqual(n, 50)
        self.assertTrue(closed_after(s))

    def test_head(self):
        s = connect(Server.port)
        s.sendall(b"HEAD /hello HTTP/1.1\r\nHost: a\r\n\r\nHEAD /alpha.txt HTTP/1.1\r\nHost: a\r\n\r\n"
                  b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        st, h, body, rest = read_response(s, head=True)
        self.assertEqual(h["content-length"], "13")
        st, h, body, rest = read_response(s, rest, head=True)
        self.assertEqual(h["content-length"], "26000")
        st, h, body, rest = read_response(s, rest)
        self.assertEqual(body, b"Hello, World!")
        s.close()

    def test_error_statuses(self):
        p = Server.port
        cases = [
            (b"GARBAGE\r\n\r\n", 400),
            (b"GET /hello HTTP/1.1\r\n\r\n", 400),  # no Host
            (b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431),
            (b"POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n", 413),
            (b"POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo, chunked\r\n\r\n", 501),
            (b"POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
            (b"GET /hello HTTP/2.0\r\nHost: a\r\n\r\n", 505),
            (b"GET /hello HTTP/1.1\r\nHost: a\r\nExpect: bogus\r\n\r\n", 417),
        ]
        for req, want in cases:
            with self.subTest(want=want, req=req[:40]):
                out = raw(p, req)
                self.assertEqual(status_of(out), want, out[:200])
                self.assertIn(b"Connection: close", out)
        # HTTP/2 prior knowledge: 505 or closed without an answer
        out = raw(p, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        self.assertIn(status_of(out), (505, None))
        # 405 keeps the connection, with Allow
        s = connect(p)
        s.sendall(b"DELETE /index.html HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        st, h, body, rest = read_response(s)
        self.assertEqual(st, 405)
        self.assertEqual(h["allow"], "GET, HEAD")
        st, h, body, rest = read_response(s, rest)
        self.assertEqual(st, 200)
        s.close()

    def test_smuggling_vectors(self):
        vectors = [
            b"POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
            b"POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
            b"POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcd",
            b"POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 4\r\n\r\nabcd",
            b"POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 0x4\r\n\r\nabcd",
            b"POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n\r\n",
            b"POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\n",
            b"POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4 x\r\nabcd\r\n0\r\n\r\n",
            b"POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
            b"POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
            b"POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n",
            b"POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
            b"POST /hello HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"GET /hello HTTP/1.1\nHost: a\n\n",
            b"GET /hello HTTP/1.1\r\nHost: a\nX: y\r\n\r\n",
            b"GET /hello HTTP/1.1\r\nHost: a\r\nX: y\r\n folded\r\n\r\n",
            b"GET /hello HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
            b"GET /hello HTTP/1.1\r\nHost: a\r\nX: a\x07b\r\n\r\n",
            b"GET /hello HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",
            b"GET /hello HTTP/1.1\r\nHost: a\r\n\x00X: b\r\n\r\n",
            b"GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET /hello HTTP/1.1\r\nHost: a b\r\n\r\n",
            b"GET /hello HTTP/1.1\r\nHost: a/b@c\r\n\r\n",
        ]
        for v in vectors:
            with self.subTest(v=v[:70]):
                out = raw(Server.port, v + b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
                st = status_of(out)
                self.assertIn(st, (400, 411, 413, 414, 431, 501, 505, None), out[:300])
                # refused and closed: the smuggled request is never answered
                self.assertEqual(out.count(b"HTTP/1.1 "), 1 if st else 0, out)

    def test_bodies(self):
        s = connect(Server.port)
        s.sendall(b"POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
                  b"POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: x\r\n\r\n"
                  b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        rest = b""
        for _ in range(3):
            st, h, body, rest = read_response(s, rest)
            self.assertEqual(st, 200)
        # Expect: 100-continue
        s.sendall(b"POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        st, h, body, rest = read_response(s, rest)
        self.assertEqual(st, 100)
        s.sendall(b"abc")
        st, h, body, rest = read_response(s, rest)
        self.assertEqual(st, 200)
        s.close()
        out = curl("-H", "Expect: 100-continue", "--data-binary", "x" * 100,
                   f"http://127.0.0.1:{Server.port}/hello")
        self.assertEqual(out, b"Hello, World!")

    def test_half_close_still_answered(self):
        s = connect(Server.port)
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\nGET /alpha.txt HTTP/1.1\r\nHost: a\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        st, h, body, rest = read_response(s)
        self.assertEqual(body, b"Hello, World!")
        st, h, body, rest = read_response(s, rest)
        self.assertEqual(len(body), 26000)
        self.assertTrue(closed_after(s))

    def test_status_endpoint(self):
        out = curl(f"http://127.0.0.1:{Server.port}/status")
        text = out.decode()
        self.assertRegex(text, r'zerg_http_requests_total\{server="[^"]*",class="2xx"\} \d+')
        self.assertRegex(text, r'zerg_http_connections\{state="active"\} [1-9]')
        self.assertIn("zerg_bytes_out_total", text)


class TestStatic(SharedServer):
    def get(self, path, *hdrs, method="GET", source="127.0.0.1"):
        s = connect(Server.port, source=source)
        extra = b"".join(h.encode() + b"\r\n" for h in hdrs)
        s.sendall(b"%s %s HTTP/1.1\r\nHost: a\r\n%s\r\n" % (method.encode(), path.encode(), extra))
        r = read_response(s, head=method == "HEAD")
        s.close()
        return r

    def test_index_mime(self):
        st, h, body, _ = self.get("/")
        self.assertEqual((st, body), (200, b"<h1>index</h1>\n"))
        self.assertEqual(h["content-type"], "text/html")
        self.assertEqual(self.get("/style.css")[1]["content-type"], "text/css")
        self.assertEqual(self.get("/data.zz")[1]["content-type"], "application/x-zz")
        self.assertEqual(self.get("/link_in.html")[2], b"<h1>index</h1>\n")
        self.assertEqual(self.get("/nope")[0], 404)
        st, h, _, _ = self.get("/sub")
        self.assertEqual((st, h["location"]), (301, "/sub/"))
        self.assertEqual(self.get("/emptydir/")[0], 403)
        self.assertEqual(self.get("/index.html?x=1&y=2")[0], 200)

    def test_autoindex(self):
        st, h, body, _ = self.get("/listing/")
        self.assertEqual(st, 200)
        self.assertEqual(h["content-type"], "text/html")
        text = body.decode()
        self.assertIn('<a href="a%26b%20%3Cx%3E.txt">a&amp;b &lt;x&gt;.txt</a>', text)
        self.assertIn('<a href="d/">d/</a>', text)
        self.assertNotIn(".hidden", text)
        self.assertLess(text.index("a%26b"), text.index("b.txt"))
        # no listing without autoindex
        self.assertEqual(self.get("/emptydir/")[0], 403)

    def test_conditional(self):
        st, h, body, _ = self.get("/index.html")
        etag, lm = h["etag"], h["last-modified"]
        self.assertEqual(self.get("/index.html", "If-None-Match: " + etag)[0], 304)
        self.assertEqual(self.get("/index.html", 'If-None-Match: "x", ' + etag)[0], 304)
        self.assertEqual(self.get("/index.html", "If-None-Match: *")[0], 304)
        self.assertEqual(self.get("/index.html", 'If-None-Match: "other"')[0], 200)
        self.assertEqual(self.get("/index.html", "If-Modified-Since: " + lm)[0], 304)
        self.assertEqual(self.get("/index.html",
                                  "If-Modified-Since: Thu, 01 Jan 1970 00:00:01 GMT")[0], 200)
        # If-None-Match wins over If-Modified-Since
        self.assertEqual(self.get("/index.html", 'If-None-Match: "other"',
                                  "If-Modified-Since: " + lm)[0], 200)
        st, h, body, _ = self.get("/index.html", "If-None-Match: " + etag, method="HEAD")
        self.assertEqual(st, 304)

    def test_ranges(self):
        st, h, body, _ = self.get("/alpha.txt", "Range: bytes=0-25")
        self.assertEqual((st, body), (206, b"abcdefghijklmnopqrstuvwxyz"))
        self.assertEqual(h["content-range"], "bytes 0-25/26000")
        st, h, body, _ = self.get("/alpha.txt", "Range: bytes=-3")
        self.assertEqual((st, body), (206, b"xyz"))
        st, h, body, _ = self.get("/alpha.txt", "Range: bytes=25990-")
        self.assertEqual((st, body), (206, b"qrstuvwxyz"))
        st, h, body, _ = self.get("/alpha.txt", "Range: bytes=26000-")
        self.assertEqual(st, 416)
        self.assertEqual(h["content-range"], "bytes */26000")
        st, h, body, _ = self.get("/alpha.txt", "Range: bytes=0-1,5-6")
        self.assertEqual((st, len(body)), (200, 26000))
        etag = self.get("/alpha.txt")[1]["etag"]
        self.assertEqual(self.get("/alpha.txt", "Range: bytes=0-0", "If-Range: " + etag)[0], 206)
        self.assertEqual(self.get("/alpha.txt", "Range: bytes=0-0", 'If-Range: "old"')[0], 200)
        out = curl("-r", "1-2", f"http://127.0.0.1:{Server.port}/alpha.txt")
        self.assertEqual(out, b"bc")

    def test_add_header(self):
        st, h, body, _ = self.get("/assets/app.js")
        self.assertEqual((st, body), (200, b"let x = 1;\n"))
        self.assertEqual(h["cache-control"], "public, max-age=60")
        self.assertEqual(h["x-frame-options"], "DENY")
        # 304 and 206 carry it too (nginx's list), errors do not
        st, h, _, _ = self.get("/assets/app.js", "If-None-Match: " + h["etag"])
        self.assertEqual((st, h.get("cache-control")), (304, "public, max-age=60"))
        st, h, body, _ = self.get("/assets/app.js", "Range: bytes=0-2")
        self.assertEqual((st, body, h.get("x-frame-options")), (206, b"let", "DENY"))
        st, h, _, _ = self.get("/assets/app.js", "Range: bytes=500-")
        self.assertEqual((st, h.get("cache-control")), (416, None))
        st, h, _, _ = self.get("/assets/nope.js")
        self.assertEqual((st, h.get("cache-control")), (404, None))
        st, h, _, _ = self.get("/assets/app.js", method="HEAD")
        self.assertEqual((st, h.get("cache-control")), (200, "public, max-age=60"))
        # only the location that sets it
        self.assertNotIn("cache-control", self.get("/index.html")[1])
        # return answers: with a 2xx status, not with a 404
        st, h, body, _ = self.get("/added")
        self.assertEqual((st, body, h.get("x-added")), (200, b"added", "yes"))
        st, h, body, _ = self.get("/missing")
        self.assertEqual((st, body, h.get("x-added")), (404, b"missing", None))

    def test_alias(self):
        # /files/X is www/sub/X: the location's prefix is replaced, not kept
        st, _, body, _ = self.get("/files/index.html")
        self.assertEqual((st, body), (200, b"<h1>sub</h1>\n"))
        st, _, body, _ = self.get("/files/")
        self.assertEqual((st, body), (200, b"<h1>sub</h1>\n"))
        self.assertEqual(self.get("/files/alpha.txt")[0], 404)  # not www/alpha.txt
        for a in ("/files/..%2falpha.txt", "/files/%2e%2e/%2e%2e/secret.txt",
                  "/files/../../secret.txt", "/files/..%2f..%2fsecret.txt"):
            with self.subTest(a=a):
                out = raw(Server.port, b"GET %s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                          % a.encode())
                self.assertIn(status_of(out), (400, 403, 404), out[:200])
                self.assertNotIn(b"TOPSECRET", out)

    def test_fallback(self):
        # an existing file is itself; any missing path gets the app's index
        self.assertEqual(self.get("/app/main.js")[2], b"main();\n")
        for path in ("/app/", "/app/some/route", "/app/x.png?q=1"):
            with self.subTest(path=path):
                st, h, body, _ = self.get(path)
                self.assertEqual((st, body, h["content-type"]), (200, b"<h1>app</h1>\n",
                                                                 "text/html"))
        st, h, _, _ = self.get("/app/deep/link")
        self.assertEqual(self.get("/app/deep/link", "If-None-Match: " + h["etag"])[0], 304)
        st, _, body, _ = self.get("/app/deep/link", method="HEAD")
        self.assertEqual((st, body), (200, b""))
        # no fallback elsewhere; a missing fallback file is a plain 404
        self.assertEqual(self.get("/nope")[0], 404)
        self.assertEqual(self.get("/broken/x")[0], 404)

    def test_redirect_variables(self):
        st, h, body, _ = self.get("/old/a%20b?x=1&y=2")
        self.assertEqual((st, h["location"]), (301, "https://a/old/a%20b?x=1&y=2"))
        out = raw(Server.port, b"GET /old/q HTTP/1.1\r\nHost: WWW.Example.COM.:8080\r\n"
                  b"Connection: close\r\n\r\n")
        self.assertIn(b"\r\nLocation: https://www.example.com/old/q\r\n", out)
        out = raw(Server.port, b"GET http://abs.example/old/x#frag HTTP/1.1\r\nHost: b\r\n"
                  b"Connection: close\r\n\r\n")
        self.assertIn(b"\r\nLocation: https://abs.example/old/x\r\n", out)
        # no host in the request: the server's first name
        out = raw(Server.port, b"GET /old/z HTTP/1.0\r\n\r\n")
        self.assertIn(b"\r\nLocation: https://example.com/old/z\r\n", out)
        # $uri is the normalised path, encoded again
        st, h, body, _ = self.get("/wh%65re")
        self.assertEqual((st, h["location"], body), (302, "http://a/new/where", b"moved"))
        st, h, body, _ = self.get("/where", method="HEAD")
        self.assertEqual((st, h["location"], body), (302, "http://a/new/where", b""))

    def test_gzip_static(self):
        plain = b"let app = 1;\n" * 50
        st, h, body, _ = self.get("/gz/app.js")
        self.assertEqual((st, body, h.get("content-encoding")), (200, plain, None))
        self.assertEqual(h["vary"], "Accept-Encoding")
        ctype = h["content-type"]
        for ae in ("gzip", "gzip, deflate, br", "*;q=0.5", "br;q=1, gzip;q=0.2"):
            with self.subTest(ae=ae):
                st, h, body, _ = self.get("/gz/app.js", "Accept-Encoding: " + ae)
                self.assertEqual((st, h.get("content-encoding")), (200, "gzip"))
                self.assertEqual((h["content-type"], h["vary"]), (ctype, "Accept-Encoding"))
                self.assertEqual(gzip.decompress(body), plain)
        for ae in ("gzip;q=0", "br", "identity"):
            with self.subTest(ae=ae):
                st, h, body, _ = self.get("/gz/app.js", "Accept-Encoding: " + ae)
                self.assertEqual((st, body, h.get("content-encoding")), (200, plain, None))
        # no .gz next to it: the file itself; an index name gets its .gz too
        st, h, body, _ = self.get("/gz/plain.css", "Accept-Encoding: gzip")
        self.assertEqual((body, h.get("content-encoding")), (b"body{}\n", None))
        st, h, body, _ = self.get("/gz/", "Accept-Encoding: gzip")
        self.assertEqual((h.get("content-encoding"), gzip.decompress(body)),
                         ("gzip", b"<h1>gz</h1>\n"))
        # validators and ranges are the .gz file's
        st, h, _, _ = self.get("/gz/app.js", "Accept-Encoding: gzip")
        self.assertEqual(self.get("/gz/app.js", "Accept-Encoding: gzip",
                                  "If-None-Match: " + h["etag"])[0], 304)
        st, _, body, _ = self.get("/gz/app.js", "Accept-Encoding: gzip", "Range: bytes=0-1")
        self.assertEqual((st, body), (206, b"\x1f\x8b"))
        # elsewhere nothing changes
        self.assertNotIn("vary", self.get("/index.html", "Accept-Encoding: gzip")[1])
        # a client that decodes gets the original bytes
        out = curl("--compressed", f"http://127.0.0.1:{Server.port}/gz/app.js")
        self.assertEqual(out, plain)

    def test_allow_deny(self):
        # allow list: only the listed clients (127.0.0.2 here), 403 for others
        self.assertEqual(self.get("/private/p.txt")[0], 403)
        st, _, body, _ = self.get("/private/p.txt", source="127.0.0.2")
        self.assertEqual((st, body), (200, b"private\n"))
        self.assertEqual(self.get("/private/p.txt", source="127.0.0.3")[0], 403)
        # deny list: everyone but the listed clients
        self.assertEqual(self.get("/nolocal")[0], 403)
        st, _, body, _ = self.get("/nolocal", source="127.0.0.3")
        self.assertEqual((st, body), (200, b"open"))
        # other locations are open to all
        self.assertEqual(self.get("/index.html")[0], 200)
        # the refusal is an ordinary answer on a kept connection
        s = connect(Server.port)
        s.sendall(b"GET /private/p.txt HTTP/1.1\r\nHost: a\r\n\r\n"
                  b"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n")
        st1, _, _, rest = read_response(s)
        st2, _, body, _ = read_response(s, rest)
        s.close()
        self.assertEqual((st1, st2, body), (403, 200, b"<h1>index</h1>\n"))

    def test_path_traversal(self):
        attempts = [
            "/../secret.txt", "/..%2fsecret.txt", "/..%2Fsecret.txt", "/%2e%2e/secret.txt",
            "/%2E%2E/secret.txt", "/.%2e/secret.txt", "/%2e./secret.txt", "/sub/../../secret.txt",
            "/sub/%2e%2e/%2e%2e/secret.txt", "/./../secret.txt", "//../secret.txt",
            "/sub/./../../secret.txt", "/%2e%2e%2fsecret.txt", "/..%5csecret.txt",
            "/..\\secret.txt", "/link_out", "/dirlink/secret.txt", "/dirlink/www/index.html",
            "/sub/..%2f..%2fsecret.txt", "/%252e%252e/secret.txt", "/..%00/secret.txt",
            "/%c0%ae%c0%ae/secret.txt", "/..;/secret.txt", "/../../../../../../etc/passwd",
            "/sub/../../../etc/passwd", "http://a/../secret.txt", "/.%2E/%2E./secret.txt",
        ]
        self.assertGreaterEqual(len(attempts), 20)
        for a in attempts:
            with self.subTest(a=a):
                out = raw(Server.port, b"GET %s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                          % a.encode("latin-1"))
                self.assertIn(status_of(out), (400, 403, 404), out[:200])
                self.assertNotIn(b"TOPSECRET", out)
                self.assertNotIn(b"root:", out)


class TestStaticCached(TestStatic):
    """The same static tests with the open file cache on."""

    @classmethod
    def setUpClass(cls):
        Server.start(CONF.replace("      locations:\n", "      open_file_cache_valid: 5s\n"
                                  "      locations:\n", 1))


class TestTimeouts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        Server.start(CONF.replace("keepalive_timeout: 2s", "keepalive_timeout: 700ms"))
        with open(os.path.join(Server.tmp, "www", "big.bin"), "wb") as f:
            f.truncate(64 << 20)

    @classmethod
    def tearDownClass(cls):
        Server.stop()

    def test_keepalive_timeout(self):
        s = connect(Server.port)
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        read_response(s)
        t0 = time.monotonic()
        self.assertTrue(closed_after(s, 3))
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertGreater(time.monotonic() - t0, 0.4)

    def test_header_timeout_slowloris(self):
        s = connect(Server.port)
        t0 = time.monotonic()
        req = b"GET /hello HTTP/1.1\r\nHost: a\r\nX-Slow: " + b"a" * 100
        closed = False
        for b in req:
            try:
                s.send(bytes([b]))
            except OSError:
                closed = True
                break
            time.sleep(0.05)  # the point: a byte at a time, slower than the header timeout
            if time.monotonic() - t0 > 3:
                break
        out = b""
        try:
            s.settimeout(2)
            while True:
                d = s.recv(4096)
                if not d:
                    closed = True
                    break
                out += d
        except (ConnectionResetError, BrokenPipeError):
            closed = True
        except socket.timeout:
            pass
        self.assertTrue(closed)
        self.assertIn(status_of(out), (408, None))
        self.assertLess(time.monotonic() - t0, 4.5)

    def test_silent_client(self):
        s = connect(Server.port)
        t0 = time.monotonic()
        self.assertTrue(closed_after(s, 4))
        self.assertLess(time.monotonic() - t0, 2.5)

    def test_body_timeout(self):
        s = connect(Server.port)
        s.sendall(b"POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc")
        t0 = time.monotonic()
        out = b""
        s.settimeout(4)
        try:
            while True:
                d = s.recv(4096)
                if not d:
                    break
                out += d
        except (ConnectionResetError, socket.timeout):
            pass
        self.assertLess(time.monotonic() - t0, 3.0)
        self.assertIn(status_of(out), (408, None))

    def test_send_timeout(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", Server.port))
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
        # not reading: send_timeout is 1s, and the server gives up on us
        me = s.getsockname()[1]
        zgtest.wait_until(lambda: me not in [p for _, p in zgtest.tcp_peers(Server.port)], 5,
                          "the server to close the connection of a client that does not read")
        got = []
        s.settimeout(3)
        try:
            zgtest.recv_to_eof(s, got.append, 1 << 20)
        except (ConnectionResetError, socket.timeout):
            pass
        self.assertLess(sum(map(len, got)), 64 << 20)


class TestBigFile(unittest.TestCase):
    def test_1gib_download(self):
        Server.start(CONF.replace("send_timeout: 1s", "send_timeout: 10s"))
        try:
            size = 1 << 30
            with open(os.path.join(Server.tmp, "www", "huge.bin"), "wb") as f:
                f.truncate(size)
            workers = Server.z.wait_workers(1)
            self.assertTrue(workers, "no worker process:\n" + Server.z.output())
            worker = workers[0]
            rss0 = rss_kb(worker)
            s = connect(Server.port, timeout=10)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            s.sendall(b"GET /huge.bin HTTP/1.1\r\nHost: a\r\n\r\n")
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += s.recv(65536)
            head, body = buf.split(b"\r\n\r\n", 1)
            self.assertIn(b"Content-Length: %d" % size, head)
            h = hashlib.sha256()
            h.update(body)
            got = len(body)
            peak = 0
            t0 = time.monotonic()
            mv = bytearray(4 << 20)
            while got < size and time.monotonic() - t0 < 60:
                n = s.recv_into(mv)
                if not n:
                    break
                h.update(memoryview(mv)[:n])
                got += n
                if got % (64 << 20) < n:
                    peak = max(peak, rss_kb(worker))
            s.close()
            self.assertEqual(got, size)
            z = hashlib.sha256()
            zero = bytes(16 << 20)
            for _ in range(size // len(zero)):
                z.update(zero)
            self.assertEqual(h.hexdigest(), z.hexdigest())
            self.assertLess(peak - rss0, 64 * 1024, f"worker RSS grew from {rss0} to {peak} kB")
        finally:
            Server.stop()


def idle_and_busy():
    """Start the server with long timeouts; return an idle keep-alive
    connection and one in the middle of a request head. Each was answered
    once first, so the worker running now holds both for certain."""
    Server.start(CONF.replace("client_header_timeout: 1s", "client_header_timeout: 10s")
                 .replace("keepalive_timeout: 2s", "keepalive_timeout: 30s"))
    conns = []
    for _ in range(2):
        s = connect(Server.port)
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        read_response(s)
        conns.append(s)
    conns[1].sendall(b"GET /hello HTTP/1.1\r\nHost: a\r\n")  # head not finished
    zgtest.wait_consumed(conns[1])
    return conns


def assert_drains(test, sig, idle_within, at_most):
    """sig to the master drains the worker: the idle keep-alive connection is
    closed within idle_within seconds (and at_most after the signal), the
    request in progress is answered with Connection: close, then closed."""
    idle, busy = idle_and_busy()
    t0 = time.monotonic()
    os.kill(Server.z.proc.pid, sig)
    test.assertTrue(closed_after(idle, idle_within), Server.z.output())
    test.assertLess(time.monotonic() - t0, at_most)
    busy.sendall(b"\r\n")
    st, h, body, rest = read_response(busy)
    test.assertEqual((st, body), (200, b"Hello, World!"))
    test.assertEqual(h.get("connection"), "close")
    test.assertTrue(closed_after(busy, 5))


class TestDrain(unittest.TestCase):
    def test_graceful_stop_closes_idle_and_finishes_busy(self):
        """SIGQUIT drains the worker (as a reload does for the old one)."""
        try:
            assert_drains(self, signal.SIGQUIT, 5, 3)
            Server.z.proc.wait(10)
        finally:
            Server.stop()


class TestReload(unittest.TestCase):
    def test_reload_closes_idle_and_finishes_busy(self):
        """SIGHUP: the old worker drains while the new generation serves."""
        try:
            assert_drains(self, signal.SIGHUP, 8, 5)
            out = raw(Server.port, b"GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            self.assertEqual(status_of(out), 200)
        finally:
            Server.stop()

if __name__ == "__main__":
    zgtest.main()

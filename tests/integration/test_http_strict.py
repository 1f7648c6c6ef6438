"""test_http_strict - the http module's request parsing against each MUST of
RFC 9112 sections 2-7 and the field syntax of RFC 9110 5.1-5.6, one test per
rule, through the real binary: the status of each refusal, that the
connection is closed, and that nothing of a refused request reaches a
proxy_pass upstream (a recording socket here); valid requests are served and
reach the upstream in valid syntax."""
import os
import re
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zgtest  # noqa: E402
from httptest import HTTP_SERVER  # noqa: E402
from zgtest import Zerg  # noqa: E402

T = 5.0


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nup"
# what the upstream answers to /p/answer/NAME
ANSWERS = {
    b"ws-before-colon": b"HTTP/1.1 200 OK\r\nFoo : bar\r\nContent-Length: 2\r\n\r\nup",
    b"space-in-name": b"HTTP/1.1 200 OK\r\nFoo Bar: x\r\nContent-Length: 2\r\n\r\nup",
    b"empty-name": b"HTTP/1.1 200 OK\r\n: x\r\nContent-Length: 2\r\n\r\nup",
    b"separator-in-name": b"HTTP/1.1 200 OK\r\nF@o: x\r\nContent-Length: 2\r\n\r\nup",
    b"obs-fold": b"HTTP/1.1 200 OK\r\nFoo: a\r\n b\r\nContent-Length: 2\r\n\r\nup",
    b"ctl-in-value": b"HTTP/1.1 200 OK\r\nFoo: a\x01b\r\nContent-Length: 2\r\n\r\nup",
}


class Recorder:
    """An upstream that records the raw bytes of every request it gets, in
    arrival order, and answers each with a small 200 (or ANSWERS[NAME] for
    /p/answer/NAME)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.got = []
        self.cond = threading.Condition()
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        c.settimeout(T)
        buf = b""
        try:
            while not message_complete(buf):
                d = c.recv(65536)
                if not d:
                    break
                buf += d
            with self.cond:
                self.got.append(buf)
                self.cond.notify_all()
            m = re.match(rb"GET /p/answer/([\w-]+) ", buf)
            c.sendall(ANSWERS.get(m.group(1), OK) if m else OK)
        except OSError:
            pass
        c.close()

    def mark(self):
        with self.cond:
            return len(self.got)

    def since(self, n, want, timeout=T):
        """What arrived since mark n, once want requests have."""
        with self.cond:
            self.cond.wait_for(lambda: len(self.got) - n >= want, timeout)
            return self.got[n:]


def message_complete(buf):
    if b"\r\n\r\n" not in buf:
        return False
    head, body = buf.split(b"\r\n\r\n", 1)
    m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
    if m:
        return len(body) >= int(m.group(1))
    if re.search(rb"\r\ntransfer-encoding:[^\r]*chunked", head, re.I):
        return body.endswith(b"0\r\n\r\n")
    return True


TCHAR = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
FIELD_VALUE = re.compile(rb"([\x21-\x7e\x80-\xff]([ \t\x21-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?")
REQUEST_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [\x21-\x7e\x80-\xff]+ HTTP/1\.1")


def assert_valid_head(tc, data):
    """data's head is in strict RFC 9112 syntax: one SP between the parts of
    the request line, CRLF line ends, token names with the colon right after
    them, values without CTLs (but HTAB) and without outer whitespace."""
    head = data.split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    tc.assertRegex(lines[0], REQUEST_LINE)
    for line in lines[1:]:
        tc.assertNotIn(b"\n", line)
        tc.assertNotIn(b"\r", line)
        name, sep, value = line.partition(b":")
        tc.assertEqual(sep, b":", line)
        tc.assertRegex(name, b"^" + TCHAR.pattern + b"$", line)
        value = value.strip(b" \t") if value.startswith((b" ", b"\t")) else value
        tc.assertRegex(value, b"^" + FIELD_VALUE.pattern + b"$", line)


def exchange(port, data):
    """Sends data, reads until the server closes (or T): (status, raw)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=T)
    pieces = []
    try:
        s.sendall(data)
        zgtest.recv_to_eof(s, pieces.append)
    except OSError:
        pass
    finally:
        s.close()
    got = b"".join(pieces)
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", got)
    return (int(m.group(1)) if m else None), got


def req(line=b"GET /p/x HTTP/1.1", fields=b"Host: a\r\n", body=b""):
    return line + b"\r\n" + fields + b"Connection: close\r\n\r\n" + body


def post(fields, body):
    return req(b"POST /p/x HTTP/1.1", b"Host: a\r\n" + fields, body)


CONF = """
load_modules: [http]
servers:
  - listen: ["127.0.0.1:{port0}"]
    module: http
    default_server: true
    http:
      client_header_timeout: 2s
      client_body_timeout: 2s
      locations:
        - path: /p/
          proxy_pass: "http://127.0.0.1:@UP@"
        - path: /
          return: {{ status: 200, body: "ok" }}
  - listen: ["127.0.0.1:{port0}"]
    module: http
    http:
      server_name: [b.test]
      locations:
        - path: /
          return: {{ status: 200, body: "vhost-b" }}
"""


class TestStrict(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = Recorder()
        cls.z = Zerg(CONF.replace("@UP@", str(cls.up.port)))
        cls.z.start()
        cls.port = cls.z.ports[0]

    @classmethod
    def tearDownClass(cls):
        cls.z.stop()
        cls.up.sock.close()

    # ---- helpers ---------------------------------------------------------

    def refused(self, data, status):
        """data is answered with status, the connection closed after it, and
        nothing of it reaches the upstream: a valid request sent after it
        arrives there alone."""
        n = self.up.mark()
        st, out = exchange(self.port, data)
        self.assertEqual(st, status, (data, out[:200]))
        self.assertIn(b"\r\nConnection: close\r\n", out.split(b"\r\n\r\n")[0] + b"\r\n")
        self.assertEqual(out.count(b"HTTP/1.1 "), 1, out)  # nothing after it answered
        marker = b"/p/marker-%d" % n
        st, _ = exchange(self.port, req(b"GET " + marker + b" HTTP/1.1"))
        self.assertEqual(st, 200)
        got = self.up.since(n, 1)
        time.sleep(0.05)  # anything sent up late would be here by now
        got = self.up.since(n, 1)
        self.assertEqual(len(got), 1, got)
        self.assertTrue(got[0].startswith(b"GET " + marker + b" HTTP/1.1\r\n"), got)

    def accepted(self, data):
        """data is served through proxy_pass; returns what the upstream got,
        checked to be in strict syntax."""
        n = self.up.mark()
        st, out = exchange(self.port, data)
        self.assertEqual(st, 200, (data, out[:200]))
        got = self.up.since(n, 1)
        self.assertEqual(len(got), 1, got)
        assert_valid_head(self, got[0])
        return got[0]

    def served(self, data, body=b"ok"):
        """data is answered 200 by the return location."""
        st, out = exchange(self.port, data)
        self.assertEqual(st, 200, (data, out[:200]))
        self.assertTrue(out.endswith(body), out)

    # ---- request line (RFC 9112 3) ----------------------------------------

    def test_method_is_a_token(self):
        self.refused(req(b"GE@T /p/x HTTP/1.1"), 400)
        self.refused(req(b"G(T /p/x HTTP/1.1"), 400)
        # a token llhttp does not know: not implemented (RFC 9110 9.1)
        self.refused(req(b"FOO /p/x HTTP/1.1"), 501)
        self.refused(req(b"get /p/x HTTP/1.1"), 501)  # methods are case-sensitive
        self.accepted(req(b"PURGE /p/x HTTP/1.1"))

    def test_request_line_single_sp(self):
        self.refused(req(b"GET  /p/x HTTP/1.1"), 400)
        self.refused(req(b"GET /p/x  HTTP/1.1"), 400)
        self.refused(req(b"GET /p/x HTTP/1.1 "), 400)
        self.refused(req(b"GET\t/p/x HTTP/1.1"), 400)
        self.refused(req(b" GET /p/x HTTP/1.1"), 400)

    def test_target_without_whitespace_or_ctl(self):
        self.refused(req(b"GET /p/x\ty HTTP/1.1"), 400)
        self.refused(req(b"GET /p/x\x7f HTTP/1.1"), 400)
        self.refused(req(b"GET /p/x\x0c HTTP/1.1"), 400)
        self.refused(req(b"GET /p/x y HTTP/1.1"), 400)
        # raw UTF-8 passes, as with nginx (no parser splits on it)
        got = self.accepted(req("GET /p/caf\u00e9 HTTP/1.1".encode()))
        self.assertTrue(got.startswith("GET /p/caf\u00e9 HTTP/1.1\r\n".encode()))

    def test_target_forms(self):
        self.refused(req(b"GET * HTTP/1.1"), 400)  # asterisk-form: OPTIONS only
        self.refused(req(b"GET a:80 HTTP/1.1"), 400)  # authority-form: CONNECT only
        self.served(req(b"OPTIONS * HTTP/1.1"), b"")
        self.accepted(req(b"GET /p/x?a=b&c=%20 HTTP/1.1"))

    def test_absolute_form_overrides_host(self):
        self.served(req(b"GET http://b.test/x HTTP/1.1", b"Host: a\r\n"), b"vhost-b")
        self.served(req(b"GET /x HTTP/1.1", b"Host: b.test\r\n"), b"vhost-b")
        self.served(req(b"GET http://a/x HTTP/1.1", b"Host: b.test\r\n"), b"ok")
        # its authority is checked as Host would be; userinfo is refused
        self.refused(req(b"GET http://u@b.test/p/x HTTP/1.1"), 400)
        self.refused(req(b"GET http:///p/x HTTP/1.1"), 400)
        self.refused(req(b"GET http://a:8x/p/x HTTP/1.1"), 400)
        # it still needs a Host field in HTTP/1.1
        self.refused(b"GET http://b.test/p/x HTTP/1.1\r\nConnection: close\r\n\r\n", 400)

    def test_version_syntax(self):
        self.refused(req(b"GET /p/x http/1.1"), 400)
        self.refused(req(b"GET /p/x HTTP/1.10"), 400)
        self.refused(req(b"GET /p/x HTTP/01.1"), 400)
        self.refused(req(b"GET /p/x HTTP/1"), 400)
        self.refused(req(b"GET /p/x HTTP/2.0"), 505)
        self.refused(req(b"GET /p/x HTTP/3.0"), 505)
        self.refused(req(b"GET /p/x HTTP/0.9"), 505)
        self.accepted(req(b"GET /p/x HTTP/1.0"))
        # a later minor version is served as HTTP/1.1 (RFC 9110 2.5): Host
        # is needed, and the upstream is asked in HTTP/1.1
        got = self.accepted(req(b"GET /p/x HTTP/1.2"))
        self.assertTrue(got.startswith(b"GET /p/x HTTP/1.1\r\n"), got)
        self.refused(b"GET /p/x HTTP/1.9\r\nConnection: close\r\n\r\n", 400)

    def test_bare_cr_and_lf(self):
        self.refused(b"GET /p/x HTTP/1.1\rHost: a\r\nConnection: close\r\n\r\n", 400)
        self.refused(b"GET /p/x HTTP/1.1\nHost: a\nConnection: close\n\n", 400)
        self.refused(b"GET /p/x HTTP/1.1\r\nHost: a\nX: y\r\nConnection: close\r\n\r\n", 400)
        self.refused(req(fields=b"Host: a\r\nX: a\rb\r\n"), 400)
        # empty lines before the request line are ignored (RFC 9112 2.2)
        self.accepted(b"\r\n\r\n" + req())

    def test_whitespace_before_first_field(self):
        self.refused(b"GET /p/x HTTP/1.1\r\n Host: a\r\nConnection: close\r\n\r\n", 400)
        self.refused(b"GET /p/x HTTP/1.1\r\n\tX: y\r\nHost: a\r\nConnection: close\r\n\r\n", 400)

    def test_obs_fold(self):
        self.refused(req(fields=b"Host: a\r\nX: y\r\n z\r\n"), 400)
        self.refused(req(fields=b"Host: a\r\nX: y\r\n\tz\r\n"), 400)

    # ---- field names (RFC 9110 5.1, RFC 9112 5.1) --------------------------

    def test_field_name_with_space_never_forwarded(self):
        self.refused(req(fields=b"Host: a\r\nFoo Bar: x\r\n"), 400)
        self.refused(req(fields=b"Host: a\r\nTransfer Encoding: chunked\r\n"), 400)

    def test_whitespace_between_name_and_colon(self):
        self.refused(req(fields=b"Host: a\r\nFoo : x\r\n"), 400)
        self.refused(req(fields=b"Host: a\r\nHost : evil\r\n"), 400)
        self.refused(req(fields=b"Host: a\r\nFoo\t: x\r\n"), 400)
        self.refused(req(fields=b"Host: a\r\nX  : x\r\n"), 400)
        self.refused(post(b"Content-Length : 3\r\n", b"abc"), 400)
        self.refused(post(b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n"), 400)

    def test_field_name_is_a_token(self):
        for name in (b"Fo@o", b"Fo(o", b'Fo"o', b"Fo/o", b"Fo\xe9o", b"Fo\x01o", b"Fo{o", b"[Foo]"):
            with self.subTest(name=name):
                self.refused(req(fields=b"Host: a\r\n" + name + b": x\r\n"), 400)
        self.refused(req(fields=b"Host: a\r\n: x\r\n"), 400)  # empty name
        self.refused(req(fields=b"Host: a\r\nNoColon\r\n"), 400)
        got = self.accepted(req(fields=b"Host: a\r\n!#$%&'*+-.^_`|~09azAZ: x\r\n"))
        self.assertIn(b"\r\n!#$%&'*+-.^_`|~09azAZ: x\r\n", got)

    # ---- field values (RFC 9110 5.5) -------------------------------------

    def test_field_value_forbidden_bytes(self):
        for value in (b"a\x00b", b"a\x7fb", b"a\x0bb", b"a\x1bb", b"\x01a"):
            with self.subTest(value=value):
                self.refused(req(fields=b"Host: a\r\nX: " + value + b"\r\n"), 400)

    def test_field_value_allowed_bytes_and_ows(self):
        got = self.accepted(req(fields=b"Host: a\r\nX-A: \xe9t\xe9\xff\r\nX-B:\t a\tb c \t\r\n"
                                b"X-C:\r\nX-D:v\r\n"))
        self.assertIn(b"\r\nX-A: \xe9t\xe9\xff\r\n", got)
        self.assertIn(b"\r\nX-B: a\tb c\r\n", got)  # OWS around the value stripped
        self.assertIn(b"\r\nX-C: \r\n", got)
        self.assertIn(b"\r\nX-D: v\r\n", got)

    # ---- framing (RFC 9112 6) --------------------------------------------

    def test_content_length_invalid(self):
        for v in (b"+3", b"-1", b"0x3", b"", b"3 3", b"3, 4", b"3,", b"abc",
                  b"99999999999999999999999"):
            with self.subTest(v=v):
                self.refused(post(b"Content-Length: " + v + b"\r\n", b"abc"), 400)

    def test_content_length_duplicates_refused(self):
        # RFC 9110 8.6 lets a recipient refuse a list of identical values:
        # zerg does, as nginx does, rather than forward a list upstream
        self.refused(post(b"Content-Length: 3, 3\r\n", b"abc"), 400)
        self.refused(post(b"Content-Length: 3\r\nContent-Length: 3\r\n", b"abc"), 400)

    def test_content_length_valid(self):
        got = self.accepted(post(b"Content-Length: 003\r\n", b"abc"))
        self.assertTrue(got.endswith(b"\r\n\r\nabc"), got)
        got = self.accepted(post(b"Content-Length: 3 \r\n", b"abc"))
        self.assertTrue(got.endswith(b"\r\n\r\nabc"), got)

    def test_transfer_encoding_with_content_length(self):
        self.refused(post(b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
                          b"3\r\nabc\r\n0\r\n\r\n"), 400)
        self.refused(post(b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
                          b"3\r\nabc\r\n0\r\n\r\n"), 400)

    def test_transfer_encoding_not_ending_in_chunked(self):
        self.refused(post(b"Transfer-Encoding: gzip\r\n", b"abc"), 400)
        self.refused(post(b"Transfer-Encoding: chunked, gzip\r\n", b"0\r\n\r\n"), 400)
        self.refused(post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                          b"0\r\n\r\n"), 400)
        self.refused(post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
                          b"0\r\n\r\n"), 400)
        self.refused(post(b"Transfer-Encoding: \r\n", b"abc"), 400)

    def test_transfer_encoding_unknown_coding(self):
        self.refused(post(b"Transfer-Encoding: foo, chunked\r\n", b"0\r\n\r\n"), 501)
        self.refused(post(b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n"), 501)

    def test_transfer_encoding_in_http10(self):
        self.refused(b"POST /p/x HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\r\nabc\r\n0\r\n\r\n", 400)

    def test_transfer_codings_forwarded(self):
        got = self.accepted(post(b"Transfer-Encoding: gzip, chunked\r\n", b"3\r\nabc\r\n0\r\n\r\n"))
        self.assertIn(b"\r\nTransfer-Encoding: gzip, chunked\r\n", got)
        got = self.accepted(post(b"Transfer-Encoding: gzip\r\nTransfer-Encoding: , Chunked\r\n",
                                 b"3\r\nabc\r\n0\r\n\r\n"))
        self.assertIn(b"\r\nTransfer-Encoding: gzip, chunked\r\n", got)
        self.assertTrue(got.endswith(b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), got)

    # ---- chunked coding (RFC 9112 7.1) --------------------------------------

    def test_chunk_size_syntax(self):
        for size in (b"0x3", b"-3", b"+3", b"", b"3 ", b"fffffffffffffffff3", b"3\x00"):
            with self.subTest(size=size):
                self.refused(post(b"Transfer-Encoding: chunked\r\n",
                                  size + b"\r\nabc\r\n0\r\n\r\n"), 400)
        got = self.accepted(post(b"Transfer-Encoding: chunked\r\n", b"00A\r\n0123456789\r\n0\r\n\r\n"))
        self.assertTrue(got.endswith(b"0123456789\r\n0\r\n\r\n"), got)

    def test_chunk_extensions(self):
        for ext in (b";a", b";a=b", b';a="b c"', b";a;c=d", b';a="b";c=d'):
            with self.subTest(ext=ext):
                got = self.accepted(post(b"Transfer-Encoding: chunked\r\n",
                                         b"3" + ext + b"\r\nabc\r\n0" + ext + b"\r\n\r\n"))
                self.assertTrue(got.endswith(b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), got)
        self.refused(post(b"Transfer-Encoding: chunked\r\n", b"3;a@=b\r\nabc\r\n0\r\n\r\n"), 400)
        self.refused(post(b"Transfer-Encoding: chunked\r\n", b"3;a=\x01\r\nabc\r\n0\r\n\r\n"), 400)

    def test_chunked_bare_lf(self):
        for body in (b"3\nabc\r\n0\r\n\r\n", b"3\r\nabc\n0\r\n\r\n", b"3\r\nabc\r\n0\n\r\n",
                     b"3\r\nabcX0\r\n\r\n"):
            with self.subTest(body=body):
                self.refused(post(b"Transfer-Encoding: chunked\r\n", body), 400)

    def test_trailer_fields(self):
        # valid trailers are read and dropped, never sent up
        got = self.accepted(post(b"Transfer-Encoding: chunked\r\n",
                                 b"3\r\nabc\r\n0\r\nX-T: 1\r\nContent-Length: 9\r\n\r\n"))
        self.assertTrue(got.endswith(b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), got)
        for trailer in (b"X T: 1", b"X-T : 1", b": 1", b"X-T: 1\x00", b"X-T: \x01"):
            with self.subTest(trailer=trailer):
                st, out = exchange(self.port, post(b"Transfer-Encoding: chunked\r\n",
                                                   b"3\r\nabc\r\n0\r\n" + trailer + b"\r\n\r\n"))
                self.assertEqual(st, 400, out[:200])

    # ---- answers relayed by proxy_pass (RFC 9112 5.1, 5.2) ------------------

    def answer(self, name):
        st, out = exchange(self.port, req(b"GET /p/answer/" + name + b" HTTP/1.1"))
        return st, out.split(b"\r\n\r\n", 1)[0] + b"\r\n"

    def test_answer_field_names(self):
        # whitespace before the colon is removed before relaying
        st, head = self.answer(b"ws-before-colon")
        self.assertEqual(st, 200)
        self.assertIn(b"\r\nFoo: bar\r\n", head)
        # a name that is no token makes the answer invalid
        for name in (b"space-in-name", b"empty-name", b"separator-in-name", b"ctl-in-value"):
            with self.subTest(name=name):
                self.assertEqual(self.answer(name)[0], 502)

    def test_answer_obs_fold_replaced(self):
        st, head = self.answer(b"obs-fold")
        self.assertEqual(st, 200)
        self.assertIn(b"\r\nFoo: a b\r\n", head)

    # ---- Host (RFC 9112 3.2) ---------------------------------------------

    def test_host_missing(self):
        self.refused(b"GET /p/x HTTP/1.1\r\nConnection: close\r\n\r\n", 400)
        self.accepted(b"GET /p/x HTTP/1.0\r\n\r\n")

    def test_host_multiple(self):
        self.refused(req(fields=b"Host: a\r\nHost: a\r\n"), 400)
        self.refused(req(fields=b"Host: a\r\nHost: b\r\n"), 400)

    def test_host_invalid(self):
        for host in (b"a b", b"u@a", b"a/b", b"a:8x", b"[::1", b"a\xe9"):
            with self.subTest(host=host):
                self.refused(req(fields=b"Host: " + host + b"\r\n"), 400)

    def test_host_valid_forms(self):
        for host in (b"", b"a.example:8080", b"[::1]:80", b"xn--e1a.test", b"a_b"):
            with self.subTest(host=host):
                self.accepted(req(fields=b"Host: " + host + b"\r\n"))


LOG_CONF = HTTP_SERVER + """      access_log: {{ path: {tmp}/access.log }}
      locations:
        - path: /
          return: {{ status: 200, body: "ok" }}
"""


class TestRefusalLog(unittest.TestCase):
    """A keep-alive request refused by the head scanner, before llhttp meets
    it, is logged as itself: "-" for its request line, never the line of the
    request before it on the connection (whose head buffer is gone)."""

    def test_refused_head_logs_its_own_line(self):
        z = Zerg(LOG_CONF)
        z.start()
        try:
            s = socket.create_connection(("127.0.0.1", z.ports[0]), timeout=T)
            long_target = b"/first-" + b"x" * 6000  # a head buffer not kept
            s.sendall(b"GET " + long_target + b" HTTP/1.1\r\nHost: a\r\n\r\n")
            got = b""
            while not got.endswith(b"ok"):
                d = s.recv(65536)
                self.assertTrue(d, got)
                got += d
            s.sendall(b"GET /second HTTP/1.1\r\nHost: a\r\nFoo: a\x01b\r\n\r\n")
            pieces = []
            zgtest.recv_to_eof(s, pieces.append)
            s.close()
            self.assertIn(b"HTTP/1.1 400 ", b"".join(pieces))
            path = os.path.join(z.tmp, "access.log")
            deadline = time.time() + T
            lines = []
            while time.time() < deadline:
                with open(path, "rb") as f:
                    lines = f.read().splitlines()
                if len(lines) >= 2:
                    break
                time.sleep(0.05)
            self.assertEqual(len(lines), 2, lines)
            self.assertIn(b'"GET /first-x', lines[0])
            self.assertIn(b" 400 ", lines[1])
            self.assertIn(b'"-"', lines[1])
            self.assertNotIn(b"first", lines[1])
        finally:
            z.stop()


if __name__ == "__main__":
    zgtest.main()

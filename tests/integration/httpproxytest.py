"""httpproxytest - what the http module's proxy_pass tests share: a body
pattern, an upstream HTTP server in this process (with listeners that never
answer, never accept, and a port nobody listens on), zerg's configuration, a
raw client that reads responses one by one, and the ProxyTest base class."""
import hashlib
import http.server
import json
import os
import random
import socket
import sys
import threading
import time
import traceback
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zgtest import Zerg, free_port, recv_message, wait_for  # noqa: E402
from httptest import HTTP_SERVER  # noqa: E402

T = 10.0  # every socket timeout

# ---- the body pattern ---------------------------------------------------
# a random block of a prime length, repeated: bodies are deterministic and a
# lost, doubled or reordered piece shows up

_P = 65521
_BLOCK = random.Random(1234).randbytes(_P)
_DOUBLE = _BLOCK + _BLOCK


def pattern_iter(n, step=65536):
    """The n bytes of the pattern, in pieces of at most step bytes."""
    off = 0
    while off < n:
        k = min(step, n - off, _P)
        s = off % _P
        yield _DOUBLE[s:s + k]
        off += k


def pattern(n):
    return b"".join(pattern_iter(n))


def sha(data):
    return hashlib.sha256(data).hexdigest()


UPSTREAM_DATE = "Mon, 01 Jan 2001 00:00:00 GMT"
UPSTREAM_SERVER = "UpstreamSrv/1.0"


# ---- the upstream -------------------------------------------------------

class Upstream(http.server.BaseHTTPRequestHandler):
    """Dispatches on the first path segment it knows (so /api/echo, /v1/echo
    and /echo/x all reach echo)."""
    protocol_version = "HTTP/1.1"
    server_version = UPSTREAM_SERVER
    sys_version = ""
    log = []  # (method, target, headers) of every request, for the tests
    log_lock = threading.Lock()
    stall = threading.Event()

    def log_message(self, *a):
        pass

    def date_time_string(self, timestamp=None):
        return UPSTREAM_DATE

    def version_string(self):
        return UPSTREAM_SERVER

    # every method goes to dispatch
    def do_GET(self):
        self.dispatch()
    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def handle_expect_100(self):
        # answer no interim ourselves: the proxy must not forward Expect
        return True

    # -- helpers --
    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            out = bytearray()
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise EOFError("request body: closed inside a chunk size")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(8)
        n = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(n) if n else b""

    def send_raw(self, data, close=True):
        self.wfile.write(data)
        self.wfile.flush()
        if close:
            self.close_connection = True

    def head(self, status, headers, reason=None):
        reason = reason or self.responses.get(status, ("Whatever",))[0]
        lines = [f"HTTP/1.1 {status} {reason}", f"Server: {UPSTREAM_SERVER}",
                 f"Date: {UPSTREAM_DATE}", "X-Up: yes"]
        lines += [f"{k}: {v}" for k, v in headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def reply(self, status, body, headers=(), reason=None):
        hs = list(headers) + [("Content-Length", str(len(body)))]
        self.send_raw(self.head(status, hs, reason) + (b"" if self.command == "HEAD" else body))

    def dispatch(self):
        parts = urllib.parse.urlsplit(self.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query).items()}
        segs = parts.path.split("/")
        with Upstream.log_lock:
            Upstream.log.append((self.command, self.path, list(self.headers.items())))
        for i, seg in enumerate(segs):
            fn = getattr(self, "r_" + seg.replace("-", "_"), None) if seg else None
            if fn:
                return fn(q, segs[i + 1:])
        self.reply(404, b"upstream: no such thing\n")

    # -- endpoints --
    def r_echo(self, q, rest):
        body = self.read_body()
        doc = {"method": self.command, "target": self.path, "version": self.request_version,
               "headers": list(self.headers.items()), "body_len": len(body), "body_sha": sha(body),
               "body": body.decode("latin-1") if len(body) <= 65536 else None}
        self.reply(200, json.dumps(doc).encode(), [("Content-Type", "application/json")])

    def r_big(self, q, rest):
        n = int(q.get("n", "0"))
        self.send_raw(self.head(200, [("Content-Length", str(n)),
                                      ("Content-Type", "application/octet-stream")]), close=False)
        if self.command != "HEAD":
            for piece in pattern_iter(n):
                self.wfile.write(piece)
        self.close_connection = True

    def r_chunked(self, q, rest):
        n, cs = int(q.get("n", "0")), int(q.get("cs", "1000"))
        self.send_raw(self.head(200, [("Transfer-Encoding", "chunked")]), close=False)
        if self.command != "HEAD":
            data = pattern(n)
            for i in range(0, n, cs):
                piece = data[i:i + cs]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True

    def r_chunktrunc(self, q, rest):
        # chunked, then the connection closes in the middle of the second chunk
        self.send_raw(self.head(200, [("Transfer-Encoding", "chunked")]) +
                      b"10\r\n0123456789abcdef\r\n10\r\n01234", close=True)

    def r_close(self, q, rest):
        n = int(q.get("n", "0"))
        self.send_raw(self.head(200, [("Connection", "close")]), close=False)
        if self.command != "HEAD":
            for piece in pattern_iter(n):
                self.wfile.write(piece)
        self.close_connection = True

    def r_slow(self, q, rest):
        SLOW.append("gone" if "gone" in q else "")  # tests wait for their requests here
        time.sleep(int(q.get("ms", "0")) / 1000)  # the point: an upstream slow to answer
        self.reply(200, b"slow " + q.get("ms", "0").encode())

    def r_status(self, q, rest):
        st = int(rest[0])
        hs = [("Location", "http://elsewhere.example/x")] if 300 <= st < 400 else []
        body = b"" if st in (204, 304) else b"status %d body\n" % st
        if st in (204, 304):
            self.send_raw(self.head(st, hs))
        else:
            self.reply(st, body, hs, reason="Custom Reason")

    def r_truncate(self, q, rest):
        self.send_raw(self.head(200, [("Content-Length", "1000")]) + pattern(10), close=True)

    def r_stall(self, q, rest):
        # a head and a little body, then nothing for longer than the read timeout
        self.send_raw(self.head(200, [("Content-Length", "1000")]) + pattern(10), close=False)
        Upstream.stall.wait(4)
        self.close_connection = True

    def r_garbage(self, q, rest):
        self.send_raw(b"SSH-2.0-OpenSSH_9.0\r\nthis is not http at all\r\n\r\n")

    # answers the fuzz test found mishandled: a status out of range (sent
    # its body with no head) and one without any field (memcpy from NULL)
    def r_status20(self, q, rest):
        self.send_raw(b"HTTP/1.0 20 OK\r\nServer: up\r\n\r\nno head for this body")

    def r_status199(self, q, rest):
        self.send_raw(b"HTTP/1.1 199 Odd\r\n\r\nbody")

    def r_nofields(self, q, rest):
        self.send_raw(b"HTTP/1.1 204 No Content\r\n\r\n")

    def r_headclose(self, q, rest):
        self.send_raw(b"HTTP/1.1 200 OK\r\nContent-Le")

    def r_bighead(self, q, rest):
        n = int(q.get("n", "20000"))
        self.reply(200, b"bighead", [("X-Big", "b" * n)])

    def r_early_hints(self, q, rest):
        self.send_raw(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                      + self.head(200, [("Content-Length", "2")]) + b"ok")

    def r_drip(self, q, rest):
        # chunked, a piece every ms milliseconds: longer in all than the read
        # timeout, every gap shorter
        k, ms = int(q.get("k", "5")), int(q.get("ms", "400"))
        self.send_raw(self.head(200, [("Transfer-Encoding", "chunked")]), close=False)
        for i in range(k):
            time.sleep(ms / 1000)  # the point: the gaps the read timeout measures
            self.wfile.write(b"6\r\ndrip %d\r\n" % i)
        self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True

    def r_headdrip(self, q, rest):
        # the head a few bytes at a time
        data = self.head(200, [("Content-Length", "5"), ("X-Drip", "d" * 100)]) + b"hello"
        for i in range(0, len(data), 7):
            self.wfile.write(data[i:i + 7])
            time.sleep(0.003)  # the point: the head in many pieces
        self.close_connection = True

    def r_overlong(self, q, rest):
        # more bytes than the Content-Length says
        self.send_raw(self.head(200, [("Content-Length", "5")]) + b"helloEXTRA GARBAGE\r\n\r\n")

    def r_chunkext(self, q, rest):
        # chunk extensions and a trailer
        self.send_raw(self.head(200, [("Transfer-Encoding", "chunked"), ("Trailer", "X-Tr")]) +
                      b"5;name=value\r\nhello\r\n6;x=\"y\"\r\n world\r\n0\r\nX-Tr: t\r\n\r\n")

    def r_chunkbws(self, q, rest):
        # whitespace before a chunk extension (RFC 9112 7.1.1: BWS; nginx takes it)
        self.send_raw(self.head(200, [("Transfer-Encoding", "chunked")]) +
                      b"5 ;a=b\r\nhello\r\n6\t; x=\"y\"\r\n world\r\n0\r\n\r\n")

    def r_headbody(self, q, rest):
        # a body even for HEAD (a broken upstream)
        self.send_raw(self.head(200, [("Content-Length", "5")]) + b"hello")

    def r_lenonly(self, q, rest):
        # a 204 or 304 with a Content-Length (a 304 may give the length of
        # the representation it stands for); ?body=1 adds bytes a 204 must
        # not have. The connection stays open, as a keep-alive upstream's.
        st = int(rest[0])
        extra = b"hello" if q.get("body") else b""
        self.send_raw(self.head(st, [("ETag", '"e"'), ("Content-Length", "10")]) + extra,
                      close=bool(extra))

    def r_hangup(self, q, rest):
        self.close_connection = True

    def r_manyheaders(self, q, rest):
        n = int(q.get("n", "100"))
        self.reply(200, b"many", [(f"X-H-{i}", f"v{i}") for i in range(n)])

    def r_old(self, q, rest):
        # an HTTP/1.0 status line
        self.send_raw(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\nX-Up: old\r\n\r\nold")

    def r_hop(self, q, rest):
        self.reply(200, b"hop", [("Connection", "close"), ("Keep-Alive", "timeout=99"),
                                 ("X-Multi", "one"), ("X-Multi", "two")])


class UpstreamServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    errors = []

    def handle_error(self, request, client_address):
        # a proxy that goes away mid-answer is part of the tests: keep quiet
        self.errors.append(traceback.format_exc(limit=3))


def listener(backlog):
    """A socket listening on a fresh loopback port, and that port."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(backlog)
    return ls, ls.getsockname()[1]


def accept_each(ls, take):
    """On a thread of its own: take(sock) for each connection ls accepts,
    until ls stops listening."""
    def loop():
        while True:
            try:
                s, _ = ls.accept()
            except OSError:
                return
            take(s)
    threading.Thread(target=loop, daemon=True).start()


def unlisten(ls):
    """Stops ls listening: a close alone leaves it listening while a thread
    waits in accept (and a later test's connection could land there)."""
    try:
        ls.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    ls.close()


class RawUpstream:
    """A loopback HTTP/1.1 listener serving each connection on a thread of
    its own: answer(sock, n, k, request_line, fields, rest) in a subclass
    answers the k-th request (from 0) of connection n (from 1), fields
    lowercased, its Content-Length body read and dropped, rest the bytes
    after it; it returns whether to read another request. open counts the
    connections open now."""

    def __init__(self):
        self.ls, self.port = listener(128)
        self.lock = threading.Lock()
        self.nconns = 0
        self.open = 0
        accept_each(self.ls, self.accepted)

    def accepted(self, s):
        with self.lock:
            self.nconns += 1
            self.open += 1
            n = self.nconns
        s.settimeout(10)
        threading.Thread(target=self.serve, args=(s, n), daemon=True).start()

    def serve(self, s, n):
        buf, k = b"", 0
        try:
            while True:
                msg = recv_message(s, buf)
                if msg is None:
                    return
                head, _, buf = msg
                lines = head.decode("latin-1").split("\r\n")
                fields = dict((a.strip().lower(), b.strip()) for a, b in
                              (ln.split(":", 1) for ln in lines[1:]))
                if not self.answer(s, n, k, lines[0], fields, buf):
                    return
                k += 1
        except OSError:
            return
        finally:
            s.close()
            with self.lock:
                self.open -= 1

    def answer(self, s, n, k, line, fields, rest):
        raise NotImplementedError

    def close(self):
        unlisten(self.ls)


class RawUpstreamTest(unittest.TestCase):
    """For each test a fresh BACKEND (a RawUpstream class) and a zerg on
    CONF, where @BE@ stands for the backend's port."""
    BACKEND = RawUpstream
    CONF = ""

    def setUp(self):
        self.be = self.BACKEND()
        self.addCleanup(self.be.close)
        self.z = Zerg(self.CONF.replace("@BE@", str(self.be.port)))
        self.z.start()
        self.addCleanup(self.z.stop)


class Mute:
    """A listener that accepts and never answers."""

    def __init__(self):
        self.ls, self.port = listener(64)
        self.conns = []
        accept_each(self.ls, self.conns.append)

    def close(self):
        unlisten(self.ls)
        for c in self.conns:
            c.close()


class Deaf:
    """A listener that never accepts, its accept queue one long: once fill()
    has put a connection in it, Linux drops every further SYN, so a connect
    to it hangs until the connecting side gives up."""

    def __init__(self):
        self.ls, self.port = listener(0)
        self.held = []

    def fill(self, tries=4, timeout=0.3):
        """Connect (and keep the connections open) until a connect times out:
        True then, False when every one got through (a kernel answering for a
        full queue, as with syncookies)."""
        for _ in range(tries):
            try:
                self.held.append(socket.create_connection(("127.0.0.1", self.port), timeout))
            except socket.timeout:
                return True
        return False

    def close(self):
        unlisten(self.ls)
        for c in self.held:
            c.close()


# made by setUpModule, which a test file takes in with tearDownModule:
# from httpproxytest import setUpModule, tearDownModule
UP = None
SLOW = []  # requests that reached /api/slow ("gone" for those with ?gone=)
MUTE = None
DEAF = None
DEAD = None


def setUpModule():
    global UP, MUTE, DEAF, DEAD
    Upstream.stall.clear()  # set by the tearDownModule of a file run before
    UP = UpstreamServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=UP.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    MUTE = Mute()
    DEAF = Deaf()
    DEAD = free_port()


def tearDownModule():
    Upstream.stall.set()
    UP.shutdown()
    UP.server_close()
    MUTE.close()
    DEAF.close()


def up_port():
    return UP.server_address[1]


def up_requests(tag):
    """The requests the upstream got whose target holds tag."""
    with Upstream.log_lock:
        return [r for r in Upstream.log if tag in r[1]]


CONF = HTTP_SERVER + """      keepalive_timeout: 5s
      client_body_timeout: 2s
      client_max_body_size: 1m
      access_log:
        path: {tmp}/access.log
        format: combined
        flush: 100ms
      locations:
        - path: =/local
          return:
            status: 200
            body: local
        - path: /api/
          proxy_pass: "http://127.0.0.1:@UP@"
          proxy_connect_timeout: 2s
          proxy_read_timeout: 1s
          proxy_buffer_size: 16k
        - path: /v2/
          proxy_pass: "http://127.0.0.1:@UP@/v1/"
        - path: /hdr/
          proxy_pass: "http://127.0.0.1:@UP@"
          proxy_set_header:
            X-Real-IP: $remote_addr
            Host: $host
            X-Forwarded-For: $proxy_add_x_forwarded_for
            X-Drop: ""
            X-Scheme: $scheme
            X-Uri: $request_uri
            X-PH: $proxy_host
            X-Added: fixed value
        - path: /dead/
          proxy_pass: "http://127.0.0.1:@DEAD@"
        - path: /mute/
          proxy_pass: "http://127.0.0.1:@MUTE@"
          proxy_read_timeout: 1s
        - path: /deaf/
          proxy_pass: "http://127.0.0.1:@DEAF@"
          proxy_connect_timeout: 500ms
"""


def conf_text():
    return (CONF.replace("@UP@", str(up_port())).replace("@DEAD@", str(DEAD))
            .replace("@MUTE@", str(MUTE.port)).replace("@DEAF@", str(DEAF.port)))


# ---- a client -----------------------------------------------------------

def request(method, target, headers=(), body=None, version="1.1", host="t"):
    lines = [f"{method} {target} HTTP/{version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    lines += [f"{k}: {v}" for k, v in headers]
    if body is not None and not any(k.lower() in ("content-length", "transfer-encoding")
                                    for k, _ in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


class Resp:
    def __init__(self, version, status, reason, headers):
        self.version, self.status, self.reason, self.headers = version, status, reason, headers
        self.body = b""
        self.closed = False  # the connection ended right after (read to close)
        self.raw_body = b""

    def h(self, name):
        v = self.all(name)
        return v[0] if v else None

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        return f"<{self.status} {self.headers} body[{len(self.body)}]={self.body[:200]!r}>"


class Client:
    """One connection to zerg, reading responses one by one."""

    def __init__(self, port, timeout=T, rcvbuf=None):
        self.s = socket.socket()
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(timeout)
        self.s.connect(("127.0.0.1", port))
        self.buf = bytearray()
        self.eof = False

    def close(self):
        self.s.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        self.s.sendall(data)

    def fill(self, n=1 << 20):
        if self.eof:
            return False
        try:
            d = self.s.recv(n)
        except ConnectionResetError:
            d = b""
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def take(self, n):
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def line(self):
        while b"\r\n" not in self.buf:
            if not self.fill():
                raise EOFError("closed inside a line: %r" % bytes(self.buf[:200]))
        i = self.buf.index(b"\r\n")
        return self.take(i + 2)[:-2]

    def exact(self, n):
        while len(self.buf) < n:
            if not self.fill():
                raise EOFError(f"closed after {len(self.buf)} of {n} bytes")
        return self.take(n)

    def to_close(self):
        while self.fill():
            pass
        return self.take(len(self.buf))

    def head(self):
        while b"\r\n\r\n" not in self.buf:
            if not self.fill():
                raise EOFError("closed before a full head: %r" % bytes(self.buf[:300]))
        i = self.buf.index(b"\r\n\r\n")
        lines = self.take(i + 4)[:-4].decode("latin-1").split("\r\n")
        version, status, *reason = lines[0].split(" ", 2)
        hs = []
        for ln in lines[1:]:
            k, v = ln.split(":", 1)
            hs.append((k.strip(), v.strip()))
        return Resp(version, int(status), reason[0] if reason else "", hs)

    def response(self, head_req=False, keep_1xx=False):
        """One whole response (1xx interim ones are skipped unless keep_1xx)."""
        r = self.head()
        while r.status < 200 and not keep_1xx:
            r = self.head()
        if head_req or r.status in (204, 304) or r.status < 200:
            return r
        te = (r.h("transfer-encoding") or "").lower()
        if "chunked" in te:
            raw, body = bytearray(), bytearray()
            while True:
                ln = self.line()
                raw += ln + b"\r\n"
                size = int(ln.split(b";")[0], 16)
                if size == 0:
                    while True:
                        t = self.line()
                        raw += t + b"\r\n"
                        if not t:
                            break
                    break
                piece = self.exact(size)
                body += piece
                crlf = self.exact(2)
                assert crlf == b"\r\n", f"chunk not followed by CRLF: {crlf!r}"
                raw += piece + crlf
            r.body, r.raw_body = bytes(body), bytes(raw)
        elif r.h("content-length") is not None:
            r.body = self.exact(int(r.h("content-length")))
        else:
            r.body = self.to_close()
            r.closed = True
        return r

    def closed_soon(self, timeout=3.0):
        """True when zerg closes the connection within timeout (what was
        still unread is dropped)."""
        self.s.settimeout(timeout)
        try:
            while self.fill():
                pass
            return True
        except socket.timeout:
            return False
        finally:
            self.s.settimeout(T)


class ProxyTest(unittest.TestCase):
    """One zerg for the class, on CONF."""

    @classmethod
    def setUpClass(cls):
        cls.z = Zerg(conf_text())
        cls.z.start()
        cls.port = cls.z.ports[0]
        cls.workers = cls.z.workers()

    @classmethod
    def tearDownClass(cls):
        cls.z.stop()

    def tearDown(self):
        # a worker that crashed is restarted by the master: name the test
        self.assertIsNone(self.z.proc.poll(), "zerg exited:\n" + self.z.output()[-3000:])
        now = wait_for(lambda: self.z.workers() if len(self.z.workers()) == len(self.workers) else None, 2)
        self.assertEqual(now, self.workers, "a worker was replaced (crash?):\n" + self.z.output()[-3000:])

    def responses(self, c, n, heads=()):
        """n responses from c (those at the indexes in heads to HEAD); a
        failure names what came before."""
        rs = []
        try:
            for i in range(n):
                rs.append(c.response(head_req=(i in heads)))
        except (EOFError, OSError, ValueError) as e:
            self.fail(f"response {len(rs)} of {n}: {e!r}; before it: "
                      f"{[(r.status, r.body[:60]) for r in rs]}")
        return rs

    def client(self, **kw):
        c = Client(self.port, **kw)
        self.addCleanup(c.close)
        return c

    def get(self, target, method="GET", headers=(), body=None, version="1.1", head_req=None):
        c = self.client()
        c.send(request(method, target, headers + (("Connection", "close"),) if version == "1.1" else headers,
                       body, version))
        return c.response(head_req=(method == "HEAD") if head_req is None else head_req)

    def ask(self, target, method="GET", keep_1xx=False):
        """A fresh keep-alive connection and its answer to one request."""
        c = self.client()
        c.send(request(method, target))
        return c, c.response(head_req=method == "HEAD", keep_1xx=keep_1xx)

    def assert_serves_local(self, c):
        """c's connection still serves: /local answers on it."""
        c.send(request("GET", "/local"))
        r = c.response()
        self.assertEqual((r.status, r.body), (200, b"local"), r)

    def echo(self, r):
        self.assertEqual(r.status, 200, r)
        return json.loads(r.body)



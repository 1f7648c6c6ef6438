#!/usr/bin/env python3
"""test_http2 - HTTP/2 in the http module through the real zerg: h2c by prior
knowledge with curl, nghttp and h2load (return, static files byte-exact,
ranges, conditionals, HEAD, error pages, virtual hosts by :authority, the
access log), raw frames with python3-h2 for flow control (a large file
through a small window), rapid reset, a SETTINGS flood, oversized header
lists and a client that never opens its window, and the drain's GOAWAY."""
import email.utils
import hashlib
import os
import re
import shutil
import socket
import struct
import threading
import subprocess
import sys
import tempfile
import time
import unittest

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import hpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zgtest  # noqa: E402
from httptest import HTTP_SERVER, h2_server, start_serving  # noqa: E402
from test_tls import make_certs  # noqa: E402
from zgtest import wait_until  # noqa: E402

CONF = HTTP_SERVER + """      server_name: [a.test]
      http2: {{ max_concurrent_streams: 32, initial_window_size: 64k, max_header_list_size: 8k,
               idle_timeout: 20s }}
      send_timeout: 2s
      client_max_body_size: 1k
      access_log: {{ path: "{tmp}/access.log", flush: 100ms }}
      error_page: {{ 404: /err/404.html }}
      limit_zones:
        once: {{ key: $remote_addr, rate: 1r/m }}
        paced: {{ key: $remote_addr, rate: 10r/s }}
      locations:
        - path: =/limited
          return: {{ status: 200, body: ok }}
          limit_req: {{ zone: once, status: 503 }}
        - path: =/paced
          return: {{ status: 200, body: ok }}
          limit_req: {{ zone: paced, burst: 5 }}
        - path: =/hello
          return: {{ status: 200, body: "Hello, h2!", headers: {{ Content-Type: text/plain, X-Test: yes }} }}
        - path: =/moved
          return: {{ status: 301, location: "http://$host/hello" }}
        - {{ path: /metrics, status: true }}
        - path: /up/
          proxy_pass: http://127.0.0.1:9
        - {{ path: /err/, root: "{tmp}/www" }}
        - {{ path: /, root: "{tmp}/www", autoindex: true }}
  - listen: ["127.0.0.1:{port0}"]
    module: http
    http:
      server_name: [b.test]
      locations:
        - path: /
          return: {{ status: 200, body: "this is b" }}
  - listen: ["127.0.0.1:{port1}"]
    module: http
    http:
      locations:
        - path: /
          return: {{ status: 200, body: "no h2 here" }}
""" + h2_server(2, tls=True) + """  - listen: ["127.0.0.1:{port4}"]
    module: http
    http:
      http2: {{ idle_timeout: 500ms }}
      locations:
        - path: /
          return: {{ status: 200, body: "short idle" }}
  - listen: ["127.0.0.1:{port3}"]
    module: http
    tls: {{ certificates: [ {{ certificate: "CERTS/rsa.pem", key: "CERTS/rsa.key" }} ] }}
    http:
      locations:
        - path: /
          return: {{ status: 200, body: "TLS, no h2" }}
"""

BIG = 3 * (1 << 20) + 4321  # mapped or read in pieces, framed in many DATA frames
HUGE = 16 << 20             # through a small flow-control window


def sha(b):
    return hashlib.sha256(b).hexdigest()


def setUpModule():
    global Z, PORT, FILES, CERTS
    CERTS = tempfile.mkdtemp(prefix="zgh2-")
    make_certs(CERTS)
    FILES = {"big.bin": os.urandom(BIG), "huge.bin": os.urandom(HUGE), "small.txt": b"small\n",
             "err/404.html": b"<p>custom 404</p>\n", "dir/x.txt": b"x"}
    Z = start_serving(CONF.replace("CERTS", CERTS), FILES)
    PORT = Z.ports[0]


def tearDownModule():
    Z.stop()
    shutil.rmtree(CERTS, ignore_errors=True)


def curl(*args, port=None, path="/hello", out=None):
    """curl --http2-prior-knowledge: (returncode, body, stderr, 'version code')."""
    url = f"http://127.0.0.1:{port or PORT}{path}"
    cmd = ["curl", "-sS", "--http2-prior-knowledge", "--max-time", "20",
           "-w", "\n%{http_version} %{http_code}"] + list(args) + [url]
    if out:
        cmd[1:1] = ["-o", out]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    body, _, meta = r.stdout.rpartition(b"\n")
    return r.returncode, body, r.stderr.decode(errors="replace"), meta.decode()


def h2load(url):
    """h2load's report of 2000 requests, 16 at once on each of 4 connections."""
    r = subprocess.run(["h2load", "-c", "4", "-m", "16", "-n", "2000", url],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    return r.stdout.decode(errors="replace")


def goaways():
    """zerg_http_http2_goaways_total now (the metrics are published every second)."""
    body = curl(path="/metrics")[1]
    return int(re.search(rb"zerg_http_http2_goaways_total (\d+)", body).group(1))


class H2:
    """A raw HTTP/2 client connection (python3-h2) with prior knowledge."""

    def __init__(self, port=None, settings=None, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port or PORT), timeout=timeout)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self.events = []

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path, headers=(), end=True, authority="a.test"):
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, [(":method", "GET"), (":path", path), (":scheme", "http"),
                                     (":authority", authority)] + list(headers), end_stream=end)
        self.flush()
        return sid

    def pump(self):
        """One read: the events it brought (None when the server closed)."""
        data = self.sock.recv(1 << 16)
        if not data:
            return None
        evs = self.conn.receive_data(data)
        self.events += evs
        self.flush()
        return evs

    def until_closed(self, timeout=10.0):
        """Reads to the end; returns the GOAWAY event seen, if any."""
        self.sock.settimeout(timeout)
        goaway = None
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except (ConnectionResetError, socket.timeout):
                break
            if not data:
                break
            try:
                evs = self.conn.receive_data(data)
            except h2.exceptions.ProtocolError:
                continue
            for e in evs:
                if isinstance(e, h2.events.ConnectionTerminated):
                    goaway = e
        return goaway

    def response(self, sid, ack=True):
        """(headers dict, body) of stream sid, acknowledging DATA as it comes."""
        hdrs, body = None, bytearray()
        while True:
            for e in list(self.events):
                if getattr(e, "stream_id", None) != sid:
                    continue
                self.events.remove(e)
                if isinstance(e, h2.events.ResponseReceived):
                    hdrs = {k.decode(): v.decode() for k, v in e.headers}
                elif isinstance(e, h2.events.DataReceived):
                    body += e.data
                    if ack:
                        self.conn.acknowledge_received_data(e.flow_controlled_length, sid)
                        self.flush()
                elif isinstance(e, h2.events.StreamEnded):
                    return hdrs, bytes(body)
                elif isinstance(e, h2.events.StreamReset):
                    raise AssertionError("stream %d reset: %r" % (sid, e))
            if self.pump() is None:
                raise EOFError("closed before stream %d ended" % sid)

    def close(self):
        self.sock.close()


def raw_frames(sock, timeout=15.0):
    """(type, flags, stream id, payload) of each frame until the server
    closes (DATA's padding left in: none is sent)."""
    sock.settimeout(timeout)
    buf = b""
    while True:
        while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
            n = int.from_bytes(buf[:3], "big")
            yield buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF, buf[9:9 + n]
            buf = buf[9 + n:]
        try:
            chunk = sock.recv(1 << 16)
        except ConnectionResetError:
            return
        if not chunk:
            return
        buf += chunk


class Load(threading.Thread):
    """A client that keeps `depth` streams in flight on one connection at a
    time, reconnecting after each GOAWAY (as browsers do): streams above a
    GOAWAY's last stream id were not taken and go again (RFC 9113 6.8), so
    only a stream reset, or a connection lost with taken streams open,
    counts as failed."""

    def __init__(self, path, depth=16):
        super().__init__(daemon=True)
        self.path, self.depth = path, depth
        self.ok = self.failed = self.goaways = 0
        self.stop = threading.Event()
        self.enc = hpack.Encoder()

    def headers(self, sid):
        block = self.enc.encode([(":method", "GET"), (":path", self.path),
                                 (":scheme", "http"), (":authority", "a.test")])
        return struct.pack(">I", len(block))[1:] + b"\x01\x05" + struct.pack(">I", sid) + block

    def connection(self):
        self.enc = hpack.Encoder()
        sock = socket.create_connection(("127.0.0.1", PORT), timeout=20)
        big = (1 << 31) - 1
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # window: as big as it goes
                     + b"\x00\x00\x06\x04\x00\x00\x00\x00\x00" + struct.pack(">HI", 4, big)
                     + b"\x00\x00\x04\x08\x00\x00\x00\x00\x00" + struct.pack(">I", big - 65535))
        sid, open_ids, last = 1, set(), None
        frames = raw_frames(sock, timeout=20)
        while True:
            while last is None and len(open_ids) < self.depth and not self.stop.is_set():
                sock.sendall(self.headers(sid))
                open_ids.add(sid)
                sid += 2
            if not open_ids or (self.stop.is_set() and last is None and not open_ids):
                break
            try:
                ftype, flags, stream, payload = next(frames)
            except StopIteration:
                self.failed += len([i for i in open_ids if last is None or i <= last])
                break
            if ftype in (0, 1) and flags & 1 and stream in open_ids:
                open_ids.discard(stream)
                self.ok += 1
            elif ftype == 3 and stream in open_ids:  # RST_STREAM
                open_ids.discard(stream)
                self.failed += 1
            elif ftype == 7:
                self.goaways += 1
                last = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
                open_ids = {i for i in open_ids if i <= last}  # the rest go again
        sock.close()

    def run(self):
        while not self.stop.is_set():
            try:
                self.connection()
            except OSError:
                self.failed += 1


class CurlH2c(unittest.TestCase):
    def test_return_and_headers(self):
        rc, body, err, meta = curl("-D", "-", path="/hello")
        self.assertEqual(rc, 0, err)
        self.assertTrue(meta.startswith("2 200"), meta)
        self.assertIn(b"HTTP/2 200", body)
        self.assertIn(b"content-type: text/plain", body)
        self.assertIn(b"x-test: yes", body)
        self.assertIn(b"server: zerg", body)
        self.assertTrue(body.endswith(b"\r\n\r\nHello, h2!"), body)
        self.assertNotIn(b"connection:", body.lower())

    def test_static_byte_exact(self):
        out = os.path.join(Z.tmp, "curl.out")
        rc, _, err, meta = curl(out=out, path="/big.bin")
        self.assertEqual((rc, meta), (0, "2 200"), err)
        with open(out, "rb") as f:
            self.assertEqual(sha(f.read()), sha(FILES["big.bin"]))

    def test_range_conditional_head(self):
        rc, body, err, meta = curl("-r", "1000-1999", path="/big.bin")
        self.assertEqual((rc, meta), (0, "2 206"), err)
        self.assertEqual(body, FILES["big.bin"][1000:2000])
        rc, head, err, meta = curl("-I", path="/big.bin")
        self.assertEqual((rc, meta), (0, "2 200"), err)
        self.assertIn(b"content-length: %d" % BIG, head)
        etag = re.search(rb"etag: (\S+)", head).group(1).decode()
        rc, body, err, meta = curl("-H", "If-None-Match: " + etag, path="/big.bin")
        self.assertEqual((rc, meta, body), (0, "2 304", b""), err)

    def test_errors_redirects_listing(self):
        rc, body, err, meta = curl(path="/nothing-here")
        self.assertEqual((rc, meta, body), (0, "2 404", FILES["err/404.html"]), err)
        rc, body, err, meta = curl("-D", "-", path="/moved")
        self.assertEqual((rc, meta), (0, "2 301"), err)
        self.assertIn(b"location: http://127.0.0.1/hello", body)  # $host: no port
        rc, body, err, meta = curl(path="/dir/")
        self.assertEqual((rc, meta), (0, "2 200"), err)
        self.assertIn(b"x.txt", body)
        rc, body, err, meta = curl("-d", "x" * 5000, path="/hello")
        self.assertEqual((rc, meta), (0, "2 413"), err)

    def test_proxy_pass_upstream_down(self):  # more in test_http2_proxy.py
        rc, body, err, meta = curl(path="/up/x")
        self.assertEqual((rc, meta), (0, "2 502"), err)

    def test_virtual_hosts_by_authority(self):
        rc, body, err, meta = curl("-H", "Host: b.test", path="/hello")
        self.assertEqual((rc, meta, body), (0, "2 200", b"this is b"), err)
        rc, body, err, meta = curl("-H", "Host: a.test", path="/hello")
        self.assertEqual((rc, meta, body), (0, "2 200", b"Hello, h2!"), err)

    def test_http11_on_the_same_port(self):
        r = subprocess.run(["curl", "-sS", "--http1.1", "-w", "\n%{http_version}",
                            f"http://127.0.0.1:{PORT}/hello"], stdout=subprocess.PIPE, timeout=20)
        self.assertEqual(r.stdout, b"Hello, h2!\n1.1")

    def test_off_without_http2(self):
        rc, body, err, meta = curl(port=Z.ports[1], path="/")
        self.assertNotEqual((rc, body), (0, b"no h2 here"))

    def test_access_log_and_metrics(self):
        mark = time.time()
        rc, _, err, _ = curl(path="/hello?logged-h2")
        self.assertEqual(rc, 0, err)
        log = os.path.join(Z.tmp, "access.log")
        wait_until(lambda: os.path.exists(log) and b"logged-h2" in open(log, "rb").read(),
                   what="the access log line")
        line = [ln for ln in open(log, "rb").read().splitlines() if b"logged-h2" in ln][0]
        self.assertIn(b'"GET /hello?logged-h2 HTTP/2.0" 200 10', line)
        self.assertLess(time.time() - mark, 20)
        rc, body, err, _ = curl(path="/metrics")
        self.assertEqual(rc, 0, err)
        m = re.search(rb'zerg_http_requests_total\{server="a.test",class="2xx"\} (\d+)', body)
        self.assertTrue(m and int(m.group(1)) > 0, body[:2000])
        for name in (b"connections", b"streams"):
            m = re.search(rb"zerg_http_http2_%s_total (\d+)" % name, body)
            self.assertTrue(m and int(m.group(1)) > 0, name)


class OverTls(unittest.TestCase):
    def curl_tls(self, port, path, *args):
        r = subprocess.run(["curl", "-sS", "--http2", "--cacert", os.path.join(CERTS, "ca.pem"),
                            "--max-time", "20", "--resolve", f"localhost:{port}:127.0.0.1",
                            "-w", "\n%{http_version} %{http_code}"] + list(args)
                           + [f"https://localhost:{port}{path}"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        body, _, meta = r.stdout.rpartition(b"\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        return body, meta.decode()

    def test_h2_by_alpn(self):
        self.assertEqual(self.curl_tls(Z.ports[2], "/hello"), (b"Hello, h2 over TLS!", "2 200"))
        out = os.path.join(Z.tmp, "tls.out")
        self.assertEqual(self.curl_tls(Z.ports[2], "/big.bin", "-o", out), (b"", "2 200"))
        with open(out, "rb") as f:
            self.assertEqual(sha(f.read()), sha(FILES["big.bin"]))
        body, meta = self.curl_tls(Z.ports[2], "/big.bin", "-r", "5-9")
        self.assertEqual((body, meta), (FILES["big.bin"][5:10], "2 206"))

    def test_http11_where_http2_is_off(self):
        self.assertEqual(self.curl_tls(Z.ports[3], "/"), (b"TLS, no h2", "1.1 200"))

    def test_h2load_over_tls(self):
        out = h2load(f"https://127.0.0.1:{Z.ports[2]}/hello")
        self.assertIn("Application protocol: h2", out)
        self.assertIn("2000 succeeded, 0 failed, 0 errored, 0 timeout", out)


class Tools(unittest.TestCase):
    def test_nghttp(self):
        r = subprocess.run(["nghttp", "-nv", f"http://127.0.0.1:{PORT}/hello"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        out = r.stdout.decode(errors="replace")
        self.assertEqual(r.returncode, 0, out)
        self.assertRegex(out, r"recv \(stream_id=\d+\) :status: 200")
        self.assertRegex(out, r"recv DATA frame <length=10, flags=0x01, stream_id=\d+>")

    def test_h2load_multiplexed(self):
        for path in ("/hello", "/small.txt"):
            out = h2load(f"http://127.0.0.1:{PORT}{path}")
            self.assertIn("2000 succeeded, 0 failed, 0 errored, 0 timeout", out)
            self.assertIn("status codes: 2000 2xx", out)


class Reload(unittest.TestCase):
    def test_reloads_under_load(self):
        """Reloads while 4 clients keep 16 streams each in flight: every
        stream a worker took is answered, the old workers send GOAWAY."""
        loads = [Load("/small.txt") for _ in range(4)]
        for t in loads:
            t.start()
        try:
            for i in range(5):
                time.sleep(0.3)
                self.assertIn("reload done", Z.reload())
                # the busy clients hear of it within the drain's wait (2 s)
                wait_until(lambda: sum(t.goaways for t in loads) > i, timeout=5,
                           what="a GOAWAY from the old workers")
            time.sleep(0.5)
        finally:
            for t in loads:
                t.stop.set()
            for t in loads:
                t.join(30)
        self.assertEqual(sum(t.failed for t in loads), 0)
        self.assertGreater(sum(t.ok for t in loads), 1000)
        self.assertGreaterEqual(sum(t.goaways for t in loads), 5)


class Frames(unittest.TestCase):
    def test_large_file_through_a_small_window(self):
        c = H2(settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 4096})
        try:
            sid = c.request("/huge.bin")
            hdrs, body = c.response(sid)
            self.assertEqual(hdrs[":status"], "200")
            self.assertEqual(len(body), HUGE)
            self.assertEqual(sha(body), sha(FILES["huge.bin"]))
            sids = [c.request(p) for p in ("/hello", "/small.txt", "/big.bin")]  # interleaved
            got = [c.response(s)[1] for s in sids]
            self.assertEqual(got, [b"Hello, h2!", FILES["small.txt"], FILES["big.bin"]])
        finally:
            c.close()

    def assert_ended(self, abuse, code=None):
        """abuse(c) on a fresh connection ends it with a GOAWAY for an error
        (code, when given), a log line, and nothing else harmed."""
        before = goaways()
        c = H2()
        mark = Z.log_mark()
        try:
            abuse(c)
        except (BrokenPipeError, ConnectionResetError):
            pass
        goaway = c.until_closed()
        c.close()
        self.assertIsNotNone(goaway, "no GOAWAY")
        self.assertNotEqual(goaway.error_code, h2.errors.ErrorCodes.NO_ERROR)
        if code is not None:
            self.assertEqual(goaway.error_code, code)
        Z.wait_log("http2: closing a connection from 127.0.0.1", since=mark)
        wait_until(lambda: goaways() > before, what="zerg_http_http2_goaways_total to grow")
        self.assertEqual(curl()[3], "2 200")  # the others are served on

    def test_rapid_reset_ends_the_connection(self):
        def rapid_reset(c):
            for _ in range(3000):
                sid = c.request("/hello")
                c.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
            c.flush()
        self.assert_ended(rapid_reset)

    def test_settings_flood_ends_the_connection(self):
        empty_settings = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
        self.assert_ended(lambda c: c.sock.sendall(empty_settings * 20000),
                          h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)

    def test_ping_flood_ends_the_connection(self):
        ping = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"12345678"
        self.assert_ended(lambda c: c.sock.sendall(ping * 20000),
                          h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)

    def test_empty_data_flood_ends_the_connection(self):
        def empty_data_flood(c):
            sid = c.request("/hello", end=False)  # a request whose body never ends
            empty_data = b"\x00\x00\x00\x00\x00" + struct.pack(">I", sid)  # length 0, DATA
            c.sock.sendall(empty_data * 5000)
        self.assert_ended(empty_data_flood, h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)

    def test_continuation_flood_ends_the_connection(self):
        def continuation_flood(c):
            # HEADERS without END_HEADERS, then CONTINUATIONs that never end it
            c.sock.sendall(b"\x00\x00\x00\x01\x01\x00\x00\x00\x01"
                           + b"\x00\x00\x00\x09\x00\x00\x00\x00\x01" * 100)
        self.assert_ended(continuation_flood)

    def test_header_list_too_large(self):
        c = H2()
        try:
            sid = c.request("/hello", headers=[("x-big", "y" * 9000)])
            hdrs, _ = c.response(sid)
            self.assertEqual(hdrs[":status"], "431")
            sid = c.request("/hello")  # the connection goes on
            self.assertEqual(c.response(sid)[1], b"Hello, h2!")
        finally:
            c.close()

    def test_limit_req_per_stream(self):
        c = H2()
        try:
            sids = [c.request("/limited") for _ in range(3)]
            codes = sorted(c.response(s)[0][":status"] for s in sids)
            self.assertEqual(codes, ["200", "503", "503"])
            t0 = time.monotonic()
            sids = [c.request("/paced") for _ in range(4)]  # 10r/s: delayed, not refused
            self.assertEqual([c.response(s)[1] for s in sids], [b"ok"] * 4)
            self.assertGreater(time.monotonic() - t0, 0.2)
        finally:
            c.close()

    def test_idle_timeout(self):
        c = H2(port=Z.ports[4])
        try:
            self.assertEqual(c.response(c.request("/"))[1], b"short idle")
            t0 = time.monotonic()
            goaway = c.until_closed(timeout=10)
            self.assertLess(time.monotonic() - t0, 5)
            self.assertIsNotNone(goaway, "no GOAWAY")
            self.assertEqual(goaway.error_code, h2.errors.ErrorCodes.NO_ERROR)
        finally:
            c.close()

    def test_max_concurrent_streams(self):
        """Streams past the 32 allowed are refused (RST_STREAM
        REFUSED_STREAM); the connection and the others go on."""
        load = Load("/hello")
        sock = socket.create_connection(("127.0.0.1", PORT), timeout=10)
        try:
            sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            # 40 requests left open (no END_STREAM: their bodies never come)
            sock.sendall(b"".join(load.headers(1 + 2 * i).replace(b"\x01\x05", b"\x01\x04", 1)
                                  for i in range(40)))
            refused = set()
            for ftype, flags, stream, payload in raw_frames(sock, timeout=5):
                if ftype == 3:
                    self.assertEqual(struct.unpack(">I", payload)[0], 7)  # REFUSED_STREAM
                    refused.add(stream)
                if len(refused) == 8:
                    break
            self.assertEqual(refused, {1 + 2 * i for i in range(32, 40)})
        finally:
            sock.close()

    def test_head_fields_follow_each_answer(self):
        """Answers on one connection each carry their own fields: the
        parsed text blocks of heads that are kept (http2_stream.c) never
        stand for a block whose text changed (an error's fields, the Date
        line of the next second)."""
        c = H2()
        try:
            def get(path, method="GET"):
                sid = c.conn.get_next_available_stream_id()
                c.conn.send_headers(sid, [(":method", method), (":path", path),
                                          (":scheme", "http"), (":authority", "a.test")],
                                    end_stream=True)
                c.flush()
                return c.response(sid)[0]
            h = get("/hello")
            self.assertEqual((h[":status"], h["x-test"], h["content-type"]),
                             ("200", "yes", "text/plain"))
            self.assertIn("location", get("/moved"))
            h = get("/hello")
            self.assertNotIn("location", h)
            self.assertEqual(h["x-test"], "yes")
            h = get("/small.txt", "DELETE")
            self.assertEqual((h[":status"], h["allow"]), ("405", "GET, HEAD"))
            h = get("/", "BREW")
            self.assertEqual(h[":status"], "400")
            self.assertNotIn("allow", h)
            self.assertEqual(h["content-type"], "text/html")
            first = get("/hello")["date"]
            time.sleep(1.1)  # the next second's Date line, at the same address
            h = get("/hello")
            self.assertNotEqual(h["date"], first)
            sent = email.utils.parsedate_to_datetime(h["date"]).timestamp()
            self.assertLess(abs(sent - time.time()), 2.5, h["date"])
        finally:
            c.close()

    def test_methods_refused(self):
        c = H2()
        try:
            sid = c.conn.get_next_available_stream_id()
            c.conn.send_headers(sid, [(":method", "BREW"), (":path", "/hello"),
                                      (":scheme", "http"), (":authority", "a.test")],
                                end_stream=True)
            c.flush()
            self.assertEqual(c.response(sid)[0][":status"], "400")
            sid = c.conn.get_next_available_stream_id()
            c.conn.send_headers(sid, [(":method", "DELETE"), (":path", "/small.txt"),
                                      (":scheme", "http"), (":authority", "a.test")],
                                end_stream=True)
            c.flush()
            self.assertEqual(c.response(sid)[0][":status"], "405")
        finally:
            c.close()

    def test_window_never_opened(self):
        c = H2(settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
        try:
            c.request("/big.bin")
            t0 = time.monotonic()
            c.until_closed(timeout=15)
            # send_timeout (2s) ends it: nothing held for longer
            self.assertLess(time.monotonic() - t0, 12)
            self.assertFalse(any(isinstance(e, h2.events.DataReceived) for e in c.events))
        finally:
            c.close()

    def test_drain_sends_goaway_and_finishes_streams(self):
        # python3-h2 takes no frame after a GOAWAY: read them raw, with the
        # windows open wide so that nothing has to be acknowledged
        c = H2(settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: (1 << 31) - 1})
        try:
            c.conn.increment_flow_control_window((1 << 31) - 1 - 65535)
            sid = c.request("/hello")
            self.assertEqual(c.response(sid)[1], b"Hello, h2!")
            self.assertIn("reload done", Z.reload())
            big = c.request("/big.bin")  # sent after the notice, before the final GOAWAY
            data, goaways, ended = bytearray(), [], False
            for ftype, flags, stream, payload in raw_frames(c.sock):
                if ftype == 0 and stream == big:
                    data += payload
                    ended = ended or bool(flags & 1)
                elif ftype == 7:
                    goaways.append(struct.unpack(">II", payload[:8]))
            self.assertTrue(ended, "the stream in flight did not finish")
            self.assertEqual(sha(bytes(data)), sha(FILES["big.bin"]))
            self.assertEqual(goaways[0], ((1 << 31) - 1, 0), goaways)  # the shutdown notice
            self.assertEqual(goaways[-1], (big, 0), goaways)  # the last stream taken
        finally:
            c.close()
        self.assertEqual(curl()[3], "2 200")  # the new workers speak h2 too


if __name__ == "__main__":
    zgtest.main()

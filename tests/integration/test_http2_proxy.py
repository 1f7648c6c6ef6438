#!/usr/bin/env python3
"""test_http2_proxy - proxy_pass over HTTP/2 through the real zerg: h2c and h2
(TLS) clients to an HTTP/1.1 upstream in this process (kept alive) and to an
https one: GET and POST, the head sent upstream (Host, fields, Cookie joined,
Content-Length or chunked), 16 MiB up and down byte-exact, many streams on
one connection, an upstream slower than send_timeout,
request bodies held back by flow control while the upstream does not read
(bounded worker memory), an upstream paused while the client does not open
its window, RST_STREAM mid-response and mid-upload, upstream down (502), 413,
client_body_timeout resetting only the stream, limit_req delays keeping the
body."""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import h2.errors
import h2.events
import h2.settings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_http2  # noqa: E402
from httpproxytest import pattern, pattern_iter  # noqa: E402
from test_tls import make_certs  # noqa: E402
from zgtest import Zerg, free_port, rss_kb, wait_until  # noqa: E402

MIB = 1 << 20


def sha(b):
    return hashlib.sha256(b).hexdigest()


# ---- the upstream: HTTP/1.1, kept alive, every request recorded -----------

class Upstream:
    """A threaded HTTP/1.1 server: /echo answers what it received (JSON),
    /bytes/N the pattern's N bytes, /endless a body it writes until the
    connection breaks (counting), /hold reads a body only once `release`
    is set. Its sockets have small receive buffers, so that what it does
    not read stays in zerg (or with the client) rather than in the kernel."""

    def __init__(self):
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(256)
        self.port = self.ls.getsockname()[1]
        self.lock = threading.Lock()
        self.requests = []
        self.conns = 0
        self.closed = 0  # connections ended (by zerg, or after /endless)
        self.endless_sent = 0
        self.endless_ended = 0  # /endless answers cut (their connection broke)
        self.endless_closed = threading.Event()
        self.release = threading.Event()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                s, _ = self.ls.accept()
            except OSError:
                return
            with self.lock:
                self.conns += 1
            threading.Thread(target=self.serve, args=(s,), daemon=True).start()

    def serve(self, s):
        f = s.makefile("rb")
        try:
            while self.one(s, f):
                pass
        except (OSError, ValueError):
            pass
        finally:
            s.close()
            with self.lock:
                self.closed += 1

    @staticmethod
    def read_body(f, fields):
        if "content-length" in fields:
            return f.read(int(fields["content-length"])), "length"
        if fields.get("transfer-encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                n = int(f.readline().split(b";")[0], 16)
                if n == 0:
                    while f.readline() not in (b"\r\n", b""):
                        pass
                    return bytes(out), "chunked"
                out += f.read(n)
                f.readline()
        return b"", "none"

    def one(self, s, f):
        line = f.readline()
        if not line:
            return False
        method, target, _ = line.decode().split(" ", 2)
        raw, fields = [], {}
        while True:
            h = f.readline()
            if h in (b"\r\n", b""):
                break
            name, _, value = h.decode().partition(":")
            raw.append((name, value.strip()))
            fields[name.lower()] = value.strip()
        if target.startswith("/hold"):
            self.release.wait(30)
        if target.startswith("/sleep/"):
            time.sleep(float(target.split("/")[2]))
        body, framing = self.read_body(f, fields)
        rec = {"method": method, "target": target, "fields": raw, "len": len(body),
               "sha": sha(body), "framing": framing}
        with self.lock:
            self.requests.append(rec)
        if target.startswith("/bytes/"):
            n = int(target.split("/")[2])
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
            for piece in pattern_iter(n):
                s.sendall(piece)
            return True
        if target.startswith("/endless"):
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (1 << 40))
            try:
                for piece in pattern_iter(1 << 40):
                    s.sendall(piece)
                    with self.lock:
                        self.endless_sent += len(piece)
            finally:
                with self.lock:
                    self.endless_ended += 1
                self.endless_closed.set()
            return False
        out = json.dumps(rec).encode()
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Up: yes\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(out), out))
        return True

    def last(self, target):
        with self.lock:
            return [r for r in self.requests if r["target"] == target]


# a small receive buffer pool: its pages, touched as they are first used,
# do not hide in the worker's RSS what the streams hold
CONF = """
load_modules: [http]
uring: {{ buffers: 512 }}
servers:
  - listen: ["127.0.0.1:{port0}"]
    module: http
    http:
      server_name: [a.test]
      http2: {{ max_concurrent_streams: 128, initial_window_size: 64k }}
      client_max_body_size: 64m
      send_timeout: 30s
      limit_zones:
        per_user: {{ key: $http_x_user, rate: 1r/m }}
        paced: {{ key: $remote_addr, rate: 2r/s }}
      locations:
        - path: /paced/
          proxy_pass: http://127.0.0.1:UP/
          limit_req: {{ zone: paced, burst: 5 }}
        - path: =/per-user
          return: {{ status: 200, body: ok }}
          limit_req: {{ zone: per_user, status: 503 }}
        - path: /down/
          proxy_pass: http://127.0.0.1:DOWN
        - path: /tls-up/
          proxy_pass: https://localhost:{port1}/
          proxy_tls: {{ ca: "CERTS/ca.pem" }}
        - path: /
          proxy_pass: http://127.0.0.1:UP
          proxy_keepalive: 8
  - listen: ["127.0.0.1:{port0}"]
    module: http
    http:
      server_name: [small.test]
      client_max_body_size: 1k
      client_body_timeout: 1s
      locations:
        - path: /
          proxy_pass: http://127.0.0.1:UP
  - listen: ["127.0.0.1:{port2}"]
    module: http
    http:
      http2: true
      send_timeout: 1s
      locations:
        - path: /
          proxy_pass: http://127.0.0.1:UP
  - listen: ["127.0.0.1:{port1}"]
    module: http
    tls: {{ certificates: [ {{ certificate: "CERTS/rsa.pem", key: "CERTS/rsa.key" }} ] }}
    http:
      http2: true
      client_max_body_size: 64m
      locations:
        - path: /
          proxy_pass: http://127.0.0.1:UP
          proxy_keepalive: 8
"""


def setUpModule():
    global Z, UP, CERTS, PORT, TEXT
    UP = Upstream()
    CERTS = tempfile.mkdtemp(prefix="zgh2p-")
    make_certs(CERTS)
    TEXT = CONF.replace("CERTS", CERTS).replace("UP", str(UP.port))
    TEXT = TEXT.replace("DOWN", str(free_port()))
    Z = Zerg(TEXT).start()
    PORT = Z.ports[0]


def tearDownModule():
    Z.stop()
    shutil.rmtree(CERTS, ignore_errors=True)


def worker():
    return Z.workers()[0]


def curl(path, *args, tls=False, out=None):
    """(returncode, body, stderr, 'version code') of one request."""
    if tls:
        url = f"https://localhost:{Z.ports[1]}{path}"
        cmd = ["curl", "-sS", "--http2", "--cacert", os.path.join(CERTS, "ca.pem"),
               "--resolve", f"localhost:{Z.ports[1]}:127.0.0.1"]
    else:
        url = f"http://127.0.0.1:{PORT}{path}"
        cmd = ["curl", "-sS", "--http2-prior-knowledge"]
    cmd += ["--max-time", "60", "-w", "\n%{http_version} %{http_code}"] + list(args) + [url]
    if out:
        cmd[1:1] = ["-o", out]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=90)
    body, _, meta = r.stdout.rpartition(b"\n")
    return r.returncode, body, r.stderr.decode(errors="replace"), meta.decode()


class H2(test_http2.H2):
    """test_http2's raw client (python3-h2), with uploads under flow control."""

    def __init__(self, settings=None, port=None):
        super().__init__(port=port or PORT, settings=settings, timeout=15.0)
        self.ended = set()

    def start(self, path, method="GET", headers=(), end=True, authority="a.test"):
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(sid, [(":method", method), (":path", path), (":scheme", "http"),
                                     (":authority", authority)] + list(headers), end_stream=end)
        self.flush()
        return sid

    def send_some(self, sid, body, off):
        """As much of body[off:] as the windows allow, END_STREAM after the
        last byte; the new offset."""
        n = min(self.conn.local_flow_control_window(sid), len(body) - off)
        while n > 0:
            k = min(n, self.conn.max_outbound_frame_size)
            self.conn.send_data(sid, body[off:off + k])
            off += k
            n -= k
        if off == len(body) and sid not in self.ended:
            self.ended.add(sid)
            self.conn.end_stream(sid)
        self.flush()
        return off

    def upload(self, bodies, offs=None):
        """Sends each stream's body ({sid: body}) as flow control lets it."""
        offs = offs or {sid: 0 for sid in bodies}
        while True:
            for sid, body in bodies.items():
                offs[sid] = self.send_some(sid, body, offs[sid])
            if all(sid in self.ended for sid in bodies):
                return
            if self.pump() is None:
                raise EOFError("closed during the upload")


def fields(rec):
    """The upstream's view of a request's fields: {lower name: [values]}."""
    out = {}
    for n, v in rec["fields"]:
        out.setdefault(n.lower(), []).append(v)
    return out


class Basics(unittest.TestCase):
    def test_get_and_post_h2c(self):
        rc, body, err, meta = curl("/echo?q=1", "-H", "X-Custom: yes")
        self.assertEqual((rc, meta), (0, "2 200"), err)
        rec = json.loads(body)
        self.assertEqual((rec["method"], rec["target"], rec["framing"]), ("GET", "/echo?q=1", "none"))
        f = fields(rec)
        self.assertEqual(f["host"], [f"127.0.0.1:{UP.port}"])  # as HTTP/1.1: $proxy_host
        self.assertEqual(f["x-custom"], ["yes"])
        self.assertNotIn("transfer-encoding", f)
        self.assertNotIn("content-length", f)
        rc, body, err, meta = curl("/echo", "-d", "hello")
        self.assertEqual((rc, meta), (0, "2 200"), err)
        rec = json.loads(body)
        self.assertEqual((rec["method"], rec["len"], rec["sha"], rec["framing"]),
                         ("POST", 5, sha(b"hello"), "length"))

    def test_response_head_relayed(self):
        rc, body, err, meta = curl("/echo", "-D", "-")
        self.assertEqual((rc, meta), (0, "2 200"), err)
        head = body.split(b"\r\n\r\n", 1)[0].lower()
        self.assertIn(b"x-up: yes", head)
        self.assertIn(b"content-type: application/json", head)

    def test_unknown_length_goes_chunked_and_cookies_joined(self):
        c = H2()
        try:
            sid = c.start("/echo", "POST", [("cookie", "a=1"), ("cookie", "b=2")], end=False)
            c.upload({sid: b"x" * 100000})
            hdrs, body = c.response(sid)
            self.assertEqual(hdrs[":status"], "200")
            rec = json.loads(body)
            self.assertEqual((rec["len"], rec["sha"], rec["framing"]),
                             (100000, sha(b"x" * 100000), "chunked"))
            self.assertEqual(fields(rec)["cookie"], ["a=1; b=2"])
            # HEADERS with END_STREAM: no body, no framing fields
            sid = c.start("/echo", "DELETE")
            rec = json.loads(c.response(sid)[1])
            self.assertEqual((rec["method"], rec["framing"]), ("DELETE", "none"))
        finally:
            c.close()

    def test_over_tls(self):
        rc, body, err, meta = curl("/echo", tls=True)
        self.assertEqual((rc, meta), (0, "2 200"), err)
        rc, body, err, meta = curl("/echo", "--data-binary", "tls body", tls=True)
        self.assertEqual((rc, meta), (0, "2 200"), err)
        rec = json.loads(body)
        self.assertEqual((rec["method"], rec["sha"]), ("POST", sha(b"tls body")))
        out = os.path.join(Z.tmp, "tls.bin")
        rc, body, err, meta = curl(f"/bytes/{4 * MIB + 7}", tls=True, out=out)
        self.assertEqual((rc, meta), (0, "2 200"), err)
        with open(out, "rb") as f:
            self.assertEqual(sha(f.read()), sha(pattern(4 * MIB + 7)))
        src = os.path.join(Z.tmp, "tls-up.bin")
        with open(src, "wb") as f:  # DATA decrypted, not in receive buffers: copied up
            f.write(pattern(16 * MIB + 5))
        rc, body, err, meta = curl("/echo", "--data-binary", "@" + src, tls=True)
        self.assertEqual((rc, meta), (0, "2 200"), err)
        rec = json.loads(body)
        self.assertEqual((rec["len"], rec["sha"]), (16 * MIB + 5, sha(pattern(16 * MIB + 5))))

    def test_https_upstream(self):
        """h2c in front, an https upstream (this zerg's TLS block, which
        passes it on to the HTTP/1.1 upstream)."""
        rc, body, err, meta = curl("/tls-up/echo?x=tls", "--data-binary", "over tls")
        self.assertEqual((rc, meta), (0, "2 200"), err)
        rec = json.loads(body)
        self.assertEqual((rec["target"], rec["sha"]), ("/echo?x=tls", sha(b"over tls")))

    def test_upstream_slower_than_send_timeout(self):
        """send_timeout bounds a client that does not take what is sent, not
        the wait for an upstream (proxy_read_timeout's)."""
        r = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--max-time", "20",
                            "-w", "\n%{http_version} %{http_code}",
                            f"http://127.0.0.1:{Z.ports[2]}/sleep/2.5"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(r.stdout.rpartition(b"\n")[2], b"2 200", r.stderr)

    def test_upstream_down_502(self):
        rc, body, err, meta = curl("/down/x")
        self.assertEqual((rc, meta), (0, "2 502"), err)
        rc, body, err, meta = curl("/down/x", "-d", "body")
        self.assertEqual((rc, meta), (0, "2 502"), err)

    def test_too_large_413(self):
        rc, body, err, meta = curl("/echo", "-H", "Host: small.test", "-d", "y" * 5000)
        self.assertEqual((rc, meta), (0, "2 413"), err)
        self.assertFalse([r for r in UP.last("/echo") if r["len"] == 5000])
        c = H2()
        try:  # no Content-Length: refused once the body passes the limit
            sid = c.start("/echo", "POST", end=False, authority="small.test")
            c.upload({sid: b"z" * 3000})
            self.assertEqual(c.response(sid)[0][":status"], "413")
            sid = c.start("/echo", authority="small.test")  # the connection goes on
            self.assertEqual(c.response(sid)[0][":status"], "200")
        finally:
            c.close()


    def test_limit_key_naming_a_field(self):
        """The fields kept for proxy_pass serve $http_ name keys too."""
        codes = [curl("/per-user", "-H", f"X-User: {u}")[3] for u in ("a", "a", "b")]
        self.assertEqual(codes, ["2 200", "2 503", "2 200"])


    def test_limit_req_delay_keeps_the_body(self):
        """Streams limit_req delays go upstream when their turn comes, with
        the body sent meanwhile (more than a window: the rest waits)."""
        c = H2()
        try:
            t0 = time.monotonic()
            bodies = {c.start(f"/paced/echo?{i}", "POST", end=False,
                              headers=[("content-length", "100000")] if i == 0 else []):
                      pattern(100000 + i) if i else pattern(100000) for i in range(3)}
            c.upload(bodies)
            for sid, body in bodies.items():
                hdrs, rb = c.response(sid)
                self.assertEqual(hdrs[":status"], "200")
                rec = json.loads(rb)
                self.assertEqual((rec["len"], rec["sha"]), (len(body), sha(body)))
            self.assertGreater(time.monotonic() - t0, 0.8)  # two were delayed
        finally:
            c.close()


class Volume(unittest.TestCase):
    def test_16mib_upload_and_download(self):
        data = pattern(16 * MIB + 3)
        src = os.path.join(Z.tmp, "up.bin")
        with open(src, "wb") as f:
            f.write(data)
        rc, body, err, meta = curl("/echo", "--data-binary", "@" + src)
        self.assertEqual((rc, meta), (0, "2 200"), err)
        rec = json.loads(body)
        self.assertEqual((rec["len"], rec["sha"]), (len(data), sha(data)))
        out = os.path.join(Z.tmp, "down.bin")
        rc, body, err, meta = curl(f"/bytes/{len(data)}", out=out)
        self.assertEqual((rc, meta), (0, "2 200"), err)
        with open(out, "rb") as f:
            self.assertEqual(sha(f.read()), sha(data))

    def test_16mib_through_a_64k_window(self):
        c = H2()
        try:
            sid = c.start(f"/bytes/{16 * MIB}")
            hdrs, body = c.response(sid)
            self.assertEqual((hdrs[":status"], len(body)), ("200", 16 * MIB))
            self.assertEqual(sha(body), sha(pattern(16 * MIB)))
        finally:
            c.close()

    def test_many_streams_one_connection_kept_upstream(self):
        c = H2()
        try:
            before = UP.conns
            sids = {c.start(f"/echo?i={i}"): i for i in range(100)}
            for sid, i in sids.items():
                hdrs, body = c.response(sid)
                self.assertEqual(hdrs[":status"], "200")
                self.assertEqual(json.loads(body)["target"], f"/echo?i={i}")
            # one after the other: the kept upstream connections serve them
            mid = UP.conns
            for i in range(20):
                sid = c.start(f"/echo?seq={i}")
                self.assertEqual(c.response(sid)[0][":status"], "200")
            self.assertLessEqual(UP.conns - mid, 1)
            self.assertLessEqual(mid - before, 100)
        finally:
            c.close()


class Bounds(unittest.TestCase):
    def test_slow_upstream_holds_clients_by_flow_control(self):
        """16 streams upload 8 MiB each to an upstream that reads nothing
        yet: the client is stopped by its windows, the worker's memory does
        not grow with what is offered; released, every body arrives whole."""
        UP.release.clear()
        pid = worker()
        rss0 = rss_kb(pid)
        c = H2()
        try:
            body = pattern(8 * MIB)
            sids = [c.start(f"/hold?{i}", "POST", end=False) for i in range(16)]
            offs = {sid: 0 for sid in sids}
            last, still = -1, time.monotonic()
            while time.monotonic() - still < 1.5:
                for sid in sids:
                    offs[sid] = c.send_some(sid, body, offs[sid])
                c.sock.settimeout(0.2)
                try:
                    c.pump()
                except socket.timeout:
                    pass
                c.sock.settimeout(15.0)
                total = sum(offs.values())
                if total != last:
                    last, still = total, time.monotonic()
            self.assertLess(sum(offs.values()), 16 * len(body))  # stopped, not done
            grown = rss_kb(pid) - rss0
            self.assertLess(grown, 48 * 1024, f"worker grew {grown} KiB")
            UP.release.set()
            c.upload({sid: body for sid in sids}, offs)
            for sid in sids:
                hdrs, rb = c.response(sid)
                rec = json.loads(rb)
                self.assertEqual((hdrs[":status"], rec["len"], rec["sha"]),
                                 ("200", len(body), sha(body)))
        finally:
            UP.release.set()
            c.close()

    def test_window_never_opened_pauses_upstream_then_reset(self):
        pid = worker()
        rss0 = rss_kb(pid)
        fds0 = len(os.listdir(f"/proc/{pid}/fd"))
        c = H2(settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
        try:
            UP.endless_closed.clear()
            with UP.lock:
                UP.endless_sent = 0
            sid = c.start("/endless")
            wait_until(lambda: UP.endless_sent > 0, what="the upstream sending")
            time.sleep(2)
            sent = UP.endless_sent
            time.sleep(1)
            # paused: the upstream's kernel buffers full, zerg holds its bound
            self.assertLess(UP.endless_sent - sent, 1 * MIB)
            self.assertLess(sent, 64 * MIB)
            grown = rss_kb(pid) - rss0
            self.assertLess(grown, 16 * 1024, f"worker grew {grown} KiB")
            c.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
            c.flush()
            self.assertTrue(UP.endless_closed.wait(10), "upstream connection not closed")
            sid = c.start("/echo")  # the connection serves on
            c.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 65535})
            c.flush()
            self.assertEqual(c.response(sid)[0][":status"], "200")
        finally:
            c.close()
        wait_until(lambda: len(os.listdir(f"/proc/{pid}/fd")) <= fds0 + 8,
                   what="the worker's descriptors back")

    def test_connection_bound_over_many_paused_streams(self):
        """64 streams whose window the client never opens, each with an
        upstream that has more to send: what the worker holds for them all
        stays under the connection's bound (8 output_high), not 64 times a
        stream's (one output_high, 2 MiB here so that it stands out from
        what the core holds per paused upstream, up to a few 100 KiB)."""
        with UP.lock:
            ended0 = UP.endless_ended
        text = TEXT.replace("buffers: 512", "buffers: 512, output_high: 2m")
        with Zerg(text) as z:  # a fresh worker: nothing freed before to reuse
            pid = z.workers()[0]
            rss0 = rss_kb(pid)
            c = H2(settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0}, port=z.ports[0])
            try:
                for i in range(64):
                    c.start(f"/endless?many={i}")
                wait_until(lambda: len([r for r in UP.requests if "many=" in r["target"]]) == 64,
                           what="64 upstream requests", timeout=20)
                time.sleep(2)
                grown = rss_kb(pid) - rss0
                # 64 streams' bounds would be 128 MiB; the connection's is 16
                self.assertLess(grown, 80 * 1024, f"worker grew {grown} KiB")
            finally:
                c.close()
            wait_until(lambda: UP.endless_ended - ended0 == 64, timeout=20,
                       what="every upstream connection closed")

    def test_reset_mid_response(self):
        c = H2()
        try:
            UP.endless_closed.clear()
            sid = c.start("/endless")
            got = 0
            while got < 2 * MIB:
                for e in c.pump() or []:
                    if isinstance(e, h2.events.DataReceived) and e.stream_id == sid:
                        got += len(e.data)
                        c.conn.acknowledge_received_data(e.flow_controlled_length, sid)
                c.flush()
            c.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
            c.flush()
            self.assertTrue(UP.endless_closed.wait(10), "upstream connection not closed")
            sid2 = c.start("/echo")
            self.assertEqual(c.response(sid2)[0][":status"], "200")
        finally:
            c.close()

    def test_reset_mid_upload(self):
        c = H2()
        try:
            sid = c.start("/echo?upload-reset", "POST", end=False)
            for _ in range(3):
                c.conn.send_data(sid, b"u" * 10000)
            c.flush()
            wait_until(lambda: UP.conns > 0, what="an upstream connection")
            time.sleep(0.3)
            with UP.lock:
                closed0 = UP.closed
            c.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
            c.flush()
            # the upstream, reading the chunked body, sees its connection end
            wait_until(lambda: UP.closed > closed0, what="the upstream connection closed")
            self.assertFalse(UP.last("/echo?upload-reset"))  # never a whole request
            sid = c.start("/echo")
            self.assertEqual(c.response(sid)[0][":status"], "200")
        finally:
            c.close()

    def test_body_timeout_resets_the_stream_only(self):
        c = H2()
        try:
            sid = c.start("/echo", "POST", end=False, authority="small.test")
            c.conn.send_data(sid, b"abc")
            c.flush()
            t0 = time.monotonic()
            with self.assertRaisesRegex(AssertionError, "reset"):
                c.response(sid)
            self.assertLess(time.monotonic() - t0, 5)
            sid = c.start("/echo", authority="small.test")
            self.assertEqual(c.response(sid)[0][":status"], "200")
        finally:
            c.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)

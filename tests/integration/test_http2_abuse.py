#!/usr/bin/env python3
"""test_http2_abuse - HTTP/2 abuse that test_http2 does not cover, with raw
frames through the real zerg: HPACK bombs (a header block that decodes to far
more than max_header_list_size; dynamic table size updates the server did not
allow, or not at the start of a block; a client that allows a huge table for
the server's answers), stream ids near 2^31, a connection that has served
very many streams (its memory flat over thousands of them), and a client
that never opens its window while it keeps the connection busy with other
streams. Each abuse is bounded in CPU and memory,
ends its connection with GOAWAY (the right code) and one log line, and a
second connection is served meanwhile."""
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

import h2.errors
import h2.settings
import hpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zgtest  # noqa: E402
from httptest import HTTP_SERVER, start_serving  # noqa: E402
from test_http2 import H2, raw_frames  # noqa: E402
from zgtest import cpu_ticks, rss_kb  # noqa: E402

CONF = HTTP_SERVER + """      server_name: [a.test]
      http2: {{ max_concurrent_streams: 64, max_header_list_size: 4k, idle_timeout: 20s }}
      send_timeout: 2s
      locations:
        - path: =/hello
          return: {{ status: 200, body: "Hello, h2!", headers: {{ X-Test: yes }} }}
        - {{ path: /, root: "{tmp}/www" }}
  - listen: ["127.0.0.1:{port2}"]
    module: http
    http:
      http2: {{ max_concurrent_streams: 128, idle_timeout: 1s }}
      locations:
        - path: /
          return: {{ status: 200, body: "many", headers: {{ X-Test: yes }} }}
"""

BIG = 3 << 20
SANITIZERS = os.environ.get("ZERG_SANITIZERS") == "1"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 7, 8, 9
END_STREAM, END_HEADERS = 1, 4


def setUpModule():
    global Z
    Z = start_serving(CONF, {"big.bin": os.urandom(BIG)})


def tearDownModule():
    Z.stop()


def frame(ftype, flags, sid, payload=b""):
    head = struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid)
    return head + payload


def settings(**values):
    """A SETTINGS frame: header_table_size=, initial_window_size=, ..."""
    codes = {"header_table_size": 1, "initial_window_size": 4, "max_frame_size": 5}
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", codes[k], v)
                                          for k, v in values.items()))


def hpack_int(value, prefix_bits, first):
    """RFC 7541 5.1: value with an N-bit prefix, the first byte's high bits first."""
    top = (1 << prefix_bits) - 1
    if value < top:
        return bytes([first | value])
    out, value = bytearray([first | top]), value - top
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


REQUEST = [(":method", "GET"), (":path", "/hello"), (":scheme", "http"), (":authority", "a.test")]


def connect(port, *frames):
    """A raw connection: the preface, an empty SETTINGS, then frames."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(PREFACE + frame(SETTINGS, 0, 0) + b"".join(frames))
    return sock


def read_all(sock, timeout=15.0):
    """Every frame until the server closes, or for timeout seconds at most:
    (frames, goaways as (last, code))."""
    frames, deadline = [], time.monotonic() + timeout
    try:
        for f in raw_frames(sock, timeout):
            frames.append(f)
            if time.monotonic() > deadline:
                break
    except socket.timeout:
        pass
    goaways = [struct.unpack(">II", p[:8]) for t, _, _, p in frames if t == GOAWAY]
    return frames, [(last & 0x7FFFFFFF, code) for last, code in goaways]


def one_block(block):
    """A request of one header block on a new connection: the GOAWAYs it got."""
    sock = connect(Z.ports[0], frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
    goaways = read_all(sock)[1]
    sock.close()
    return goaways


def worker():
    return Z.workers()[0]


def served(port=None):
    """A second connection is answered (curl, h2c by prior knowledge)."""
    r = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--max-time", "5",
                        "-w", " %{http_version}", f"http://127.0.0.1:{port or Z.ports[0]}/hello"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    return r.stdout.decode(errors="replace")


class Abuse(unittest.TestCase):
    def assert_ended(self, abuse, code, why, port=None, cpu_ticks_max=100):
        """abuse(mark) returns the GOAWAYs its connection got: the last one
        has code, one info line names why, a second connection is served
        meanwhile, and the worker spent less than cpu_ticks_max on it."""
        mark = Z.log_mark()
        w = worker()
        cpu0 = cpu_ticks(w)
        other = []
        t = threading.Thread(target=lambda: other.append(served(port)))
        t.start()
        goaways = abuse()
        t.join(15)
        self.assertTrue(goaways, "no GOAWAY")
        self.assertEqual(goaways[-1][1], code, goaways)
        # from - unless the block wants client addresses (access_log, ...)
        line = Z.wait_log("http2: closing a connection from ", since=mark)
        self.assertIn(why, line)
        time.sleep(0.3)
        lines = [l for l in Z.log_since(mark).splitlines() if "http2: closing" in l]
        self.assertEqual(len(lines), 1, lines)
        self.assertLess(cpu_ticks(w) - cpu0, cpu_ticks_max)
        self.assertEqual(other, ["Hello, h2! 2"])
        self.assertEqual(served(port), "Hello, h2! 2")
        self.assertEqual(Z.workers(), [w])  # nothing crashed

    def test_hpack_bomb(self):
        """A 4000-byte field put in the dynamic table once, then named again
        by its one-byte index in 8 CONTINUATION frames: ~130 KiB that would
        decode to over 500 MiB. Past 4 x max_header_list_size (4k here) the
        connection ends with ENHANCE_YOUR_CALM."""
        enc = hpack.Encoder()
        block = enc.encode(REQUEST + [("x-bomb", "b" * 4000)])  # x-bomb: dynamic index 62
        refs = b"\xbe" * 16000  # 0x80 | 62: "x-bomb: bbb...", again and again
        frames = [frame(HEADERS, END_STREAM, 1, block + refs[:12000])]
        frames += [frame(CONTINUATION, 0, 1, refs) for _ in range(7)]
        frames.append(frame(CONTINUATION, END_HEADERS, 1, refs))

        def bomb():
            sock = connect(Z.ports[0])
            try:
                sock.sendall(b"".join(frames))
            except (BrokenPipeError, ConnectionResetError):
                pass
            got, goaways = read_all(sock)
            sock.close()
            self.assertFalse([f for f in got if f[0] == HEADERS], "the bomb was answered")
            return goaways
        self.assert_ended(bomb, h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, "HPACK bomb")

    def test_header_list_a_little_over_is_answered_431(self):
        """Under the bomb's bound, a list over max_header_list_size is a
        stream's error (431), not the connection's."""
        c = H2(port=Z.ports[0])
        try:
            sid = c.request("/hello", headers=[("x-big", "y" * 6000)])
            self.assertEqual(c.response(sid)[0][":status"], "431")
            self.assertEqual(c.response(c.request("/hello"))[1], b"Hello, h2!")
        finally:
            c.close()

    def test_table_size_update_above_settings(self):
        """A dynamic table size update above SETTINGS_HEADER_TABLE_SIZE (4096,
        the default the server keeps): COMPRESSION_ERROR."""
        block = hpack_int(1 << 20, 5, 0x20) + hpack.Encoder().encode(REQUEST)
        self.assert_ended(lambda: one_block(block), h2.errors.ErrorCodes.COMPRESSION_ERROR,
                          "COMPRESSION_ERROR")

    def test_table_size_update_in_the_middle_of_a_block(self):
        """RFC 7541 4.2: size updates only at the start of a block; one after
        a field (a way to make the server evict and rebuild its table for
        each field) is a COMPRESSION_ERROR."""
        enc = hpack.Encoder()
        block = enc.encode(REQUEST) + hpack_int(0, 5, 0x20) + hpack_int(4096, 5, 0x20)
        block += enc.encode([("x-a", "1")])
        self.assert_ended(lambda: one_block(block), h2.errors.ErrorCodes.COMPRESSION_ERROR,
                          "COMPRESSION_ERROR")

    def test_huge_table_offered_to_the_server(self):
        """A client that allows a 4 GiB table for the server's answers gets
        one of at most 4096 bytes: the answers decode with a decoder that
        refuses any larger size update."""
        sock = socket.create_connection(("127.0.0.1", Z.ports[2]), timeout=10)
        try:
            sock.sendall(PREFACE + settings(header_table_size=0xFFFFFFFF))
            enc, dec = hpack.Encoder(), hpack.Decoder()
            dec.max_allowed_table_size = 4096
            n = 50
            for i in range(n):
                block = enc.encode([(":method", "GET"), (":path", f"/p{i}"), (":scheme", "http"),
                                    (":authority", "a.test")])
                sock.sendall(frame(HEADERS, END_STREAM | END_HEADERS, 1 + 2 * i, block))
            answered = 0
            for ftype, flags, sid, payload in raw_frames(sock, timeout=10):
                if ftype == HEADERS:
                    hdrs = dict(dec.decode(payload))  # raises on a size update over 4096
                    self.assertEqual(hdrs[":status"], "200")
                    self.assertLessEqual(dec.header_table_size, 4096)
                if ftype in (DATA, HEADERS) and flags & END_STREAM:
                    answered += 1
                if answered == n:
                    break
            self.assertEqual(answered, n)
        finally:
            sock.close()

    def test_stream_ids_near_the_end(self):
        """A client may open streams up to 2^31-1 (the last id): they are
        answered. It cannot open any after it: HEADERS on a lower id are not
        answered (nghttp2 takes them for frames of a closed stream), and the
        connection, with nothing left to do, ends at idle_timeout (1 s on
        this block) with GOAWAY NO_ERROR naming the last stream taken."""
        top = (1 << 31) - 1
        enc = hpack.Encoder()
        ids = (top - 4, top - 2, top)
        sock = connect(Z.ports[2], *[frame(HEADERS, END_STREAM | END_HEADERS, i,
                                           enc.encode(REQUEST)) for i in ids])
        try:
            frames = raw_frames(sock, timeout=10)
            ended = set()
            while len(ended) < 3:
                ftype, flags, sid, payload = next(frames)
                if ftype == DATA and flags & END_STREAM:
                    self.assertEqual(payload, b"many")
                    ended.add(sid)
            self.assertEqual(ended, set(ids))
            t0 = time.monotonic()
            sock.sendall(frame(HEADERS, END_STREAM | END_HEADERS, 5, enc.encode(REQUEST)))
            rest = list(frames)
            self.assertLess(time.monotonic() - t0, 5)
        finally:
            sock.close()
        self.assertEqual([(t, sid) for t, _, sid, _ in rest if t != GOAWAY], [])
        goaway = [struct.unpack(">II", p[:8]) for t, _, _, p in rest if t == GOAWAY]
        self.assertEqual(goaway, [(top, 0)])

    def test_very_many_streams_keep_memory_flat(self):
        """20000 streams on one connection: answered, and the worker's
        memory does not grow with them."""
        enc = hpack.Encoder()
        sock = connect(Z.ports[2], frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", (1 << 31) - 65536)))
        frames = raw_frames(sock, timeout=10)
        w = worker()
        sid, rss = 1, None

        def batch(n):
            nonlocal sid
            first = sid
            for _ in range(n):
                sock.sendall(frame(HEADERS, END_STREAM | END_HEADERS, sid, enc.encode(REQUEST)))
                sid += 2
            ended = 0
            while ended < n:
                ftype, flags, stream, _ = next(frames)
                self.assertNotEqual(ftype, GOAWAY)
                if ftype == DATA and flags & END_STREAM:
                    self.assertTrue(first <= stream < sid)
                    ended += 1
        try:
            for i in range(200):
                batch(100)
                if i == 19:  # the worker's pools are warm: measure from here
                    rss = rss_kb(w)
            if not SANITIZERS:  # ASan's quarantine keeps freed memory
                self.assertLess(rss_kb(w) - rss, 2048)
        finally:
            sock.close()

    def test_window_never_opened_with_other_streams_going(self):
        """A client that never opens its window for 40 big files, and keeps
        the connection busy meanwhile (a HEAD every 0.3 s, answered without
        DATA): send_timeout (2 s) still ends it, with GOAWAY and a log line;
        the worker holds a bounded amount of memory meanwhile."""
        w = worker()
        rss0 = rss_kb(w)

        def stalled():
            enc = hpack.Encoder()
            get = [(":method", "GET"), (":path", "/big.bin"), (":scheme", "http"),
                   (":authority", "a.test")]
            sock = connect(Z.ports[0], settings(initial_window_size=0),
                           *[frame(HEADERS, END_STREAM | END_HEADERS, 1 + 2 * i, enc.encode(get))
                             for i in range(40)])
            t0 = time.monotonic()
            stop = threading.Event()

            def heads():
                sid = 81
                while not stop.wait(0.3):
                    head = [(":method", "HEAD")] + REQUEST[1:]
                    try:
                        sock.sendall(frame(HEADERS, END_STREAM | END_HEADERS, sid,
                                           enc.encode(head)))
                    except OSError:
                        return
                    sid += 2
            t = threading.Thread(target=heads)
            t.start()
            try:
                got, goaways = read_all(sock, timeout=20)
            finally:
                stop.set()
                t.join()
                sock.close()
            self.assertLess(time.monotonic() - t0, 8)
            self.assertFalse([f for f in got if f[0] == DATA and f[3]],
                             "DATA through a shut window")
            if not SANITIZERS:
                self.assertLess(rss_kb(w) - rss0, 32 << 10)
            return goaways
        self.assert_ended(stalled, h2.errors.ErrorCodes.NO_ERROR, "send_timeout")


if __name__ == "__main__":
    zgtest.main()

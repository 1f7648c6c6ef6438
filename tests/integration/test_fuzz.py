"""Mutation fuzzing through the real binary, with fixed seeds (every run
tries the same cases): damaged zerg.yaml files must get a one-line error,
damaged HTTP requests on real sockets and damaged answers from a proxy_pass
upstream must get an answer or a close, and none may crash, hang or (in the
sanitizer build) trip ASan or UBSan."""
import os
import random
import re
import socket
import tempfile
import unittest

import zgtest
from zgtest import Zerg, in_parallel, run_zerg
from httpproxytest import RawUpstream

CONFIG_CASES = 300
HTTP_CASES = 512
HTTP_PARALLEL = 64

# Every core key and most module keys, so mutations reach every parser.
SEED_CONFIG = """modules_path: {modules}
worker_processes: 1
worker_cpu_affinity: [0]
worker_connections: 1024
worker_shutdown_timeout: 5s
pid: {tmp}/zerg.pid
error_log: {{ path: {tmp}/error.log, level: info }}
load_modules: [echo, http, proxy]
uring: {{ entries: 256, buffers: 256, buffer_size: 16k, sqpoll: false, send_zc_threshold: 16k, batch_wait_usec: 50, batch_size: 32, incremental: auto }}
servers:
  - listen: ["127.0.0.1:17007", "[::1]:17007"]
    module: echo
    backlog: 128
    echo: {{ idle_timeout: 60s }}
  - listen: ["127.0.0.1:18080"]
    module: http
    default_server: true
    http:
      server_name: [example.com, "*.example.org", "www.example.*"]
      server_header: zerg-test
      keepalive_timeout: 75s
      keepalive_requests: 1000
      client_header_timeout: 60s
      client_body_timeout: 60s
      send_timeout: 60s
      client_max_body_size: 1m
      large_client_header_buffers: 8k
      max_uri_length: 4k
      max_headers: 50
      access_log: {{ path: {tmp}/access.log, format: "$remote_addr [$time_iso8601] \\"$request\\" $status $request_time $upstream_addr $upstream_status $upstream_response_time" }}
      open_file_cache_valid: 60s
      mime_types: {{ md: text/markdown, wasm: application/wasm }}
      etag: true
      error_page: {{ 404: /static/404.html, 500: /static/50x.html }}
      locations:
        - {{ path: =/health, return: {{ status: 200, body: "ok\\n", headers: {{ Content-Type: text/plain }} }} }}
        - {{ path: /static/, root: {tmp}, index: [index.html, index.htm], autoindex: true }}
        - {{ path: /status, status: true }}
        - {{ path: /api/, proxy_pass: "http://app/v1/", proxy_connect_timeout: 2s, proxy_read_timeout: 5s, proxy_buffer_size: 16k, proxy_keepalive: 8, proxy_keepalive_timeout: 30s, proxy_set_header: {{ Host: $host, X-Real-IP: $remote_addr, X-Forwarded-For: $proxy_add_x_forwarded_for }} }}
        - {{ path: /one/, proxy_pass: "http://127.0.0.1:18090" }}
        - {{ path: /, root: {tmp} }}
      upstreams:
        app: {{ servers: ["127.0.0.1:18081", "[::1]:18082"], max_fails: 2, fail_timeout: 5s }}
        two: ["127.0.0.1:18083"]
  - listen: ["127.0.0.1:16380"]
    module: proxy
    proxy_protocol: true
    proxy_protocol_timeout: 2s
    proxy:
      name: redis
      upstream:
        balance: round_robin
        servers:
          - {{ address: "127.0.0.1:16379", weight: 2, max_fails: 3, fail_timeout: 10s }}
          - {{ address: "127.0.0.1:16479", backup: true }}
        health_check: {{ interval: 2s, timeout: 1s, rise: 2, fall: 3, send: "PING\\r\\n", expect: "+PONG" }}
      connect_timeout: 2s
      idle_timeout: 10m
      next_upstream_tries: 3
      proxy_protocol: v1
      max_connections: 10000
      buffer_size: 64k
"""

VALUES = ["-1", "0", "1", "99999999999999999999", "1e9", "0x10", "-5s", "10x", "1k", "16m", "1g",
          "999999t", '""', "''", "[]", "{}", "[a, b]", "{ a: 1 }", "null", "~", "true", "no", "*",
          "&a x", "*a", "!!binary aGk=", '"\\u0000"', "a" * 5000, "[" * 50, '"/' + "x/" * 3000 + '"',
          "127.0.0.1:0", '"[::1]:99999"', '"256.1.1.1:80"', '":80"', '"a:b:c"', "-", "? x", "|",
          '"%s%s%n"', "1.5", ".5s", "5ms", "0s", "+3", "12abc", '"=/"', '"="', "\xff"]
BYTES = [0, 9, 13, 34, 39, 44, 58, 91, 93, 123, 125, 35, 38, 42, 255, 0x2028]


def mutate_config(lines, rng):
    """One to three edits: a line dropped, doubled, cut or re-indented, a
    value replaced, a byte inserted, a number made huge, the file cut."""
    lines = list(lines)
    for _ in range(rng.randint(1, 3)):
        if not lines:
            break
        op = rng.randrange(8)
        i = rng.randrange(len(lines))
        line = lines[i]
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif op == 2 and ":" in line:
            k = line.rfind(":") if rng.random() < 0.5 else line.find(":")
            lines[i] = line[:k + 1] + " " + rng.choice(VALUES)
        elif op == 3:
            lines[i] = line[:rng.randrange(len(line) + 1)]
        elif op == 4:
            lines[i] = " " * rng.randrange(8) + line.lstrip()
        elif op == 5:
            p = rng.randrange(len(line) + 1)
            lines[i] = line[:p] + chr(rng.choice(BYTES)) + line[p:]
        elif op == 6:
            big = ["0", "-1", "4294967296", "18446744073709551616"]
            lines[i] = re.sub(r"\d+", lambda m: rng.choice(big + [m.group(0) * 3]), line, count=1)
        else:
            lines = lines[:i]
    return lines


class ConfigFuzz(unittest.TestCase):
    def test_mutated_configs_get_one_line_errors(self):
        tmp = tempfile.mkdtemp(prefix="zgfuzz-")
        seed = SEED_CONFIG.format(modules=zgtest.ZERG_MODULES, tmp=tmp)
        path = os.path.join(tmp, "zerg.yaml")
        with open(path, "w") as f:
            f.write(seed)
        rc, out = run_zerg(["-t", "-c", path])
        self.assertEqual(rc, 0, out)  # the seed itself is valid
        counts = {0: 0, 1: 0}
        for case in range(CONFIG_CASES):
            text = "\n".join(mutate_config(seed.split("\n"), random.Random(case)))
            with open(path, "w", errors="surrogateescape") as f:
                f.write(text)
            rc, out = run_zerg(["-t", "-c", path], timeout=30)
            self.assertIn(rc, (0, 1), f"case {case}: exit {rc}\n{out[-3000:]}")
            counts[rc] += 1
            if rc == 1:
                # "zerg: FILE:LINE:COL: what" (or FILE: what), then the verdict
                self.assertTrue(out.startswith("zerg: "), f"case {case}: {out[:500]!r}")
                self.assertIn("test failed", out, f"case {case}")
            else:
                self.assertIn("test is successful", out, f"case {case}")
        # the mutations reach past the parser: both outcomes occur
        self.assertGreater(counts[0], 0)
        self.assertGreater(counts[1], CONFIG_CASES // 2)


# An http server with small buffers (so that answers take several), as
# the request and upstream fuzzers start their configurations.
FUZZ_HTTP = """load_modules: [http]
uring: {{ entries: 256, buffers: 64, buffer_size: 4k }}
servers:
  - listen: ["127.0.0.1:{port0}"]
    module: http
    http:
      keepalive_timeout: 2s
"""

HTTP_CONFIG = FUZZ_HTTP + """      client_header_timeout: 1s
      client_body_timeout: 1s
      send_timeout: 2s
      client_max_body_size: 64k
      large_client_header_buffers: 2k
      access_log: {{ path: {tmp}/access.log, format: "$remote_addr $remote_user [$time_local] $time_iso8601 $msec \\"$request\\" $request_method $request_uri $server_protocol $status $body_bytes_sent \\"$http_referer\\" \\"$http_user_agent\\" $host $request_time" }}
      open_file_cache_valid: 60s
      error_page: {{ 404: /static/a.txt, 403: /static/missing.html }}
      locations:
        - {{ path: =/health, return: {{ status: 200, body: "ok\\n", headers: {{ Content-Type: text/plain }} }} }}
        - {{ path: /static/, root: {tmp}/html, index: [index.html], autoindex: true }}
        - {{ path: /status, status: true }}
        - {{ path: /, return: {{ status: 200, body: "hello\\n" }} }}
  - listen: ["127.0.0.1:{port0}"]
    module: http
    http:
      server_name: [www.example.test, "*.example.test"]
      client_max_body_size: 1k
      keepalive_timeout: 2s
      locations:
        - {{ path: /, root: {tmp}/html }}
"""

REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    b"HEAD /static/big.bin HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /static/big.bin HTTP/1.1\r\nHost: a\r\nRange: bytes=100-200000\r\n\r\n",
    b"GET /static/big.bin HTTP/1.1\r\nHost: www.example.test\r\nIf-None-Match: \"x\"\r\n\r\n",
    b"GET /static/ HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /static/sub/ HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /static/a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /static/a.txt HTTP/1.0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    b"GET http://www.example.test/static/a.txt HTTP/1.1\r\nHost: b\r\n\r\n",
    b"GET /status HTTP/1.1\r\nHost: a\r\n\r\nGET /static/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /static/big.bin HTTP/1.1\r\nHost: a\r\nIf-Range: \"zz\"\r\nRange: bytes=0-0,5-6\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
]
TOKENS = [b"\r\n", b"\n", b"\r", b" ", b"\t", b"\x00", b":", b"%", b"%00", b"%2f", b"..", b"/",
          b"chunked", b"Content-Length: ", b"Transfer-Encoding: ", b"0\r\n\r\n", b"ffffffffffffffff",
          b"-1", b"HTTP/1.1", b"HTTP/9.9", b"\xff", b"Host: ", b",", b";", b"\r\n\r\n", b"A" * 3000]


def mutate_request(rng):
    """A seed request (sometimes two) with one to six byte-level edits."""
    return mutate_bytes(REQUESTS, rng)


def mutate_bytes(seeds, rng):
    """A seed (sometimes two) with one to six byte-level edits."""
    d = bytearray(rng.choice(seeds))
    if rng.random() < 0.3:
        d += rng.choice(seeds)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(6)
        p = rng.randrange(len(d) + 1)
        if op == 0:
            del d[p:p + rng.randint(1, 8)]
        elif op == 1:
            d[p:p] = rng.choice(TOKENS)
        elif op == 2 and p < len(d):
            d[p] = rng.randrange(256)
        elif op == 3:
            d[p:p] = d[rng.randrange(len(d) + 1):][:rng.randint(1, 40)]
        elif op == 4:
            d = d[:p]
        else:
            d[p:p] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 5)))
    return bytes(d)


def read_until_close(s, rng, walk_away):
    """What zerg sends until it closes or resets, None when it does neither
    in time; the client walks away early with probability walk_away at each
    read."""
    got = b""
    try:
        while True:
            b = s.recv(65536)
            if not b or rng.random() < walk_away:
                return got
            got += b
    except socket.timeout:
        return None
    except OSError:
        return got


class HttpFuzz(unittest.TestCase):
    def exchange(self, port, case, problems):
        """Send case's request (whole, or in small pieces; sometimes then a
        FIN), read until zerg closes (sometimes walk away early)."""
        rng = random.Random(case)
        data = mutate_request(rng)
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(8)  # every timeout in the config is 2s at most
        got = b""
        try:
            if rng.random() < 0.3:
                i = 0
                while i < len(data):
                    n = rng.randint(1, 20)
                    s.sendall(data[i:i + n])
                    i += n
            else:
                s.sendall(data)
            if rng.random() < 0.3:
                s.shutdown(socket.SHUT_WR)
            got = read_until_close(s, rng, 0.05)
            if got is None:
                problems.append((case, "no answer and no close within 8s", data[:200]))
                got = b""
        except OSError:
            pass  # zerg closed (or reset) first: allowed
        finally:
            s.close()
        if got and not re.match(rb"HTTP/1\.[01] [1-5]\d\d ", got):
            problems.append((case, "not an HTTP response", got[:120]))

    def health(self, port):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            r = b""
            while True:
                b = s.recv(4096)
                if not b:
                    return r
                r += b

    def test_mutated_requests_get_answers_or_closes(self):
        z = Zerg(HTTP_CONFIG)
        static = os.path.join(z.tmp, "html", "static")
        os.makedirs(os.path.join(static, "sub"))
        with open(os.path.join(static, "big.bin"), "wb") as f:
            f.write(random.Random(0).randbytes(300000))
        with open(os.path.join(static, "a.txt"), "w") as f:
            f.write("ok\n")
        with open(os.path.join(static, "sub", "index.html"), "w") as f:
            f.write("<h1>x</h1>\n")
        z.start()
        try:
            workers = z.workers()
            port = z.ports[0]
            problems = []
            for first in range(0, HTTP_CASES, HTTP_PARALLEL):
                in_parallel(lambda i: self.exchange(port, first + i, problems),
                            min(HTTP_PARALLEL, HTTP_CASES - first), None)
                self.assertIn(b" 200 OK", self.health(port), f"after case {first}")
            self.assertEqual(problems, [])
            self.assertEqual(z.workers(), workers)  # no worker died and was replaced
            self.assertEqual(z.stop(), 0)
        finally:
            z.stop()


UPSTREAM_CASES = 400
UPSTREAM_PARALLEL = 50

ANSWERS = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nT: x\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nServer: up\r\n\r\nuntil the close",
    b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nraw",
    b"HTTP/1.1 500 Oops\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbad",
    b"HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n" + b"x" * 70000,
]

UPSTREAM_CONFIG = FUZZ_HTTP + """      send_timeout: 2s
      access_log: {{ path: {tmp}/access.log, format: "$request $status $upstream_addr $upstream_status $upstream_response_time" }}
      upstreams:
        up: ["127.0.0.1:@UP@", "127.0.0.1:@UP@"]
      locations:
        - {{ path: =/health, return: 200 }}
        - {{ path: /, proxy_pass: "http://up", proxy_read_timeout: 1s, proxy_keepalive: 4, proxy_buffer_size: 1k }}
"""


class Answers(RawUpstream):
    """Answers a request for /N with case N's mutated answer, sometimes in
    small pieces, then closes (or, sometimes, waits for zerg to)."""

    def answer(self, s, n, k, line, fields, rest):
        case = int(line.split(" ")[1].lstrip("/").split("?")[0] or 0)
        rng = random.Random(100000 + case)
        data = mutate_bytes(ANSWERS, rng)
        if rng.random() < 0.3:
            for i in range(0, len(data), 7):
                s.sendall(data[i:i + 7])
        else:
            s.sendall(data)
        return rng.random() < 0.3  # keep reading: zerg may reuse or close it


class UpstreamFuzz(unittest.TestCase):
    def exchange(self, port, case, problems):
        rng = random.Random(case)
        method = rng.choice(["GET", "GET", "HEAD", "POST", "UPGRADE"])
        head = f"{method if method != 'UPGRADE' else 'GET'} /{case} HTTP/1.1\r\nHost: a\r\n"
        if method == "UPGRADE":
            head += "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        elif rng.random() < 0.7:
            head += "Connection: close\r\n"
        if method == "POST":
            head += "Content-Length: 11\r\n\r\nhello world"
        else:
            head += "\r\n"
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(8)  # the proxy read timeout is 1s, keep-alive 2s
        got = b""
        try:
            s.sendall(head.encode())
            got = read_until_close(s, rng, 0.03)
            if got is None:
                problems.append((case, "no end within 8s", head))
                got = b""
        except OSError:
            pass
        finally:
            s.close()
        if got and not re.match(rb"HTTP/1\.1 [1-5]\d\d ", got):
            problems.append((case, "not an HTTP response", got[:120]))

    def test_mutated_upstream_answers_get_relayed_or_refused(self):
        up = Answers()
        self.addCleanup(up.close)
        z = Zerg(UPSTREAM_CONFIG.replace("@UP@", str(up.port)))
        z.start()
        try:
            workers = z.workers()
            problems = []
            for first in range(0, UPSTREAM_CASES, UPSTREAM_PARALLEL):
                in_parallel(lambda i: self.exchange(z.ports[0], first + i, problems),
                            min(UPSTREAM_PARALLEL, UPSTREAM_CASES - first), None)
            self.assertEqual(problems, [])
            self.assertEqual(z.workers(), workers)  # no worker died and was replaced
            with socket.create_connection(("127.0.0.1", z.ports[0]), timeout=5) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                self.assertIn(b" 200 OK", s.recv(4096))
            self.assertEqual(z.stop(), 0)
        finally:
            z.stop()


if __name__ == "__main__":
    zgtest.main()

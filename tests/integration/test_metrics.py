"""test_metrics - the http status page (api->metrics) through the real zerg
binary: the core's counters, the http module's and the proxy's per-upstream
figures in one Prometheus text, checked for format and for values; and the
figures coming back when zerg closes connections whose receive is pending."""
import re
import socket
import unittest

import zgtest
from zgtest import Zerg, free_port, wait_until

from httptest import assert_refused, connect, raw, read_response
from test_proxy_helpers import Backend, recv_line, tag_handler, who

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9]+(?:\.[0-9]+)?)$')


def parse_metrics(test, text):
    """Checks the Prometheus text format (0.0.4) as scrapers read it: every
    family has one HELP and one TYPE line before its samples, and its samples
    are together. Returns {(name, labels): value}."""
    seen, samples = set(), {}
    family = None
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, name = line.split(" ", 3)[1:3]
            if kind == "HELP":
                test.assertNotIn(name, seen, f"family {name} appears twice")
                seen.add(name)
                family = name
            else:
                test.assertEqual(name, family, f"TYPE {name} without its HELP first")
                test.assertIn(line.split(" ")[3], ("counter", "gauge", "histogram"), line)
            continue
        m = SAMPLE.match(line)
        test.assertIsNotNone(m, f"not a sample line: {line!r}")
        test.assertIn(m.group(1), (family, family + "_bucket", family + "_sum",
                                   family + "_count"), f"sample outside its family: {line!r}")
        key = (m.group(1), m.group(2) or "")
        test.assertNotIn(key, samples, f"sample repeated: {line!r}")
        samples[key] = float(m.group(3))
    return samples


def scrape(test, port, method="GET"):
    s = connect(port)
    s.sendall(f"{method} /metrics HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    st, h, body, _ = read_response(s, head=method == "HEAD")
    s.close()
    test.assertEqual(st, 200)
    test.assertTrue(h["content-type"].startswith("text/plain; version=0.0.4"), h)
    return h, body.decode()


def value(samples, name, **labels):
    want = "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    return samples[(name, want if labels else "")]


class StatusPage(unittest.TestCase):
    def test_core_http_and_proxy_metrics(self):
        live = Backend(tag_handler, name="live")
        dead = free_port()
        try:
            text = f"""worker_processes: 2
load_modules: [echo, http, proxy]
servers:
  - listen: ["127.0.0.1:{{port0}}"]
    module: http
    http:
      locations:
        - {{{{ path: /metrics, status: true, allow: [127.0.0.1] }}}}
  - listen: ["127.0.0.1:{{port1}}"]
    module: proxy
    proxy:
      name: pool
      upstream:
        servers:
          - "{live.addr()}"
          - {{{{ address: "127.0.0.1:{dead}", max_fails: 1, fail_timeout: 60s }}}}
  - listen: ["127.0.0.1:{{port2}}"]
    module: proxy
    proxy:
      upstream: {{{{ servers: ["{live.addr()}"] }}}}
  - listen: ["127.0.0.1:{{port3}}"]
    module: echo
"""
            with Zerg(text) as z:
                _, body = scrape(self, z.ports[0])
                before = parse_metrics(self, body)
                for _ in range(6):
                    self.assertEqual(who(z.ports[1]), "live")
                live_l = {"proxy": "pool", "server": live.addr()}

                def settled():  # the last sessions may still be closing
                    now = parse_metrics(self, scrape(self, z.ports[0])[1])
                    # a session's upstream side closes (and counts its
                    # bytes) after its client side
                    return (value(now, "zerg_proxy_clients", proxy="pool") == 0
                            and value(now, "zerg_proxy_server_active", **live_l) == 0)
                wait_until(settled, 5, "no proxy session open")
                # a scrape reads one series after another, the gauges last:
                # the counters of one begun once all sessions had closed
                h, body = scrape(self, z.ports[0])
                after = parse_metrics(self, body)
                self.assertEqual(int(h["content-length"]), len(body.encode()))

                dead_l = {"proxy": "pool", "server": f"127.0.0.1:{dead}"}
                delta = lambda name, **l: value(after, name, **l) - value(before, name, **l)
                # the proxy's figures live in shared memory: exact over both workers
                self.assertEqual(delta("zerg_proxy_clients_total", proxy="pool"), 6)
                self.assertEqual(value(after, "zerg_proxy_clients", proxy="pool"), 0)
                self.assertEqual(delta("zerg_proxy_server_connects_total", **live_l), 6)
                self.assertGreaterEqual(delta("zerg_proxy_server_bytes_in_total", **live_l), 6 * 5)
                self.assertEqual(value(after, "zerg_proxy_server_failures_total", **dead_l), 1)
                self.assertEqual(value(after, "zerg_proxy_server_connects_total", **dead_l), 0)
                for server, state in ((live_l, "up"), (dead_l, "failed")):
                    for st in ("up", "down", "failed"):
                        self.assertEqual(value(after, "zerg_proxy_server_state", **server,
                                               state=st), int(st == state), (server, st))
                self.assertEqual(value(after, "zerg_proxy_server_weight", **live_l, backup="0"), 1)
                # the unnamed block is named after its place among the proxy blocks
                self.assertEqual(value(after, "zerg_proxy_clients_total", proxy="proxy1"), 0)
                self.assertEqual(value(after, "zerg_proxy_server_state", proxy="proxy1",
                                       server=live.addr(), state="up"), 1)
                # the core's and the http module's: summed over the workers
                self.assertEqual([k for k in after if k[0] == "zerg_loop_turns_total"],
                                 [("zerg_loop_turns_total", "")])
                self.assertGreaterEqual(value(after, "zerg_loop_turns_total"), 1)
                self.assertGreaterEqual(value(after, "zerg_http_connections", state="writing"), 1)
                self.assertIn(("zerg_http_requests_total", '{server="_",class="2xx"}'), after)
                # HEAD: the length of the text, no body
                h, body = scrape(self, z.ports[0], "HEAD")
                self.assertEqual(body, "")
                self.assertGreater(int(h["content-length"]), 1000)
        finally:
            live.stop()

    def test_status_without_proxy_has_no_proxy_families(self):
        text = """load_modules: [http]
servers:
  - listen: ["127.0.0.1:{port0}"]
    module: http
    http:
      locations: [ {{ path: /metrics, status: true }} ]
"""
        with Zerg(text) as z:
            _, body = scrape(self, z.ports[0])
            samples = parse_metrics(self, body)
            self.assertFalse([k for k in samples if k[0].startswith("zerg_proxy_")])
            self.assertIn(("zerg_bytes_out_total", ''), samples)


class ProxyNames(unittest.TestCase):
    def block(self, name_line, port):
        return f"""  - listen: ["127.0.0.1:{port}"]
    module: proxy
    proxy:
      {name_line}
      upstream: {{{{ servers: ["127.0.0.1:9"] }}}}
"""

    def test_names_are_checked(self):
        head = "load_modules: [proxy]\nservers:\n"
        p1, p2 = free_port(), free_port()
        assert_refused(self, head + self.block("name: a", p1) + self.block("name: a", p2),
                       'name "a" is used by another proxy block')
        # a default name counts too
        assert_refused(self, head + self.block("", p1) + self.block("name: proxy0", p2),
                       'name "proxy0" is used by another proxy block')
        assert_refused(self, head + self.block('name: "a b"', p1),
                       "may hold only letters, digits")
        assert_refused(self, head + self.block("name: " + "x" * 65, p1),
                       "expected a name of 1 to 64 characters")


N = 20  # connections per case

CONF = """load_modules: [http, proxy]
servers:
  - listen: ["127.0.0.1:{{port0}}"]
    module: http
    http:
      keepalive_timeout: {keepalive}
      locations:
        - {{{{ path: /metrics, status: true }}}}
        - {{{{ path: =/hello, return: {{{{ status: 200, body: hello }}}} }}}}
  - listen: ["127.0.0.1:{{port1}}"]
    module: proxy
    proxy:
      name: pool
      idle_timeout: 300ms
      upstream:
        servers: ["{backend}"]
"""


def totals(port):
    """{name: value summed over its samples} from the status page, as the
    worker that answers sees it (this scrape's own connection included)."""
    data = raw(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5)
    out = {}
    for line in data.split(b"\r\n\r\n", 1)[1].decode().splitlines():
        if line and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            out[name] = out.get(name, 0) + float(line.rsplit(" ", 1)[1])
    return out


def hello(s):
    """One keep-alive request on s, its whole answer read."""
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
    buf = b""
    while not buf.endswith(b"hello"):
        d = s.recv(4096)
        if not d:
            raise AssertionError(f"closed before the answer: {buf!r}")
        buf += d
    assert buf.startswith(b"HTTP/1.1 200"), buf


def orderly_eof(s, timeout=5.0):
    """What the client sees when zerg closes s: 'eof' for an orderly close,
    'reset', 'data' (bytes came instead) or 'open' (nothing within timeout)."""
    s.settimeout(timeout)
    try:
        return "eof" if s.recv(4096) == b"" else "data"
    except ConnectionResetError:
        return "reset"
    except socket.timeout:
        return "open"


class ClosePending(unittest.TestCase):
    """zerg closing connections while a receive is armed on them (their
    multishot recv pending): http keep-alive connections ended by
    keepalive_timeout and by a graceful reload, proxy sessions ended by
    idle_timeout. Each client sees an orderly close (FIN, not a reset),
    nothing is left behind (the metrics' open connections, the worker's
    descriptors, the upstream's sessions) and the worker keeps serving."""

    def start(self, keepalive="300ms"):
        self.b = Backend(tag_handler)
        self.addCleanup(self.b.stop)
        self.z = Zerg(CONF.format(keepalive=keepalive, backend=self.b.addr()))
        self.addCleanup(self.z.stop)
        self.z.start()
        (self.w,) = self.z.wait_workers(1)
        self.port = self.z.ports[0]
        # the harness's start-up probe has gone: the worker holds nothing
        wait_until(lambda: not zgtest.tcp_peers(self.port), 10, "the start-up probe to close")
        self.fds = zgtest.fd_count(self.w)
        m = totals(self.port)  # this scrape's connection counts in the gauges
        self.active, self.http_conns = m["zerg_connections_active"], m["zerg_http_connections"]

    def assert_nothing_left(self, w=None):
        """Back where start() was: the metrics' connections, the worker's
        descriptors, the upstream's sessions; and the worker serves."""
        w = w or self.w
        wait_until(lambda: totals(self.port)["zerg_connections_active"] == self.active, 10,
                   f"{self.active:.0f} open connection(s) in the metrics",
                   detail=lambda: totals(self.port))
        m = totals(self.port)
        self.assertEqual(m["zerg_http_connections"], self.http_conns, m)
        self.assertEqual(m.get("zerg_proxy_clients", 0), 0, m)
        wait_until(lambda: zgtest.fd_count(w) <= self.fds, 10, f"worker fds back to {self.fds}",
                   detail=lambda: zgtest.fd_count(w))
        self.assertEqual(zgtest.fd_count(w), self.fds)
        wait_until(lambda: not self.b.conns, 10, "the upstream's sessions to end")
        self.assertEqual(self.z.workers(), [w], "a worker died:\n" + self.z.output()[-2000:])
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            hello(s)
        self.assertEqual(who(self.z.ports[1]), "b")

    def open_idle_keepalive(self):
        conns = []
        for _ in range(N):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            self.addCleanup(s.close)
            hello(s)  # answered: the connection now waits for the next request
            conns.append(s)
        return conns

    def test_keepalive_timeout_closes_idle_connections(self):
        self.start()
        conns = self.open_idle_keepalive()
        self.assertEqual([orderly_eof(s) for s in conns], ["eof"] * N)
        self.assertEqual(self.z.workers(), [self.w])
        self.assertNotIn("worker 0 (pid", self.z.output())  # nothing died or exited
        self.assert_nothing_left()

    def test_graceful_reload_closes_idle_connections(self):
        self.start(keepalive="60s")
        conns = self.open_idle_keepalive()
        old = self.w
        self.assertIn("reload done", self.z.reload())
        self.assertEqual([orderly_eof(s) for s in conns], ["eof"] * N)
        # the old worker drained and left on its own: exit code 0
        self.z.wait_log(f"worker 0 (pid {old}) exited", timeout=10)
        self.assertNotIn(f"(pid {old}) exited with", self.z.output())
        self.assertNotIn(f"(pid {old}) killed", self.z.output())
        (self.w,) = self.z.wait_workers(1)
        self.assertNotEqual(self.w, old)
        self.fds = zgtest.fd_count(self.w)  # a new worker: its own count
        self.assert_nothing_left()

    def test_proxy_idle_timeout_closes_sessions(self):
        self.start()
        port = self.z.ports[1]
        conns = []
        for _ in range(N):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            self.addCleanup(s.close)
            self.assertEqual(recv_line(s), "b")  # through to the upstream and back
            conns.append(s)
        self.assertEqual(totals(self.port)["zerg_proxy_clients"], N)
        self.assertEqual([orderly_eof(s) for s in conns], ["eof"] * N)
        self.assert_nothing_left()



if __name__ == "__main__":
    zgtest.main()

"""test_http_proxy_balance - upstream groups (the upstreams key) for
proxy_pass through the real zerg binary: round robin over the servers, a
server that refuses skipped (the request sent again to the next, nothing
lost), max_fails and fail_timeout, all servers down, a POST with a body not
sent twice, the Host of a group, and configuration errors.

The servers are small raw HTTP/1.1 servers in this process that answer
with their own name."""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zgtest  # noqa: E402
from zgtest import Zerg, free_port, run_zerg, wait_for  # noqa: E402
from httptest import HTTP_SERVER  # noqa: E402
from httpproxytest import Client, RawUpstream, request  # noqa: E402


class Named(RawUpstream):
    """Answers every request with "NAME host=HOST"."""

    def __init__(self, name):
        self.name = name
        self.requests = 0
        super().__init__()

    def answer(self, s, n, k, line, fields, rest):
        with self.lock:
            self.requests += 1
        body = f"{self.name} host={fields.get('host')}".encode()
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        return True


CONF = HTTP_SERVER + """      upstreams:
        pair: ["127.0.0.1:@A@", "127.0.0.1:@B@"]
        halfdead: {{ servers: ["127.0.0.1:@DEAD@", "127.0.0.1:@A@"], max_fails: 1, fail_timeout: 30s }}
        dead: ["127.0.0.1:@DEAD@", "127.0.0.1:@DEAD2@"]
      locations:
        - {{ path: /pair/, proxy_pass: "http://pair" }}
        - {{ path: /half/, proxy_pass: "http://halfdead" }}
        - {{ path: /dead/, proxy_pass: "http://dead" }}
"""


class TestUpstreamGroups(unittest.TestCase):
    def setUp(self):
        self.a, self.b = Named("A"), Named("B")
        self.addCleanup(self.a.close)
        self.addCleanup(self.b.close)
        conf = (CONF.replace("@A@", str(self.a.port)).replace("@B@", str(self.b.port))
                .replace("@DEAD@", str(free_port())).replace("@DEAD2@", str(free_port())))
        self.z = Zerg(conf)
        self.z.start()
        self.addCleanup(self.z.stop)

    def get(self, path, method="GET", body=None):
        with Client(self.z.ports[0]) as c:
            c.send(request(method, path, (("Connection", "close"),), body))
            return c.response()

    def test_round_robin(self):
        names = [self.get("/pair/x").body.split()[0] for _ in range(6)]
        self.assertEqual(sorted(names), [b"A"] * 3 + [b"B"] * 3)
        self.assertNotEqual(names[0], names[1])  # they alternate

    def test_host_is_the_group_name(self):
        self.assertEqual(self.get("/pair/x").body.split()[1], b"host=pair")

    def test_refusing_server_skipped_and_request_sent_again(self):
        rs = [self.get("/half/x") for _ in range(4)]
        self.assertEqual([(r.status, r.body.split()[0]) for r in rs], [(200, b"A")] * 4)
        out = self.z.output()
        # refused once, then skipped for fail_timeout: not tried again
        self.assertEqual(out.count("connect: Connection refused, sent again"), 1, out[-2000:])
        self.assertIn("server 127.0.0.1:", out)
        self.assertIn("skipped for 30000 ms", out)

    def test_all_down_is_502(self):
        for _ in range(2):
            self.assertEqual(self.get("/dead/x").status, 502)
        self.assertIn("no live server left to try", self.z.output())

    def test_post_with_a_body_not_sent_twice(self):
        # the first try goes to the group's first server, which refuses; the
        # body had begun to stream toward it, so the request is not sent on
        r = self.get("/half/p", method="POST", body=b"x" * 100)
        self.assertEqual((r.status, self.a.requests), (502, 0))
        # the refusing server is skipped now: the next POST reaches A
        r = self.get("/half/p", method="POST", body=b"x" * 100)
        self.assertEqual((r.status, self.a.requests), (200, 1))


LOG_CONF = HTTP_SERVER + """      access_log:
        path: {tmp}/access.log
        format: "$request_uri|$status|$upstream_addr|$upstream_status|$upstream_response_time"
        flush: 100ms
      upstreams:
        halfdead: {{ servers: ["127.0.0.1:@DEAD@", "127.0.0.1:@A@"], max_fails: 1 }}
      locations:
        - {{ path: /half/, proxy_pass: "http://halfdead" }}
        - {{ path: /dead/, proxy_pass: "http://127.0.0.1:@DEAD@" }}
        - {{ path: /local, return: 204 }}
        - {{ path: /status, status: true }}
"""


class TestUpstreamLog(unittest.TestCase):
    def test_upstream_variables(self):
        a = Named("A")
        self.addCleanup(a.close)
        dead = free_port()
        z = Zerg(LOG_CONF.replace("@A@", str(a.port)).replace("@DEAD@", str(dead)))
        z.start()
        self.addCleanup(z.stop)
        for path in ("/half/1", "/dead/2", "/local"):
            with Client(z.ports[0]) as c:
                c.send(request("GET", path, (("Connection", "close"),)))
                c.response(head_req=path == "/local")
        log = os.path.join(z.tmp, "access.log")
        text = wait_for(lambda: os.path.exists(log) and open(log).read().count("\n") >= 3 and
                        open(log).read(), 5) or ""
        lines = {ln.split("|")[0]: ln.split("|")[1:] for ln in text.splitlines()}
        # the first server refused, the second answered: the last one asked
        self.assertEqual(lines["/half/1"][:3], ["200", f"127.0.0.1:{a.port}", "200"], text)
        self.assertRegex(lines["/half/1"][3], r"^\d+\.\d{3}$")
        self.assertEqual(lines["/dead/2"][:3], ["502", f"127.0.0.1:{dead}", "502"], text)
        self.assertEqual(lines["/local"], ["204", "-", "-", "-"], text)
        # tries: refused + answered + refused; failures: 2; retries: 1
        with Client(z.ports[0]) as c:
            c.send(request("GET", "/status", (("Connection", "close"),)))
            m = c.response().body.decode()
        for name, want in (("tries", 3), ("failures", 2), ("retries", 1)):
            self.assertRegex(m, r'\nzerg_http_upstream_%s_total %d\n' % (name, want))


class TestUpstreamConfig(unittest.TestCase):
    def check(self, upstreams, loc, want):
        text = HTTP_SERVER.format(port0=free_port()) + upstreams + (
            "      locations:\n        - { path: /, proxy_pass: \"%s\" }\n" % loc)
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(f"modules_path: {zgtest.ZERG_MODULES}\n" + text)
        self.addCleanup(os.unlink, f.name)
        rc, out = run_zerg(["-t", "-c", f.name])
        self.assertNotEqual(rc, 0, out)
        self.assertIn(want, out)

    def test_errors(self):
        self.check("      upstreams: { app: [] }\n", "http://app",
                   "upstream app: expected a list of 1 to 256 servers")
        self.check("      upstreams: { app: [\"127.0.0.1:99999\"] }\n", "http://app",
                   "bad address \"127.0.0.1:99999\"")
        self.check("      upstreams: { app: { servers: [\"127.0.0.1:80\"], weight: 2 } }\n",
                   "http://app", "weight")
        self.check("", "http://no-such-host.invalid", "proxy_pass: \"http://no-such-host.invalid\"")


if __name__ == "__main__":
    zgtest.main()

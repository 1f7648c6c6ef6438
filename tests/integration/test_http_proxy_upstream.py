"""test_http_proxy_upstream - proxy_pass on the core's upstream groups
through the real zerg binary: weights (the answers follow them), least_conn
(a busy server is passed over), hash on the URI and on a header (the same
value, the same server; different values spread), a backup (used only once
the primary is down) and an active health check (a server that stops
answering is taken out before any request reaches it, and back in once it
answers again). Each step waits for what shows it (a log line, a request
at a server), never for a fixed time. Then the schema: the http module's
upstreams and the proxy's upstream take the same keys within the same
bounds, and what each module's hash_key may name.

The servers are small raw HTTP/1.1 servers in this process that answer
with their own name."""
import os
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zgtest  # noqa: E402
from zgtest import Zerg, free_port, run_zerg, wait_for  # noqa: E402
from httptest import HTTP_SERVER  # noqa: E402
from httpproxytest import Client, RawUpstream, request  # noqa: E402

HEALTH = "/health"


class Named(RawUpstream):
    """Answers every request with its name. It records the paths it was
    asked (health checks apart), mute or not; a path under /slow/ waits for
    release; while mute it closes every connection without an answer."""

    def __init__(self, name):
        self.name = name
        self.paths = []
        self.health = 0
        self.mute = False
        self.release = threading.Event()
        super().__init__()

    def answer(self, s, n, k, line, fields, rest):
        path = line.split()[1]
        with self.lock:
            if path == HEALTH:
                self.health += 0 if self.mute else 1
            else:
                self.paths.append(path)
        if self.mute:
            return False
        if path.startswith("/lc/slow"):
            self.release.wait(10)
        body = self.name.encode()
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        return path != HEALTH

    def asked(self, prefix):
        with self.lock:
            return [p for p in self.paths if p.startswith(prefix)]


CONF = HTTP_SERVER + """      upstreams:
        weighted:
          servers: [{{ address: "127.0.0.1:@A@", weight: 3 }}, "127.0.0.1:@B@"]
        least: {{ balance: least_conn, servers: ["127.0.0.1:@A@", "127.0.0.1:@B@"] }}
        by_uri:
          balance: hash
          hash_key: "$request_uri"
          servers: ["127.0.0.1:@A@", "127.0.0.1:@B@", "127.0.0.1:@C@"]
        by_user:
          balance: hash
          hash_key: "$http_x_user"
          servers: ["127.0.0.1:@A@", "127.0.0.1:@B@", "127.0.0.1:@C@"]
        standby:
          servers: ["127.0.0.1:@D@", {{ address: "127.0.0.1:@C@", backup: true }}]
        checked:
          servers: ["127.0.0.1:@A@", "127.0.0.1:@E@"]
          health_check: {{ interval: 50ms, timeout: 500ms, rise: 2, fall: 2,
                          send: "GET /health HTTP/1.0\\r\\n\\r\\n", expect: " 200 " }}
      locations:
        - {{ path: /w/, proxy_pass: "http://weighted" }}
        - {{ path: /kw/, proxy_pass: "http://weighted", proxy_keepalive: 4 }}
        - {{ path: /lc/, proxy_pass: "http://least" }}
        - {{ path: /uri/, proxy_pass: "http://by_uri" }}
        - {{ path: /user/, proxy_pass: "http://by_user" }}
        - {{ path: /standby/, proxy_pass: "http://standby" }}
        - {{ path: /hc/, proxy_pass: "http://checked" }}
        - {{ path: /status, status: true }}
"""


class TestUpstreamMethods(unittest.TestCase):
    def setUp(self):
        self.srv = {k: Named(k) for k in "ABCDE"}
        for s in self.srv.values():
            self.addCleanup(s.close)
            self.addCleanup(s.release.set)
        conf = CONF
        for k, s in self.srv.items():
            conf = conf.replace(f"@{k}@", str(s.port))
        self.z = Zerg(conf)
        self.z.start()
        self.addCleanup(self.z.stop)

    def get(self, path, headers=()):
        with Client(self.z.ports[0]) as c:
            c.send(request("GET", path, (("Connection", "close"),) + tuple(headers)))
            r = c.response()
        self.assertEqual(r.status, 200, (path, r, self.z.output()[-2000:]))
        return r.body.decode()

    def test_weights(self):
        got = [self.get(f"/w/{i}") for i in range(40)]
        self.assertEqual((got.count("A"), got.count("B")), (30, 10), got)
        # smooth: A never more than three times in a row
        self.assertNotIn("AAAA", "".join(got))

    def test_kept_connections_follow_the_weights(self):
        # the server is picked first, then a connection kept to it serves
        with Client(self.z.ports[0]) as c:
            got = []
            for i in range(20):
                c.send(request("GET", f"/kw/{i}"))
                r = c.response()
                self.assertEqual(r.status, 200, (r, self.z.output()[-2000:]))
                got.append(r.body.decode())
        self.assertEqual((got.count("A"), got.count("B")), (15, 5), got)
        # and kept: B's five came on one connection (A is health-checked too)
        self.assertEqual(self.srv["B"].nconns, 1)

    def test_least_conn_passes_over_the_busy_server(self):
        slow = Client(self.z.ports[0])
        self.addCleanup(slow.close)
        slow.send(request("GET", "/lc/slow", (("Connection", "close"),)))
        busy = wait_for(lambda: [k for k in "AB" if self.srv[k].asked("/lc/slow")], 5)
        self.assertTrue(busy, self.z.output()[-2000:])
        idle = "B" if busy == ["A"] else "A"
        # round robin would alternate; least_conn sends each to the idle one
        self.assertEqual([self.get(f"/lc/fast{i}") for i in range(6)], [idle] * 6)
        self.srv[busy[0]].release.set()
        self.assertEqual(slow.response().body.decode(), busy[0])

    def test_hash_on_the_uri(self):
        uris = [f"/uri/item/{i}?v={i * 7}" for i in range(30)]
        first = {u: self.get(u) for u in uris}
        again = {u: self.get(u) for u in reversed(uris)}
        self.assertEqual(first, again)  # the same URI, the same server
        self.assertEqual(set(first.values()), {"A", "B", "C"}, first)  # spread

    def test_hash_on_a_header(self):
        users = [f"user{i}" for i in range(30)]
        first = {u: self.get(f"/user/{i}", [("X-User", u)]) for i, u in enumerate(users)}
        # the path changes, the header does not: the server stays
        again = {u: self.get(f"/user/other{i}", [("X-User", u)]) for i, u in enumerate(users)}
        self.assertEqual(first, again)
        self.assertEqual(set(first.values()), {"A", "B", "C"}, first)

    def test_backup_only_when_the_primary_is_down(self):
        self.assertEqual({self.get(f"/standby/{i}") for i in range(8)}, {"D"})
        self.assertEqual(self.srv["C"].asked("/standby/"), [])
        self.srv["D"].close()  # refused from now on
        self.assertEqual([self.get(f"/standby/x{i}") for i in range(4)], ["C"] * 4)
        self.assertIn("skipped for 10000 ms", self.z.output())

    def test_bytes_counted_per_server(self):
        for i in range(3):
            self.assertEqual(self.get(f"/standby/{i}"), "D")
        with Client(self.z.ports[0]) as c:
            c.send(request("GET", "/status", (("Connection", "close"),)))
            text = c.response().body.decode()
        for way in ("in", "out"):
            needle = ('zerg_http_upstream_server_bytes_%s_total{upstream="standby",'
                      'server="127.0.0.1:%d"} ' % (way, self.srv["D"].port))
            line = [ln for ln in text.splitlines() if ln.startswith(needle)]
            self.assertEqual(len(line), 1, text[-3000:])
            self.assertGreater(int(line[0].split()[-1]), 100, line[0])

    def metric_state(self, server, state):
        with Client(self.z.ports[0]) as c:
            c.send(request("GET", "/status", (("Connection", "close"),)))
            text = c.response().body.decode()
        needle = ('zerg_http_upstream_server_state{upstream="checked",server="127.0.0.1:%d",'
                  'state="%s"} ' % (self.srv[server].port, state))
        line = [ln for ln in text.splitlines() if ln.startswith(needle)]
        self.assertEqual(len(line), 1, text[-3000:])
        return line[0].endswith(" 1")

    def test_health_check_takes_a_mute_server_out_and_back(self):
        e = self.srv["E"]
        name = f"server 127.0.0.1:{e.port}"
        # both answer their checks, and both serve
        self.assertTrue(wait_for(lambda: e.health >= 2 and self.srv["A"].health >= 2, 5))
        self.assertEqual({self.get(f"/hc/{i}") for i in range(6)}, {"A", "E"})
        e.mute = True  # it stops answering
        self.assertTrue(wait_for(lambda: f"{name} is down" in self.z.output(), 5),
                        self.z.output()[-2000:])
        self.assertTrue(self.metric_state("E", "down"))
        before = len(e.asked("/hc/"))
        self.assertEqual({self.get(f"/hc/out{i}") for i in range(6)}, {"A"})
        self.assertEqual(len(e.asked("/hc/")), before)  # no request was sent to it
        e.mute = False
        self.assertTrue(wait_for(lambda: f"{name} is up" in self.z.output(), 5),
                        self.z.output()[-2000:])
        self.assertTrue(self.metric_state("E", "up"))
        self.assertEqual({self.get(f"/hc/in{i}") for i in range(6)}, {"A", "E"})


class TestUpstreamSchema(unittest.TestCase):
    """The keys are the core's, for the http module as for the proxy."""

    def check(self, module_conf, want):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(f"modules_path: {zgtest.ZERG_MODULES}\n" + module_conf)
        self.addCleanup(os.unlink, f.name)
        rc, out = run_zerg(["-t", "-c", f.name])
        if want is None:
            self.assertEqual(rc, 0, out)
        else:
            self.assertNotEqual(rc, 0, out)
            self.assertIn(want, out)

    def http(self, group):
        return (HTTP_SERVER.format(port0=free_port()) + "      upstreams:\n        app: " + group +
                "\n      locations:\n        - { path: /, proxy_pass: \"http://app\" }\n")

    def proxy(self, group):
        return ("load_modules: [proxy]\nservers:\n  - listen: [\"127.0.0.1:%d\"]\n"
                "    module: proxy\n    proxy:\n      upstream: %s\n" % (free_port(), group))

    def test_same_keys_and_bounds(self):
        good = ('{ balance: least_conn, max_fails: 2, fail_timeout: 5s, servers: '
                '[{ address: "127.0.0.1:1", weight: 2, max_conns: 10 }, '
                '{ address: "127.0.0.1:2", backup: true }], health_check: { interval: 1s } }')
        for conf in (self.http, self.proxy):
            self.check(conf(good), None)
            self.check(conf('["127.0.0.1:1", "127.0.0.1:2"]'), None)
            self.check(conf('{ servers: [{ address: "127.0.0.1:1", weight: 1001 }] }'),
                       "out of range")
            self.check(conf('{ servers: [{ address: "127.0.0.1:1", backup: true }] }'),
                       "every server is a backup")
            self.check(conf('{ balance: fastest, servers: ["127.0.0.1:1"] }'), "fastest")

    def test_group_names_are_global(self):
        # one name in two server blocks would give two groups one metric label set
        block = ("  - listen: [\"127.0.0.1:%d\"]\n    module: http\n    http:\n"
                 "      upstreams:\n        %s: [\"127.0.0.1:1\"]\n      locations:\n"
                 "        - { path: /, proxy_pass: \"http://%s\" }\n")
        head = "load_modules: [http]\nservers:\n"
        self.check(head + block % (free_port(), "app", "app") +
                   block % (free_port(), "other", "other"), None)
        conf = head + block % (free_port(), "app", "app") + block % (free_port(), "app", "app")
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(f"modules_path: {zgtest.ZERG_MODULES}\n" + conf)
        self.addCleanup(os.unlink, f.name)
        rc, out = run_zerg(["-t", "-c", f.name])
        self.assertNotEqual(rc, 0, out)
        # file:line:col of the second block's group
        self.assertIn('%s:15:14: ' % f.name, out)
        self.assertIn('"app" is already a group of another server block', out)

    def test_hash_keys(self):
        for key in ("$remote_addr", "$request_uri", "$uri", "$host", "$http_x_user"):
            self.check(self.http('{ balance: hash, hash_key: "%s", servers: ["127.0.0.1:1"] }'
                                 % key), None)
        self.check(self.http('{ balance: hash, hash_key: "$cookie", servers: ["127.0.0.1:1"] }'),
                   "hash_key")
        self.check(self.proxy('{ balance: hash, hash_key: "$uri", servers: ["127.0.0.1:1"] }'),
                   "only $remote_addr")


if __name__ == "__main__":
    zgtest.main()

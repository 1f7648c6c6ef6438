"""limit_req and limit_conn with two workers: the zones' state is in memory
the workers share, so a limit holds for the whole server (a per-worker
limit would let about twice as many through). Requests come on fresh
connections, which the kernel spreads over both workers."""
import concurrent.futures
import http.client
import http.server
import os
import re
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zgtest import Zerg, wait_until  # noqa: E402
from httptest import HTTP_SERVER, assert_refused  # noqa: E402

SLOW_S = 1.5  # the slow upstream answers after this


class SlowUpstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        time.sleep(SLOW_S)
        self.reply(b"slow")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.reply(b"got " + body)

    def reply(self, body):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass  # the client (a killed worker) is gone

    def log_message(self, *args):
        pass


CONF = """worker_processes: 2
load_modules: [http]
servers:
  - listen: ["127.0.0.1:{port0}"]
    module: http
    http:
      server_name: [limit.test]
      limit_zones:
        per_ip: {{ key: $remote_addr, rate: 60r/m }}
        per_ip_fast: {{ key: $remote_addr, rate: 5r/s }}
        per_user: {{ key: "$server_name:$http_x_user", rate: 1r/m, keys: 2 }}
        strict: {{ key: $remote_addr, rate: 60r/m }}
        watch: {{ key: $remote_addr, rate: 60r/m }}
        conns: {{ key: $remote_addr }}
        by_token: {{ key: $http_x_token, rate: 1r/m }}
      locations:
        - path: /status
          status: true
        - path: =/nodelay
          return: {{ status: 200, body: ok }}
          limit_req: {{ zone: per_ip, burst: 10, nodelay: true }}
        - path: =/delay
          return: {{ status: 200, body: ok }}
          limit_req: {{ zone: per_ip_fast, burst: 5 }}
        - path: /post
          proxy_pass: http://127.0.0.1:{up}
          limit_req: {{ zone: per_ip_fast, burst: 5 }}
        - path: =/busy
          return: {{ status: 200, body: ok }}
          limit_req: {{ zone: strict, status: 503 }}
        - path: =/dry
          return: {{ status: 200, body: ok }}
          limit_req: {{ zone: watch, dry_run: true }}
        - path: =/user
          return: {{ status: 200, body: ok }}
          limit_req: {{ zone: per_user }}
        - path: =/token
          return: {{ status: 200, body: ok }}
          limit_req: {{ zone: by_token }}
        - path: /slow
          proxy_pass: http://127.0.0.1:{up}
          limit_conn: {{ zone: conns, max: 2 }}
"""


def get(port, path, headers=None, method="GET", body=None, timeout=10.0):
    """One request on a fresh connection: (status, headers, body)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=dict({"Host": "limit.test"}, **(headers or {})))
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def burst_of(port, path, n, clients):
    """n requests from clients threads at once: their statuses."""
    with concurrent.futures.ThreadPoolExecutor(clients) as ex:
        return list(ex.map(lambda _: get(port, path)[0], range(n)))


def scrape(port):
    return get(port, "/status")[2].decode()


def counter(text, zone, limit, result):
    m = re.search(r'^zerg_http_limit_requests_total\{zone="%s",limit="%s",result="%s"\} (\d+)$'
                  % (zone, limit, result), text, re.M)
    return int(m.group(1)) if m else None


def evictions(text, zone):
    m = re.search(r'^zerg_http_limit_evictions_total\{zone="%s"\} (\d+)$' % zone, text, re.M)
    return int(m.group(1)) if m else None


def answered_by_worker(port):
    """Requests each worker answered (2xx and 4xx): its own row of the shared
    metrics, from one scrape with the per-worker breakdown."""
    text = get(port, "/status?per_worker=1")[2].decode()
    totals = {}
    for line in text.splitlines():
        m = re.match(r'zerg_http_requests_total\{[^}]*class="[245]xx",worker="(\d+)",pid="\d+"\} (\d+)$',
                     line)
        if m:
            totals[m.group(1)] = totals.get(m.group(1), 0) + int(m.group(2))
    return totals


def slow_upstream():
    up = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowUpstream)
    up.daemon_threads = True
    threading.Thread(target=up.serve_forever, daemon=True).start()
    return up


class Limits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = slow_upstream()
        cls.z = Zerg(CONF.replace("{up}", str(cls.up.server_address[1])))
        cls.z.start()
        cls.port = cls.z.ports[0]

    @classmethod
    def tearDownClass(cls):
        cls.z.stop()
        cls.up.shutdown()
        cls.up.server_close()

    def test_nodelay_refuses_the_excess_across_workers(self):
        # 60r/m with burst 10, nodelay: of 80 requests at once, the first, the
        # burst and about one per second of the run pass; the rest get 429.
        # Per-worker buckets would let about twice as many through.
        t0 = time.monotonic()
        statuses = burst_of(self.port, "/nodelay", 80, 16)
        took = time.monotonic() - t0
        passed = statuses.count(200)
        self.assertEqual(passed + statuses.count(429), 80, statuses)
        self.assertGreaterEqual(passed, 11, statuses)
        self.assertLessEqual(passed, 11 + int(took) + 1, (statuses, took))
        text = scrape(self.port)
        self.assertEqual(counter(text, "per_ip", "req", "refused"), statuses.count(429), text)
        per_worker = answered_by_worker(self.port)
        self.assertEqual(len(per_worker), 2, per_worker)
        self.assertTrue(all(n > 0 for n in per_worker.values()), per_worker)

    def test_burst_with_delay_delays_rather_than_refuses(self):
        # 5r/s, burst 5, no nodelay: 6 requests at once all pass, the last
        # ones about a second later (one each 200 ms).
        time.sleep(1.5)  # the bucket of this address empties
        t0 = time.monotonic()
        statuses = burst_of(self.port, "/delay", 6, 6)
        took = time.monotonic() - t0
        self.assertEqual(statuses, [200] * 6)
        self.assertGreaterEqual(took, 0.8)
        self.assertLess(took, 3.0)
        text = scrape(self.port)
        self.assertGreaterEqual(counter(text, "per_ip_fast", "req", "delayed"), 4, text)

    def test_delayed_request_body_reaches_the_upstream(self):
        time.sleep(1.5)
        with concurrent.futures.ThreadPoolExecutor(6) as ex:
            got = list(ex.map(lambda i: get(self.port, "/post", method="POST",
                                            body=b"body%d" % i), range(6)))
        self.assertEqual([g[0] for g in got], [200] * 6, got)
        self.assertEqual(sorted(g[2] for g in got), sorted(b"got body%d" % i for i in range(6)))

    def test_refusal_status_and_retry_after(self):
        statuses = []
        for path in ("/busy", "/busy"):
            statuses.append(get(self.port, path))
        st, headers, _ = statuses[1]
        self.assertEqual(st, 503)
        self.assertIn("retry-after", headers)
        self.assertGreaterEqual(int(headers["retry-after"]), 1)
        self.assertLessEqual(int(headers["retry-after"]), 60)
        for _ in range(20):  # the same zone at its default status
            st, headers, _ = get(self.port, "/nodelay")
            if st != 200:
                break
        self.assertEqual(st, 429)
        self.assertIn("retry-after", headers)

    def test_limit_conn_refuses_the_excess(self):
        # 2 requests in progress per address: of 6 slow ones at once, 2 pass
        statuses = burst_of(self.port, "/slow", 6, 6)
        self.assertEqual(sorted(statuses), [200, 200, 429, 429, 429, 429])
        # their slots went back when they ended
        self.assertEqual(burst_of(self.port, "/slow", 2, 2), [200, 200])

    def test_dry_run_refuses_nothing_but_counts_and_logs(self):
        mark = self.z.log_mark()
        before = counter(scrape(self.port), "watch", "req", "dry_run_refused")
        statuses = [get(self.port, "/dry")[0] for _ in range(5)]
        self.assertEqual(statuses, [200] * 5)
        after = counter(scrape(self.port), "watch", "req", "dry_run_refused")
        self.assertGreaterEqual(after - before, 4)
        self.z.wait_log("dry run", since=mark)

    def test_eviction_of_the_least_recent_key(self):
        # 2 keys kept, one request a minute each: a, b, then c evicts a
        def user(u):
            return get(self.port, "/user", headers={"X-User": u})[0]
        before = evictions(scrape(self.port), "per_user")
        self.assertEqual([user("a"), user("b"), user("b")], [200, 200, 429])
        self.assertEqual(user("c"), 200)  # a is evicted: it was the least recent
        self.assertEqual(user("c"), 429)
        self.assertEqual(user("a"), 200)  # forgotten, so allowed again (evicts b)
        self.assertEqual(evictions(scrape(self.port), "per_user") - before, 2)

    def test_empty_key_is_not_limited(self):
        def token(t):
            return get(self.port, "/token", headers={"X-Token": t} if t else {})[0]
        self.assertEqual([token("t"), token("t")], [200, 429])
        self.assertEqual([token(None), token(None), token(None)], [200, 200, 200])


class ConfErrors(unittest.TestCase):
    def refused(self, zones, rule, needle):
        text = "      limit_zones: " + zones + """
      locations:
        - { path: /, return: { status: 200 }, """ + rule + " }\n"
        assert_refused(self, HTTP_SERVER + text.replace("{", "{{").replace("}", "}}"), needle)

    def test_mistakes_are_named(self):
        self.refused("{ a: { key: $foo, rate: 1r/s } }", "limit_req: { zone: a }",
                     'unknown variable at "$foo"')
        self.refused("{ a: { key: $host, rate: 1r/h } }", "limit_req: { zone: a }",
                     "rate: expected requests per second or minute")
        self.refused("{ a: { key: $host } }", "limit_req: { zone: a }", 'zone "a" has no rate')
        self.refused("{ a: { key: $host } }", "limit_conn: { zone: b, max: 1 }", 'no zone "b"')
        self.refused("{ a: { key: $host } }", "limit_conn: { zone: a }", "limit_conn: needs max")
        self.refused("{ a: { key: $host, rate: 1r/s } }",
                     "limit_req: { zone: a, burst: 5, delay: 2, nodelay: true }",
                     "delay or nodelay, not both")


class KilledWorker(unittest.TestCase):
    def test_slots_of_a_killed_worker_do_not_stay_taken(self):
        # both slots of the address taken, then both workers killed: the new
        # workers see the old ones gone and count afresh (else the two slots
        # would stay taken until a reload, and every request get 429)
        up = slow_upstream()
        self.addCleanup(up.server_close)
        self.addCleanup(up.shutdown)
        with Zerg(CONF.replace("{up}", str(up.server_address[1]))) as z:
            with concurrent.futures.ThreadPoolExecutor(2) as ex:
                held = [ex.submit(get, z.ports[0], "/slow") for _ in range(2)]
                time.sleep(0.5)  # both in progress upstream
                self.assertEqual(get(z.ports[0], "/slow")[0], 429)
                old = z.workers()
                for pid in old:
                    os.kill(pid, signal.SIGKILL)
                for f in held:
                    self.assertRaises(Exception, f.result)
            wait_until(lambda: len(set(z.wait_workers(2)) & set(old)) == 0, 10, "new workers")
            self.assertEqual(burst_of(z.ports[0], "/slow", 2, 2), [200, 200])
            z.wait_log("a worker died")


class Reload(unittest.TestCase):
    def test_reload_keeps_serving_and_limiting(self):
        conf = CONF.replace("{up}", "9")
        with Zerg(conf) as z:
            self.assertEqual(get(z.ports[0], "/busy")[0], 200)
            self.assertIn("reload done", z.reload())
            z.wait_workers(2)
            st = [get(z.ports[0], "/busy")[0] for _ in range(3)]
            self.assertEqual(st[0], 200)
            self.assertEqual(st[1:], [503, 503])
            self.assertIsNotNone(counter(scrape(z.ports[0]), "strict", "req", "refused"))


if __name__ == "__main__":
    unittest.main()

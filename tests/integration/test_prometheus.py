"""test_prometheus - the status page as Prometheus reads it: every scrape
parsed by prometheus_client's text parser; the totals are sums over every
worker (the same from whichever worker answers, equal to the requests made)
and never go backwards across a reload and a worker killed with SIGKILL."""
import os
import signal
import socket
import time
import unittest

from prometheus_client.parser import text_string_to_metric_families

import zgtest
from zgtest import Zerg, wait_until

from httptest import raw

# the status page's server block, on port1 (formatted twice, as CONF)
STATUS_BLOCK = """  - listen: ["127.0.0.1:{{port1}}"]
    module: http
    http:
      server_name: [status]
      locations:
        - {{{{ path: /metrics, status: true }}}}
"""

CONF = """worker_processes: 2
load_modules: [http]
servers:
  - listen: ["127.0.0.1:{{port0}}"]
    module: http
    http:
      server_name: [app]
      latency_buckets: {buckets}
      locations:
        - {{{{ path: =/hello, return: {{{{ status: 200, body: hello }}}} }}}}
        - {{{{ path: =/missing, return: {{{{ status: 404, body: no }}}} }}}}
""" + STATUS_BLOCK

BUCKETS = "[0.001, 0.05, 2]"


def scrape(port, query=""):
    """One scrape on a new connection, parsed: {(sample name, labels): value}
    and the type of each family and sample ({name or (name, labels): type})."""
    data = raw(port, f"GET /metrics{query} HTTP/1.1\r\nHost: status\r\nConnection: close\r\n\r\n"
               .encode(), 5)
    head, body = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200"), head
    samples, types = {}, {}
    for fam in text_string_to_metric_families(body.decode()):
        types[fam.name] = fam.type
        for s in fam.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in samples, f"sample repeated: {key}"
            samples[key] = s.value
            types[key] = fam.type
    return samples, types


def get(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


def requests_of(samples, cls="2xx"):
    return get(samples, "zerg_http_requests_total", server="app", **{"class": cls})


def hello(n, port, path="/hello"):
    """n requests, each on a new connection (so both workers take some)."""
    for _ in range(n):
        data = raw(port, f"GET {path} HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n"
                   .encode(), 5)
        assert data.startswith(b"HTTP/1.1 "), data


def counters(samples, types):
    """The samples of every counter and histogram (what must never go back)."""
    return {k: v for k, v in samples.items() if types.get(k) in ("counter", "histogram")}


class Totals(unittest.TestCase):
    def setUp(self):
        self.z = Zerg(CONF.format(buckets=BUCKETS))
        self.addCleanup(self.z.stop)
        self.z.start()
        self.z.wait_workers(2)
        self.app, self.status = self.z.ports[0], self.z.ports[1]

    def test_totals_are_sums_and_stay_still_without_traffic(self):
        hello(40, self.app)
        hello(7, self.app, "/missing")
        first, types = scrape(self.status)
        self.assertEqual(types["zerg_http_requests"], "counter")
        self.assertEqual(types["zerg_http_request_duration_seconds"], "histogram")
        self.assertEqual(types["zerg_connections_active"], "gauge")
        self.assertEqual(requests_of(first), 40)
        self.assertEqual(requests_of(first, "4xx"), 7)
        # the histogram counted each, in the configured buckets
        h = dict(server="app")
        self.assertEqual(get(first, "zerg_http_request_duration_seconds_count", **h), 47)
        self.assertEqual(get(first, "zerg_http_request_duration_seconds_bucket", le="+Inf", **h),
                         47)
        les = sorted(float(dict(k[1])["le"]) for k in first
                     if k[0] == "zerg_http_request_duration_seconds_bucket"
                     and dict(k[1]).get("server") == "app")
        self.assertEqual(les, [0.001, 0.05, 2.0, float("inf")])
        accepted = get(first, "zerg_connections_accepted_total")
        for i in range(1, 10):
            s, _ = scrape(self.status)
            # whichever worker answers: the app's figures stand still...
            self.assertEqual(requests_of(s), 40)
            self.assertEqual(requests_of(s, "4xx"), 7)
            self.assertEqual(get(s, "zerg_http_request_duration_seconds_count", **h), 47)
            # ...and each scrape is one more connection, wherever it went
            self.assertEqual(get(s, "zerg_connections_accepted_total"), accepted + i)
        # the breakdown: one row per worker, which add up to the total
        s, _ = scrape(self.status, "?per_worker=1")
        rows = {dict(k[1])["worker"]: v for k, v in s.items()
                if k[0] == "zerg_http_requests_total" and "worker" in dict(k[1])
                and dict(k[1])["server"] == "app" and dict(k[1])["class"] == "2xx"}
        self.assertEqual(sorted(rows), ["0", "1", "exited"], rows)
        self.assertEqual(sum(rows.values()), 40)
        self.assertEqual(requests_of(s), 40)

    def test_monotonic_across_reload_and_kill(self):
        hello(30, self.app)
        before, types = scrape(self.status)
        self.assertEqual(requests_of(before), 30)
        self.assertIn("reload done", self.z.reload())
        self.z.wait_workers(2)
        after_reload, _ = scrape(self.status)
        self.assertEqual(requests_of(after_reload), 30)  # the old workers' counts folded
        self.assertEqual(get(after_reload, "zerg_reloads_total", result="ok"), 1)
        hello(20, self.app)
        self.assertEqual(requests_of(scrape(self.status)[0]), 50)
        victim = self.z.workers()[0]
        os.kill(victim, signal.SIGKILL)
        self.z.wait_log(f"(pid {victim}) killed by signal 9")
        wait_until(lambda: get(scrape(self.status)[0], "zerg_worker_restarts_total") == 1, 10,
                   "the restart counted")
        self.z.wait_workers(2)
        hello(10, self.app)
        last, _ = scrape(self.status)
        self.assertEqual(requests_of(last), 60)
        # a reload the master refuses is counted too, and changes nothing
        with open(self.z.conf) as f:
            good = f.read()
        with open(self.z.conf, "w") as f:
            f.write(good.replace("latency_buckets: " + BUCKETS, "latency_buckets: [2, 1]"))
        self.assertIn("reload failed", self.z.reload())
        final, _ = scrape(self.status)
        self.assertEqual(get(final, "zerg_reloads_total", result="failed"), 1)
        self.assertEqual(requests_of(final), 60)
        # no counter went backwards at any step
        steps = [before, after_reload, last, final]
        for a, b in zip(steps, steps[1:]):
            ca, cb = counters(a, types), counters(b, types)
            for key, v in ca.items():
                if key in cb:
                    self.assertGreaterEqual(cb[key], v, key)


def les(samples, name="zerg_http_request_duration_seconds_bucket"):
    return sorted(float(dict(k[1])["le"]) for k in samples
                  if k[0] == name and dict(k[1]).get("server") == "app")


class BucketsReload(unittest.TestCase):
    def test_new_buckets_show_once_the_reload_is_done(self):
        with Zerg(CONF.format(buckets=BUCKETS)) as z:
            hello(5, z.ports[0])
            with open(z.conf) as f:
                good = f.read()
            # a reload that fails after the new buckets were registered (its
            # listen address is taken) keeps showing the running ones
            busy = socket.socket()
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            taken = busy.getsockname()[1]
            with open(z.conf, "w") as f:
                f.write(good.replace("latency_buckets: " + BUCKETS, "latency_buckets: [0.001, 1]")
                        .replace(f"127.0.0.1:{z.ports[1]}",
                                 f"127.0.0.1:{z.ports[1]}\", \"127.0.0.1:{taken}"))
            self.assertIn("reload failed", z.reload())
            busy.close()
            s, _ = scrape(z.ports[1])  # (a repeated sample would fail the parse)
            self.assertEqual(les(s), [0.001, 0.05, 2.0, float("inf")])
            self.assertEqual(get(s, "zerg_http_request_duration_seconds_count", server="app"), 5)
            # the same change, reloaded: the new buckets, counted from 0
            with open(z.conf, "w") as f:
                f.write(good.replace("latency_buckets: " + BUCKETS, "latency_buckets: [0.001, 1]"))
            self.assertIn("reload done", z.reload())
            z.wait_workers(2)
            hello(3, z.ports[0])
            s, _ = scrape(z.ports[1])
            self.assertEqual(les(s), [0.001, 1.0, float("inf")])
            self.assertEqual(get(s, "zerg_http_request_duration_seconds_count", server="app"), 3)
            self.assertEqual(requests_of(s), 8)  # the counter went on


class Off(unittest.TestCase):
    def test_metrics_false_counts_nothing_of_the_block(self):
        conf = CONF.format(buckets=BUCKETS).replace("server_name: [app]",
                                                    "server_name: [app]\n      metrics: false")
        with Zerg(conf) as z:
            hello(5, z.ports[0])
            s, _ = scrape(z.ports[1])
            self.assertEqual(requests_of(s), 0)
            self.assertEqual(get(s, "zerg_http_request_duration_seconds_count", server="app"), 0)
            self.assertGreaterEqual(get(s, "zerg_connections_accepted_total"), 6)


class Buckets(unittest.TestCase):
    def test_bad_buckets_are_refused(self):
        for bad, msg in (("[0.5, 0.1]", "must ascend"), ("[0.0001]", "whole milliseconds"),
                         ("[]", "1 to 32 bounds"), ("x", "1 to 32 bounds")):
            z = Zerg(CONF.format(buckets=bad), wait=False)
            rc, out = zgtest.run_zerg(["-t", "-c", z.conf])
            self.assertNotEqual(rc, 0, bad)
            self.assertIn(msg, out, bad)


if __name__ == "__main__":
    zgtest.main()

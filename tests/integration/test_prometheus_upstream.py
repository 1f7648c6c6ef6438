"""test_prometheus_upstream - the counters of upstream servers (the http
module's proxy_pass groups, the proxy module's blocks and their servers)
as Prometheus reads them, with two workers: equal to the requests and
sessions made, and never going backwards across a reload and a worker
killed with SIGKILL (they live in the master's shared metrics, not in the
configuration's shared memory a reload replaces)."""
import os
import signal
import unittest

import zgtest
from zgtest import Zerg, free_port, wait_until

from httptest import raw
from test_prometheus import STATUS_BLOCK, get, scrape

CONF = """worker_processes: 2
load_modules: [http, proxy]
servers:
  - listen: ["127.0.0.1:{{port0}}"]
    module: http
    http:
      server_name: [front]
      upstreams:
        app:
          servers: ["127.0.0.1:{{port2}}"]
          health_check: {{{{ interval: 200ms, timeout: 150ms, fall: 1000,
                            send: "GET /hello HTTP/1.0\\r\\n\\r\\n", expect: " 200 " }}}}
        gone: {{{{ max_fails: 0, servers: ["127.0.0.1:{dead}"] }}}}
      locations:
        - {{{{ path: /app/, proxy_pass: "http://app" }}}}
        - {{{{ path: /gone/, proxy_pass: "http://gone" }}}}
""" + STATUS_BLOCK + """  - listen: ["127.0.0.1:{{port2}}"]
    module: http
    http:
      server_name: [app]
      locations:
        - {{{{ path: /, return: {{{{ status: 200, body: hello }}}} }}}}
  - listen: ["127.0.0.1:{{port3}}"]
    module: proxy
    proxy:
      name: pool
      upstream: {{{{ servers: ["127.0.0.1:{{port2}}"] }}}}
  - listen: ["127.0.0.1:{{port4}}"]
    module: proxy
    proxy:
      name: dead
      upstream: {{{{ max_fails: 0, servers: ["127.0.0.1:{dead}"] }}}}
"""

# every counter family of the upstream servers and the proxy blocks
FAMILIES = [f"zerg_{p}_server_{c}_total" for p in ("http_upstream", "proxy")
            for c in ("connects", "failures", "bytes_in", "bytes_out", "health_checks",
                      "health_checks_failed")] + [
    "zerg_proxy_clients_total", "zerg_proxy_rejected_total", "zerg_proxy_no_server_total"]


def request(port, path):
    data = raw(port, f"GET {path} HTTP/1.1\r\nHost: front\r\nConnection: close\r\n\r\n"
               .encode(), 5)
    return data.split(b" ", 2)[1] if data.startswith(b"HTTP/1.1 ") else data


class UpstreamCounters(unittest.TestCase):
    def setUp(self):
        self.dead = free_port()
        self.z = Zerg(CONF.format(dead=self.dead))
        self.addCleanup(self.z.stop)
        self.z.start()
        self.z.wait_workers(2)
        self.front, self.status, self.app = self.z.ports[0], self.z.ports[1], self.z.ports[2]
        self.made = dict(app=0, gone=0, pool=0, dead=0)

    def traffic(self, n):
        """n of each: through proxy_pass to a live and to a dead server, and
        sessions through a proxy block to a live and to a dead server. Each
        on a new connection, so both workers take some."""
        for _ in range(n):
            self.assertEqual(request(self.front, "/app/x"), b"200")
            self.assertEqual(request(self.front, "/gone/x"), b"502")
            self.assertEqual(request(self.z.ports[3], "/pool"), b"200")
            self.assertEqual(request(self.z.ports[4], "/dead"), b"")  # closed: no server
        for k in self.made:
            self.made[k] += n

    def expected(self):
        app, dead = f"127.0.0.1:{self.app}", f"127.0.0.1:{self.dead}"
        return {
            ("zerg_http_upstream_server_connects_total", "app", app): self.made["app"],
            ("zerg_http_upstream_server_failures_total", "app", app): 0,
            ("zerg_http_upstream_server_connects_total", "gone", dead): 0,
            ("zerg_http_upstream_server_failures_total", "gone", dead): self.made["gone"],
            ("zerg_proxy_server_connects_total", "pool", app): self.made["pool"],
            ("zerg_proxy_server_failures_total", "pool", app): 0,
            ("zerg_proxy_server_connects_total", "dead", dead): 0,
            ("zerg_proxy_server_failures_total", "dead", dead): self.made["dead"],
            ("zerg_proxy_clients_total", "pool", None): self.made["pool"],
            ("zerg_proxy_clients_total", "dead", None): self.made["dead"],
            ("zerg_proxy_no_server_total", "pool", None): 0,
            ("zerg_proxy_no_server_total", "dead", None): self.made["dead"],
            ("zerg_proxy_rejected_total", "pool", None): 0,
        }

    def counted(self, samples):
        out = {}
        for (name, group, server) in self.expected():
            label = "upstream" if name.startswith("zerg_http_") else "proxy"
            labels = {label: group}
            if server:
                labels["server"] = server
            out[(name, group, server)] = get(samples, name, **labels)
        return out

    def settled(self):
        """A scrape once every session made is counted, bytes included (they
        are counted when a session or a request ends)."""
        app = f"127.0.0.1:{self.app}"

        def done():
            s, types = scrape(self.status)
            ok = (self.counted(s) == self.expected()
                  and get(s, "zerg_proxy_server_bytes_in_total", proxy="pool", server=app)
                  >= 40 * self.made["pool"]
                  and get(s, "zerg_http_upstream_server_bytes_in_total", upstream="app",
                          server=app) >= 40 * self.made["app"])
            return (s, types) if ok else None
        return wait_until(done, 10, "the counters to equal the traffic made",
                          detail=lambda: (self.counted(scrape(self.status)[0]), self.expected()))

    def test_counters_go_on_across_reload_and_kill(self):
        self.traffic(6)
        first, types = self.settled()
        seen = {k[0] for k in first if k[0] in FAMILIES}
        self.assertEqual(seen, set(FAMILIES))
        for key in first:  # the counters typed as such, the gauges beside them
            if key[0] in FAMILIES:
                self.assertEqual(types[key], "counter", key)
            elif key[0] in ("zerg_proxy_clients", "zerg_proxy_server_active",
                            "zerg_http_upstream_server_state"):
                self.assertEqual(types[key], "gauge", key)
        app = dict(upstream="app", server=f"127.0.0.1:{self.app}")
        self.assertGreater(get(first, "zerg_http_upstream_server_bytes_out_total", **app), 0)
        wait_until(lambda: get(scrape(self.status)[0],
                               "zerg_http_upstream_server_health_checks_total", **app) > 0,
                   10, "a health check counted")
        steps = [first]
        self.assertIn("reload done", self.z.reload())
        self.z.wait_workers(2)
        steps.append(self.settled()[0])  # the same totals: nothing started anew
        self.traffic(4)
        steps.append(self.settled()[0])
        victim = self.z.workers()[0]
        os.kill(victim, signal.SIGKILL)
        self.z.wait_log(f"(pid {victim}) killed by signal 9")
        self.z.wait_workers(2)
        steps.append(self.settled()[0])  # what the killed worker counted stays
        self.traffic(3)
        steps.append(self.settled()[0])
        self.assertEqual(self.made["app"], 13)
        # no sample of these families ever went back
        for a, b in zip(steps, steps[1:]):
            for key, v in a.items():
                if key[0] in FAMILIES:
                    self.assertIn(key, b)
                    self.assertGreaterEqual(b[key], v, key)
        hc = [s[("zerg_http_upstream_server_health_checks_total",
                 tuple(sorted(app.items())))] for s in steps]
        self.assertEqual(hc, sorted(hc))


if __name__ == "__main__":
    zgtest.main()

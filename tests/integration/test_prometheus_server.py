"""test_prometheus_server - a real Prometheus server (Debian's prometheus)
scrapes zerg every second through a load, a reload and a worker killed with
SIGKILL; what its HTTP API answers must match the requests the load made:
increase() within a few percent, no counter reset, no negative or spiking
rate()."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

import zgtest
from zgtest import Zerg, free_port, wait_until

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"

CONF = """worker_processes: 2
load_modules: [http]
servers:
  - listen: ["127.0.0.1:{port0}"]
    module: http
    http:
      server_name: [app]
      locations:
        - { path: =/hello, return: { status: 200, body: hello } }
  - listen: ["127.0.0.1:{port1}"]
    module: http
    http:
      server_name: [status]
      locations:
        - { path: /metrics, status: true }
""".replace("{ ", "{{ ").replace(" }", " }}")

REQS = 'zerg_http_requests_total{server="app",class="2xx"}'


class Prometheus:
    def __init__(self, target):
        self.dir = tempfile.mkdtemp(prefix="zgprom-")
        self.port = free_port()
        with open(os.path.join(self.dir, "prometheus.yml"), "w") as f:
            f.write("global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
                    "scrape_configs:\n"
                    "  - job_name: zerg\n"
                    "    metrics_path: /metrics\n"
                    f"    static_configs: [{{targets: ['{target}']}}]\n")
        self.log = open(os.path.join(self.dir, "prometheus.log"), "w")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file", os.path.join(self.dir, "prometheus.yml"),
             "--storage.tsdb.path", os.path.join(self.dir, "data"),
             "--web.listen-address", f"127.0.0.1:{self.port}"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)

    def get(self, path, **params):
        url = f"http://127.0.0.1:{self.port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read()

    def query(self, q, **params):
        out = json.loads(self.get("/api/v1/query", query=q, **params))
        assert out["status"] == "success", out
        return out["data"]["result"]

    def ready(self):
        try:
            return self.get("/-/ready") is not None
        except OSError:
            return False

    def output(self):
        with open(os.path.join(self.dir, "prometheus.log")) as f:
            return f.read()[-3000:]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Load:
    """Clients sending GET /hello on keep-alive connections, a few hundred a
    second; a connection that breaks (its worker was killed) is opened again.
    ok counts the answers received."""

    def __init__(self, port, clients=3, pause=0.01):
        self.port, self.pause = port, pause
        self.ok = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def one(self, s):
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: app\r\n\r\n")
        buf = b""
        while not buf.endswith(b"hello"):
            d = s.recv(4096)
            if not d:
                raise ConnectionError("closed")
            buf += d
        assert buf.startswith(b"HTTP/1.1 200"), buf

    def run(self):
        s = None
        while not self.stopping.is_set():
            try:
                if s is None:
                    s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                self.one(s)
                with self.lock:
                    self.ok += 1
            except OSError:
                if s:
                    s.close()
                s = None
            time.sleep(self.pause)
        if s:
            s.close()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(10)


@unittest.skipUnless(os.access(PROMETHEUS, os.X_OK), "needs Debian's prometheus package")
class RealPrometheus(unittest.TestCase):
    def test_increase_matches_the_load_across_reload_and_kill(self):
        z = Zerg(CONF)
        self.addCleanup(z.stop)
        z.start()
        z.wait_workers(2)
        prom = Prometheus(f"127.0.0.1:{z.ports[1]}")
        self.addCleanup(prom.stop)
        wait_until(prom.ready, 20, "prometheus to be ready", step=0.2, detail=prom.output)
        # zerg's counter is scraped at 0 before the load: the window's start
        wait_until(lambda: prom.query(REQS), 15, "a first scrape", step=0.2,
                   detail=prom.output)
        start = time.time()
        load = Load(z.ports[0])
        try:
            time.sleep(4)
            self.assertIn("reload done", z.reload())
            z.wait_workers(2, timeout=15)
            time.sleep(3)
            victim = z.workers()[0]
            os.kill(victim, signal.SIGKILL)
            z.wait_log(f"(pid {victim}) killed by signal 9")
            z.wait_workers(2, timeout=15)
            time.sleep(3)
        finally:
            load.stop()
        made = load.ok
        self.assertGreater(made, 200, "the load was too light to judge")
        # every request made is in zerg's counter, and scraped
        def scraped():
            r = prom.query(REQS)
            return r and float(r[0]["value"][1]) >= made
        wait_until(scraped, 15, f"{made} requests scraped", step=0.2,
                   detail=lambda: prom.query(REQS))
        # at the last sample's time, over a window from before the first one
        # (where the counter was 0: increase() does not extrapolate there)
        t = float(prom.query(f"timestamp({REQS})")[0]["value"][1])
        window = f"{int(t - start) + 10}s"
        inc = float(prom.query(f"increase({REQS}[{window}])", time=t)[0]["value"][1])
        self.assertLess(abs(inc - made), 0.03 * made + 3, (inc, made))
        # no counter of zerg ever went backwards (a reset would look like one)
        names = [n for n in json.loads(prom.get("/api/v1/label/__name__/values"))["data"]
                 if n.startswith("zerg_") and n.endswith(("_total", "_count", "_bucket"))]
        self.assertIn("zerg_http_request_duration_seconds_count", names)
        for name in names:
            resets = prom.query(f"max(resets({name}[{window}]))", time=t)
            self.assertEqual(float(resets[0]["value"][1]), 0, name)
        # rate() over the run: never negative, never a spike
        out = json.loads(prom.get("/api/v1/query_range", query=f"rate({REQS}[3s])",
                                  start=start, end=t, step="1"))
        rates = [float(v) for _, v in out["data"]["result"][0]["values"]]
        mean = made / (t - start)
        self.assertTrue(rates and min(rates) >= 0, rates)
        self.assertLess(max(rates), 3 * mean, (rates, mean))
        self.assertEqual(float(prom.query("zerg_reloads_total{result=\"ok\"}")[0]["value"][1]),
                         1)
        self.assertEqual(float(prom.query("zerg_worker_restarts_total")[0]["value"][1]), 1)


if __name__ == "__main__":
    zgtest.main()

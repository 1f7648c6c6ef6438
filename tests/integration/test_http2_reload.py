#!/usr/bin/env python3
"""test_http2_reload - 20 graceful reloads (SIGHUP) while h2load keeps
streams in flight over h2c and over h2 on TLS: no request fails, errors or
times out in h2load's summaries (a draining worker waits for a pause in a
connection's requests, at most 2 s, then sends GOAWAY with the last stream
it took and answers every stream up to it), and every old worker exits."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zgtest  # noqa: E402
from httptest import h2_server, start_serving  # noqa: E402
from test_tls import make_certs  # noqa: E402
from zgtest import wait_until  # noqa: E402

CONF = """
load_modules: [http]
worker_processes: 2
servers:
""" + h2_server(0) + h2_server(1, tls=True)

RELOADS = 20
SUMMARY = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                     r"(\d+) failed, (\d+) errored, (\d+) timeout")


def setUpModule():
    global Z, CERTS
    CERTS = tempfile.mkdtemp(prefix="zgh2r-")
    make_certs(CERTS)
    Z = start_serving(CONF.replace("CERTS", CERTS), {"small.txt": b"small\n" * 100})


def tearDownModule():
    Z.stop()
    shutil.rmtree(CERTS, ignore_errors=True)


# requests per h2load run: a run lasts well under the drain's 2 s wait for a
# pause (the sanitizers' build serves about 10 times fewer a second)
PER_RUN = 200 if os.environ.get("ZERG_SANITIZERS") == "1" else 2000


def h2load(url):
    """One h2load run of PER_RUN requests: 4 connections of 8 streams each."""
    r = subprocess.run(["h2load", "-c", "4", "-m", "8", "-n", str(PER_RUN), url],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode(errors="replace")
    m = SUMMARY.search(out)
    if not m:
        raise AssertionError("no h2load summary:\n" + out)
    keys = ("total", "started", "done", "succeeded", "failed", "errored", "timeout")
    return dict(zip(keys, map(int, m.groups()))), out


class Runs(threading.Thread):
    """h2load runs one after the other until stopped (h2load 1.52 does not
    go on after a GOAWAY: it fails what it had left, so one long run
    would only show the first reload), each run on new connections."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.runs = []  # (start, end, summary, output)

    def run(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            got, out = h2load(self.url)
            self.runs.append((t0, time.monotonic(), got, out))


class Reload(unittest.TestCase):
    def test_reloads_under_h2load(self):
        t0 = time.monotonic()
        loads = [Runs(f"http://127.0.0.1:{Z.ports[0]}/hello"),
                 Runs(f"https://127.0.0.1:{Z.ports[1]}/small.txt")]
        for t in loads:
            t.start()
        old, reloads = set(), []
        try:
            time.sleep(0.5)
            for _ in range(RELOADS):
                old |= set(Z.workers())
                reloads.append(time.monotonic())
                self.assertIn("reload done", Z.reload())
                time.sleep(0.2)
        finally:
            for t in loads:
                t.stop.set()
            for t in loads:
                t.join(60)
        for t, proto in zip(loads, ("h2c", "h2")):
            for _, _, got, out in t.runs:
                self.assertIn("Application protocol: " + proto, out)
                self.assertEqual((got["failed"], got["errored"], got["timeout"]), (0, 0, 0),
                                 proto + ":\n" + out)
                self.assertEqual(got["succeeded"], PER_RUN, out)
            # the load went on through the reloads, not between them
            during = [r for r in reloads if any(a <= r <= b for a, b, _, _ in t.runs)]
            self.assertGreaterEqual(len(during), RELOADS * 3 // 4, (proto, len(t.runs)))
        # every old worker finished its streams and exited
        wait_until(lambda: not (old & set(Z.workers())), what="the old workers to exit",
                   timeout=15)
        self.assertLess(time.monotonic() - t0, 60)


if __name__ == "__main__":
    zgtest.main()

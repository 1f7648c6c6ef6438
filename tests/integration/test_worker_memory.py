#!/usr/bin/python3
"""test_worker_memory - a worker's memory goes back after a burst: pools
free the slabs a quiet period (worker_memory_release) did not need, and
the heap's free pages return to the system, so RSS falls back near its
baseline instead of staying at the burst's peak; and the gauge of bytes
the connections hold follows what a client that does not read leaves
queued."""
import os
import re
import socket
import time
import unittest

import zgtest
from zgtest import Zerg, rss_kb, wait_for, wait_until

CONF = """load_modules: [http]
worker_connections: 16384
worker_memory_release: 1s
servers:
  - listen: ["127.0.0.1:{port0}"]
    module: http
    http:
      keepalive_timeout: 60s
      locations:
        - path: /
          return: {{ status: 200, body: "hi" }}
"""
REQ = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
BURST = 8000


def answered(port, n):
    """n keep-alive connections, each answered once."""
    conns = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(REQ)
        conns.append(s)
        if len(conns) % 200 == 0 or i == n - 1:
            for c in conns[-200:]:
                if not c.recv(4096).startswith(b"HTTP/1.1 200"):
                    raise AssertionError("no answer")
    return conns


class MemoryRelease(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        zgtest.raise_nofile(BURST + 100)

    @unittest.skipIf(os.environ.get("ZERG_SANITIZERS") == "1",
                     "the sanitizers own malloc: ASan's quarantine keeps freed memory")
    def test_rss_back_near_baseline_after_a_burst(self):
        with Zerg(CONF) as z:
            w = z.workers()[0]
            for s in answered(z.ports[0], 16):  # the first use of each pool
                s.close()
            time.sleep(2.5)  # past two release periods
            base = rss_kb(w)
            conns = answered(z.ports[0], BURST)
            peak = rss_kb(w)
            # an idle connection costs well under 1 KB: 8000 of them grow
            # the worker by several MB, far more than the 10% allowed below
            self.assertGreater(peak - base, 4096,
                               f"the burst did not grow the worker ({base} -> {peak} kB)")
            for s in conns:
                s.close()
            # two periods: the one the burst ended in still needed its memory
            back = wait_for(lambda: rss_kb(w) <= base * 1.1, timeout=10, step=0.2)
            self.assertTrue(back, f"worker RSS {rss_kb(w)} kB after the burst closed, "
                                  f"{base} kB before it (peak {peak} kB)")


# a status page and a root with a big file
GAUGE_CONF = """load_modules: [http]
servers:
  - module: http
    listen: ["127.0.0.1:{port0}"]
    http:
      locations:
        - {{ path: /, root: "{tmp}/www" }}
        - {{ path: /metrics, status: true }}
"""


def bytes_held(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        got = []
        zgtest.recv_to_eof(s, got.append)
        text = b"".join(got).decode()
    finally:
        s.close()
    m = re.search(r'^zerg_connection_bytes_held (\d+)$', text, re.M)
    if not m:
        raise AssertionError("no zerg_connection_bytes_held in:\n" + text[-2000:])
    return int(m.group(1))


class BytesHeld(unittest.TestCase):
    def test_gauge_follows_a_client_that_does_not_read(self):
        z = Zerg(GAUGE_CONF)
        os.makedirs(os.path.join(z.tmp, "www"))
        with open(os.path.join(z.tmp, "www", "big"), "wb") as f:
            f.write(b"x" * (4 << 20))
        with z:
            self.assertEqual(bytes_held(z.ports[0]), 0)
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", z.ports[0]))
            s.sendall(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")  # and never read
            wait_until(lambda: bytes_held(z.ports[0]) >= 64 * 1024, 10,
                              "the stuck answer in the gauge")
            held = bytes_held(z.ports[0])
            self.assertLessEqual(held, 4 << 20)
            s.close()
            wait_until(lambda: bytes_held(z.ports[0]) == 0, 10,
                       f"the gauge back to 0 after the close (was {held})")


if __name__ == "__main__":
    zgtest.main()

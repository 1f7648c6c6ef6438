"""test_client_limit - max_connections_per_client through the real zerg
binary: counted over every worker, per client address (the PROXY protocol
header's when the listener reads one), freed when connections close, shown
in the metrics, kept by reloads, and refused where it makes no sense."""
import socket
import unittest

import zgtest
from zgtest import Zerg, recv_exact, tcp_peers, wait_until

from httptest import assert_refused, raw
from test_proxy_protocol_in import v1

ECHO = """worker_processes: 2
load_modules: [echo, http]
servers:
  - listen: ["127.0.0.1:{port0}"]
    module: http
    http:
      locations:
        - {{ path: /metrics, status: true }}
  - listen: ["127.0.0.1:{port1}"]
    module: echo
    max_connections_per_client: 3
  - listen: ["127.0.0.1:{port2}"]
    module: echo
    proxy_protocol: true
    max_connections_per_client: 1
"""
# The http block comes first: the harness's start-up probe connects to the
# first port of the config, and on a limited block that probe would count.


def connect(port, src="127.0.0.1"):
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(src, 0))
    s.settimeout(5)
    return s


def echoes(s, data=b"x"):
    """Whether the connection still echoes (a closed one reads EOF or a reset)."""
    try:
        s.sendall(data)
        return recv_exact(s, len(data), 3) == data
    except OSError:
        return False


def wait_open(port, n, src="127.0.0.1"):
    """Wait until zerg holds exactly n connections from src on port: those
    over the limit were accepted and closed, none waits in the queue."""
    wait_until(lambda: sum(1 for h, _ in tcp_peers(port) if h == src) == n, 10,
               f"{n} connections from {src} open on port {port}", detail=lambda: tcp_peers(port))


def metric(port, name):
    """name as the status page shows it: summed over the workers, whichever
    of them answers."""
    data = raw(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    for line in data.decode().splitlines():
        if line.startswith(name + " "):
            return int(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} in the scrape")


class ClientLimit(unittest.TestCase):
    def setUp(self):
        self.z = Zerg(ECHO)
        self.addCleanup(self.z.stop)
        self.z.start()
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()

    def open(self, port, src="127.0.0.1", n=1):
        out = [connect(port, src) for _ in range(n)]
        self.socks += out
        return out

    def test_limit_holds_over_both_workers_and_frees_on_close(self):
        port = self.z.ports[1]
        socks = self.open(port, n=8)  # SO_REUSEPORT spreads them over the workers
        wait_open(port, 3)
        alive = [s for s in socks if echoes(s)]
        self.assertEqual(len(alive), 3, self.z.output())
        # another address is another client
        self.assertEqual(sum(echoes(s) for s in self.open(port, "127.0.0.2", 3)), 3)
        # a closed connection frees its place
        gone = alive[0].getsockname()[1]
        alive[0].close()
        wait_until(lambda: gone not in [p for _, p in tcp_peers(port)], 10, "zerg to close it")
        self.assertTrue(echoes(self.open(port)[0]))
        self.assertFalse(echoes(self.open(port)[0]))
        self.assertIn("has max_connections_per_client (3) open: closing a new one",
                      self.z.output())
        self.assertEqual(metric(self.z.ports[0], "zerg_connections_limited_total"), 6)
        # every place is given back: the counts end at zero
        for s in self.socks:
            s.close()
        self.socks = []
        wait_open(port, 0)
        self.assertEqual(sum(echoes(s) for s in self.open(port, n=3)), 3)

    def test_the_proxy_protocol_header_names_the_client(self):
        port = self.z.ports[2]
        a = self.open(port)[0]
        a.sendall(v1("198.51.100.7"))
        self.assertTrue(echoes(a))
        b = self.open(port)[0]  # the same client behind the balancer: over its limit
        b.sendall(v1("198.51.100.7"))
        self.assertFalse(echoes(b))
        c = self.open(port)[0]  # another client on the same balancer connection source
        c.sendall(v1("198.51.100.8"))
        self.assertTrue(echoes(c))

    def test_a_reload_keeps_it(self):
        self.assertIn("reload done", self.z.reload())
        self.z.wait_workers(2)  # the old workers are gone: their table with them
        socks = self.open(self.z.ports[1], n=5)
        wait_open(self.z.ports[1], 3)
        self.assertEqual(sum(echoes(s) for s in socks), 3)


class ClientLimitConfig(unittest.TestCase):
    def test_bad_values_and_disagreeing_blocks(self):
        base = """load_modules: [http]
servers:
  - listen: ["127.0.0.1:{port0}"]
    module: http
    max_connections_per_client: %s
    http: {{ server_name: [a] }}
"""
        assert_refused(self, base % "-1", ":33: max_connections_per_client: -1 is out of range (0..1000000)")
        assert_refused(self, base % "2000000", "is out of range (0..1000000)")
        two = base % "5" + """  - listen: ["127.0.0.1:{port0}"]
    module: http
    http: {{ server_name: [b] }}
"""
        assert_refused(self, two, "shares it with another max_connections_per_client")


if __name__ == "__main__":
    zgtest.main()

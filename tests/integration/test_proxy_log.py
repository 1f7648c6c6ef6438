"""test_proxy_log - the proxy's access_log through the real zerg binary: one
line per session with the client, the server, timings, bytes and how it
ended (client, server, no_server, rejected, timeout), the PROXY protocol
header's client, reopening on SIGUSR1, and bad values."""
import os
import re
import signal
import socket
import time
import unittest

import zgtest
from zgtest import Zerg, recv_exact, wait_for

from httptest import assert_refused
from test_proxy_helpers import Backend, conf, dead_port, echo_handler
from test_proxy_protocol_in import v1

LINE = re.compile(r"^(?P<client>\S+) \[(?P<time>\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] "
                  r"(?P<name>\S+) (?P<server>\S+) (?P<connect>-?\d+)/(?P<total>\d+) "
                  r"(?P<rx>\d+) (?P<tx>\d+) (?P<end>\S+)$")


def log_lines(z, name="access.log", n=1, timeout=10):
    """The parsed lines of the log once it has n of them."""
    path = os.path.join(z.tmp, name)

    def read():
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError:
            return None
        return lines if len(lines) >= n else None
    lines = wait_for(read, timeout)
    assert lines, f"{path}: fewer than {n} lines:\n" + z.output()
    out = []
    for line in lines:
        m = LINE.match(line)
        assert m, f"malformed access log line: {line!r}"
        out.append(m.groupdict())
    return out


def lines_of(z, *ports, timeout=10):
    """The lines of the sessions from these client ports, in that order, once
    all are logged: a start-up probe retried under load may log a line of its
    own after the first, so the test's lines are told by their client."""
    def find():
        got = {l["client"]: l for l in log_lines(z)}
        want = [got.get(f"127.0.0.1:{p}") for p in ports]
        return want if all(want) else None
    lines = wait_for(find, timeout)
    assert lines, f"no access log line for every one of the ports {ports}:\n" + z.output()
    return lines


def session(port, data, hold=0.0, src="127.0.0.1"):
    """One client session through the proxy to an echo backend: data there
    and back, an optional pause, then a close. Returns the client's port."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(src, 0))
    try:
        s.sendall(data)
        assert recv_exact(s, len(data)) == data
        time.sleep(hold)  # the point: a session that lasts this long
        return s.getsockname()[1]
    finally:
        s.close()


LOG = "access_log: { path: '{tmp}/access.log', flush: 50ms }"


class ProxyLog(unittest.TestCase):
    def setUp(self):
        self.b = Backend(echo_handler)
        self.addCleanup(self.b.stop)

    def start(self, text):
        """A zerg whose start-up probe (the harness connects once to the
        first port) has been logged and closed: the lines after it are the
        test's. Returns it and a function giving the test's lines."""
        z = Zerg(text)
        self.addCleanup(z.stop)
        z.start()
        log_lines(z, n=1)
        return z, lambda n=1, name="access.log": log_lines(z, name, n + 1)[1:]

    def test_a_line_per_session(self):
        z, lines = self.start(conf([f'"{self.b.addr()}"'], extra="name: front\n" + LOG))
        port1 = session(z.ports[0], b"x" * 1000, hold=0.3)
        port2 = session(z.ports[0], b"hello")
        first, second = lines_of(z, port1, port2)
        self.assertEqual((first["name"], first["server"]), ("front", self.b.addr()))
        self.assertEqual((first["rx"], first["tx"], first["end"]), ("1000", "1000", "client"))
        self.assertGreaterEqual(int(first["connect"]), 0)
        # held open 300 ms; the clock is the coarse one (a few ms a tick)
        self.assertGreaterEqual(int(first["total"]), 280)
        self.assertLess(int(first["total"]), 5000)
        self.assertEqual((second["client"], second["rx"], second["tx"]),
                         (f"127.0.0.1:{port2}", "5", "5"))
        # the session's start, in the local time nginx logs use
        t = time.strptime(first["time"], "%d/%b/%Y:%H:%M:%S %z")
        self.assertLess(abs(time.mktime(t) - time.time()), 60)

    def test_how_sessions_end(self):
        dead = dead_port()
        text = conf([f'"{self.b.addr()}"'],
                    extra=f"{LOG}\nmax_connections: 1\nidle_timeout: 300ms")
        z, lines = self.start(text)
        # the server closes first: the backend ends its side after the echo
        b2 = Backend(lambda c, b: (c.sendall(c.recv(10)), c.close()))
        self.addCleanup(b2.stop)
        held = socket.create_connection(("127.0.0.1", z.ports[0]), timeout=5)
        held.sendall(b"ping")
        self.assertEqual(recv_exact(held, 4), b"ping")
        # over max_connections while held is open
        extra = socket.create_connection(("127.0.0.1", z.ports[0]), timeout=5)
        self.assertEqual(extra.recv(10), b"")
        extra.close()
        # held goes idle: the timeout ends it
        held.settimeout(5)
        self.assertEqual(held.recv(10), b"")
        held.close()
        got = lines(2)
        self.assertEqual([l["end"] for l in got], ["rejected", "timeout"], got)
        self.assertEqual((got[0]["server"], got[0]["connect"]), ("-", "-1"))

        # no server at all, and a server that closes first
        z2, lines2 = self.start(conf([f'"127.0.0.1:{dead}"'], extra=LOG))
        s = socket.create_connection(("127.0.0.1", z2.ports[0]), timeout=5)
        self.assertEqual(s.recv(10), b"")
        s.close()
        z3, lines3 = self.start(conf([f'"{b2.addr()}"'], extra=LOG))
        s = socket.create_connection(("127.0.0.1", z3.ports[0]), timeout=5)
        s.sendall(b"abc")
        self.assertEqual(recv_exact(s, 3), b"abc")
        self.assertEqual(s.recv(10), b"")
        s.close()
        line = lines2()[0]
        self.assertEqual((line["connect"], line["end"]), ("-1", "no_server"))
        # the server the session tried, or none when the probe's failed
        # connect had marked it down already
        self.assertIn(line["server"], ("-", f"127.0.0.1:{dead}"))
        self.assertEqual(lines3()[0]["end"], "server")

    def test_the_proxy_protocol_client_and_reopen(self):
        text = conf([f'"{self.b.addr()}"'], extra=LOG)
        # a start-up probe sends no header: it is closed before any session
        z = Zerg(text.replace("    module: proxy\n", "    module: proxy\n    proxy_protocol: true\n"))
        self.addCleanup(z.stop)
        z.start()
        s = socket.create_connection(("127.0.0.1", z.ports[0]), timeout=5)
        s.sendall(v1("198.51.100.7", sport=4242) + b"data")
        self.assertEqual(recv_exact(s, 4), b"data")
        s.close()
        self.assertEqual(log_lines(z)[0]["client"], "198.51.100.7:4242")
        # rotate: rename, SIGUSR1, and the next sessions go to a new file
        os.rename(os.path.join(z.tmp, "access.log"), os.path.join(z.tmp, "access.log.1"))
        z.send(signal.SIGUSR1)
        zgtest.wait_until(lambda: os.path.exists(os.path.join(z.tmp, "access.log")), 5,
                          "the worker to reopen access.log")
        s = socket.create_connection(("127.0.0.1", z.ports[0]), timeout=5)
        s.sendall(v1("198.51.100.8") + b"more")
        self.assertEqual(recv_exact(s, 4), b"more")
        s.close()
        self.assertEqual(log_lines(z)[0]["client"].split(":")[0], "198.51.100.8")
        self.assertEqual(len(log_lines(z, "access.log.1")), 1)

    def test_bad_values(self):
        assert_refused(self, conf([f'"{self.b.addr()}"'], extra="access_log: [a, b]"),
                       "access_log: expected a path, or { path, buffer, flush }")
        assert_refused(self, conf([f'"{self.b.addr()}"'],
                                  extra="access_log: { path: x.log, buffer: 1k }"),
                       "out of range")


if __name__ == "__main__":
    zgtest.main()

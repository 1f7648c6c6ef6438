#!/usr/bin/env python3
"""test_tls_resume - TLS session resumption with the master's ticket keys,
through the real zerg: openssl s_client -sess_out, then -sess_in shows
"Reused" on every worker, after a reload, after a binary upgrade and across
a key rotation; session_tickets: false resumes nothing; the handshake
metrics count full and resumed handshakes and the protocol versions."""
import os
import re
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_tls  # noqa: E402  (the test certificates)
import zgtest  # noqa: E402
from test_upgrade import read_pid  # noqa: E402
from zgtest import Zerg, run_zerg, wait_for  # noqa: E402

REQUEST = b"GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def setUpModule():
    test_tls.setUpModule()


def tearDownModule():
    test_tls.tearDownModule()


def conf(tls_extra="", workers=2):
    return (f"worker_processes: {workers}\n" + """
load_modules: [http]
servers:
  - listen: ["127.0.0.1:{port0}"]
    module: http
""" + test_tls.tls_block(tls_extra).replace("{", "{{").replace("}", "}}") + """    http:
      locations:
        - path: =/hello
          return: {{ status: 200, body: "Hello, TLS!" }}
  - listen: ["127.0.0.1:{port1}"]
    module: http
    http:
      locations:
        - {{ path: /metrics, status: true }}
""")


def s_client(port, *args):
    """One request over a new connection (the server closes it, after its
    tickets); the s_client output."""
    r = test_tls.openssl("s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
                         "-CAfile", test_tls.cert("ca.pem"), "-ign_eof", *args, stdin=REQUEST)
    out = r.stdout.decode(errors="replace")
    if r.returncode != 0 or "Hello, TLS!" not in out:
        raise AssertionError(f"s_client {args}: rc {r.returncode}:\n{out[-3000:]}")
    return out


def reused(out):
    m = re.search(r"^(New|Reused), (TLSv[0-9.]+)", out, re.M)
    if not m:
        raise AssertionError("no New/Reused line:\n" + out[-3000:])
    return m.group(1) == "Reused"


def metrics(port, per_worker=False):
    """{(name, labels text): value} of the status page."""
    query = "?per_worker=1" if per_worker else ""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET /metrics{query} HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n"
                  .encode())
        parts = []
        zgtest.recv_to_eof(s, parts.append)
    data = b"".join(parts)
    out = {}
    for line in data.decode().split("\r\n\r\n", 1)[1].splitlines():
        m = re.match(r"^(zerg_tls_\w+)(?:\{(.*)\})? (\d+)$", line)
        if m:
            out[(m.group(1), m.group(2) or "")] = int(m.group(3))
    return out


def resumed_per_worker(port):
    """{worker: resumed handshakes} of the live workers."""
    out = {}
    for (name, labels), v in metrics(port, per_worker=True).items():
        m = re.match(r'type="resumed",worker="(\d+)"', labels)
        if name == "zerg_tls_handshakes_total" and m:
            out[m.group(1)] = v
    return out


class Resume(unittest.TestCase):
    def session(self, z, version):
        path = os.path.join(z.tmp, f"session{version}.pem")
        out = s_client(z.ports[0], "-sess_out", path, version)
        self.assertFalse(reused(out), out)
        self.assertTrue(os.path.getsize(path) > 0)
        return path

    def test_every_worker_resumes_and_metrics_count(self):
        with Zerg(conf()) as z:
            for version in ("-tls1_3", "-tls1_2"):
                path = self.session(z, version)
                base = resumed_per_worker(z.ports[1])
                for _ in range(40):  # until both workers have resumed one of this version
                    out = s_client(z.ports[0], "-sess_in", path, version)
                    self.assertTrue(reused(out), out)
                    now = resumed_per_worker(z.ports[1])
                    if len(now) == 2 and all(now[w] > base.get(w, 0) for w in now):
                        break
                self.assertTrue(len(now) == 2 and all(now[w] > base.get(w, 0) for w in now),
                                (base, now))
            m = metrics(z.ports[1])
            self.assertEqual(m[("zerg_tls_handshakes_total", 'type="full"')], 2, m)
            resumed = m[("zerg_tls_handshakes_total", 'type="resumed"')]
            self.assertGreaterEqual(resumed, 4, m)  # two per version at least
            self.assertEqual(m[("zerg_tls_connections_total", 'version="TLSv1.3"')] +
                             m[("zerg_tls_connections_total", 'version="TLSv1.2"')], 2 + resumed)
            self.assertEqual(m[("zerg_tls_handshakes_in_progress", "")], 0, m)

    def test_resumes_after_a_reload(self):
        with Zerg(conf()) as z:
            paths = [self.session(z, v) for v in ("-tls1_3", "-tls1_2")]
            self.assertIn("reload done", z.reload())
            for path, v in zip(paths, ("-tls1_3", "-tls1_2")):
                out = s_client(z.ports[0], "-sess_in", path, v)
                self.assertTrue(reused(out), out)

    def test_a_resumed_tls13_connection_gets_new_tickets(self):
        """A TLS 1.3 client uses a ticket once (OpenSSL's client marks the
        session of a resumed connection not resumable), so a resumed
        connection must bring new tickets, else every other connection of
        such a client is a full handshake: a chain of five resumptions, each
        from the session the one before saved."""
        with Zerg(conf(workers=1)) as z:
            path = self.session(z, "-tls1_3")
            for i in range(5):
                nxt = os.path.join(z.tmp, f"chain{i}.pem")
                out = s_client(z.ports[0], "-sess_in", path, "-sess_out", nxt, "-tls1_3")
                self.assertTrue(reused(out), (i, out))
                self.assertTrue(os.path.exists(nxt) and os.path.getsize(nxt) > 0,
                                f"resumption {i}: no new ticket")
                path = nxt

    def test_session_tickets_false_resumes_nothing(self):
        with Zerg(conf("      session_tickets: false\n")) as z:
            for v in ("-tls1_3", "-tls1_2"):
                path = os.path.join(z.tmp, "s.pem")
                out = s_client(z.ports[0], "-sess_out", path, v)
                self.assertNotIn("TLS session ticket:", out)
                if os.path.exists(path) and os.path.getsize(path):
                    out = s_client(z.ports[0], "-sess_in", path, v)
                    self.assertFalse(reused(out), out)
            m = metrics(z.ports[1])
            self.assertEqual(m[("zerg_tls_handshakes_total", 'type="resumed"')], 0, m)

    def test_previous_key_still_decrypts_then_not(self):
        """session_timeout 2s: a ticket sealed late in a period opens in the
        next one (by the previous key); none opens two periods on."""
        with Zerg(conf("      session_timeout: 2s\n", workers=1)) as z:
            while time.time() % 2 < 1.2 or time.time() % 2 > 1.6:
                time.sleep(0.05)
            path = self.session(z, "-tls1_2")
            while time.time() % 2 > 1.0:  # into the next period
                time.sleep(0.05)
            out = s_client(z.ports[0], "-sess_in", path, "-tls1_2")
            self.assertTrue(reused(out), out)
            time.sleep(4.5)
            out = s_client(z.ports[0], "-sess_in", path, "-tls1_2")
            self.assertFalse(reused(out), out)


class Upgrade(unittest.TestCase):
    def test_resumes_after_a_binary_upgrade(self):
        z = Zerg(conf())
        z.start()
        new = 0
        try:
            paths = []
            for v in ("-tls1_3", "-tls1_2"):
                paths.append(os.path.join(z.tmp, v + ".pem"))
                out = s_client(z.ports[0], "-sess_out", paths[-1], v)
                self.assertFalse(reused(out), out)
            pid_file = os.path.join(z.tmp, "zerg.pid")
            rc, out = run_zerg(["-c", z.conf, "-s", "upgrade"])
            self.assertEqual(rc, 0, out)
            def new_ready():
                pid = read_pid(pid_file)
                return pid != z.proc.pid and f"{pid} master: 2 workers ready" in z.output() and pid
            new = wait_for(new_ready, 10)
            self.assertTrue(new, z.output())
            self.assertNotEqual(new, z.proc.pid)
            z.send(signal.SIGQUIT)  # the old master leaves: the new one serves alone
            self.assertEqual(z.proc.wait(15), 0, z.output())
            for path, v in zip(paths, ("-tls1_3", "-tls1_2")):
                out = s_client(z.ports[0], "-sess_in", path, v)
                self.assertTrue(reused(out), out)
            m = metrics(z.ports[1])
            self.assertEqual(m[("zerg_tls_handshakes_total", 'type="resumed"')], 2, m)
        finally:
            if new:
                os.kill(new, signal.SIGQUIT)
                wait_for(lambda: not os.path.exists(f"/proc/{new}"), 15)
            z.stop()


if __name__ == "__main__":
    zgtest.main()

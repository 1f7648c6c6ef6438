#!/usr/bin/env python3
"""test_tls_reload - 20 reloads (SIGHUP) under TLS load with zero client
errors: keep-alive clients (small answers and 256 KiB ones, so answers are
in flight when a worker starts draining) and clients that make a new
connection, a full handshake, per request, all in threads for a bounded
time, while zerg's old workers drain and new ones take over. An error is
anything but a whole answer: a refused connection or handshake, a reset, an
end of stream (or one without close_notify) before the answer's last byte.
A keep-alive client reconnects only after an answer that said
"Connection: close"."""
import hashlib
import os
import shutil
import socket
import ssl
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zgtest  # noqa: E402
from test_tls import make_certs  # noqa: E402
from zgtest import Zerg  # noqa: E402

BIG = 256 * 1024
KEEPALIVE_CLIENTS = 4
NEW_CONN_CLIENTS = 3


def conf(certs):
    return f"""worker_processes: 2
load_modules: [http]
servers:
  - listen: ["127.0.0.1:{{port0}}"]
    module: http
    tls:
      certificates:
        - {{{{ certificate: {certs}/ecdsa.pem, key: {certs}/ecdsa.key }}}}
        - {{{{ certificate: {certs}/rsa.pem, key: {certs}/rsa.key }}}}
    http:
      keepalive_timeout: 30s
      locations:
        - path: =/hello
          return: {{{{ status: 200, body: "Hello, TLS!" }}}}
        - {{{{ path: /, root: {certs}/www }}}}
"""


class Client:
    """One client thread's connection and its request loop."""

    def __init__(self, port, ctx, keepalive, digest, stop):
        self.port, self.ctx, self.keepalive = port, ctx, keepalive
        self.digest, self.stop = digest, stop
        self.sock, self.buf = None, b""
        self.answers, self.connects, self.errors = 0, 0, []

    def connect(self):
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.sock = self.ctx.wrap_socket(raw, server_hostname="localhost",
                                         suppress_ragged_eofs=False)
        self.buf = b""
        self.connects += 1

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("end of stream inside an answer")
        self.buf += data

    def answer(self):
        """Reads one whole answer: (status line, headers, body)."""
        while b"\r\n\r\n" not in self.buf:
            self.fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in
                   (line.split(":", 1) for line in lines[1:])}
        length = int(headers.get("content-length", "-1"))
        if length < 0:
            raise AssertionError(f"no Content-Length: {lines[0]}")
        while len(self.buf) < length:
            self.fill()
        body, self.buf = self.buf[:length], self.buf[length:]
        return lines[0], headers, body

    def check(self, path, status, headers, body):
        if not status.startswith("HTTP/1.1 200"):
            raise AssertionError(f"{path}: {status}")
        want = b"Hello, TLS!" if path == "/hello" else None
        if (want and body != want) or (not want and hashlib.sha256(body).hexdigest() != self.digest):
            raise AssertionError(f"{path}: a wrong body of {len(body)} bytes")

    def one(self, path):
        if not self.sock:
            self.connect()
        close = "" if self.keepalive else "Connection: close\r\n"
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n{close}\r\n".encode())
        status, headers, body = self.answer()
        self.check(path, status, headers, body)
        self.answers += 1
        if headers.get("connection", "").lower() == "close":
            if self.sock.recv(1):  # the server's close_notify, then its FIN
                raise AssertionError("bytes after an answer with Connection: close")
            self.close()
        elif not self.keepalive:
            raise AssertionError("no Connection: close in the answer")

    def run(self):
        n = 0
        while not self.stop.is_set():
            path = "/big.bin" if n % 4 == 3 else "/hello"
            n += 1
            try:
                self.one(path)
            except (OSError, EOFError, ssl.SSLError, AssertionError, ValueError) as e:
                self.errors.append(f"{path}: {type(e).__name__}: {e}")
                self.close()
                time.sleep(0.01)
        self.close()


class TlsReload(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="zgtlsreload-")
        make_certs(cls.certs)
        os.makedirs(os.path.join(cls.certs, "www"))
        data = os.urandom(BIG)
        with open(os.path.join(cls.certs, "www", "big.bin"), "wb") as f:
            f.write(data)
        cls.digest = hashlib.sha256(data).hexdigest()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certs, ignore_errors=True)

    def client_context(self):
        ctx = ssl.create_default_context(cafile=os.path.join(self.certs, "ca.pem"))
        ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF  # no close_notify: an error
        return ctx

    def test_twenty_reloads_under_tls_load(self):
        stop = threading.Event()
        with Zerg(conf(self.certs)) as z:
            ctx = self.client_context()
            clients = ([Client(z.ports[0], ctx, True, self.digest, stop)
                        for _ in range(KEEPALIVE_CLIENTS)] +
                       [Client(z.ports[0], ctx, False, self.digest, stop)
                        for _ in range(NEW_CONN_CLIENTS)])
            threads = [threading.Thread(target=c.run, daemon=True) for c in clients]
            for t in threads:
                t.start()
            try:
                time.sleep(0.5)  # every client has a connection going
                for _ in range(20):
                    self.assertIn("reload done", z.reload())
                    time.sleep(0.15)  # the point: reloads spread over the load
                time.sleep(0.5)
            finally:
                stop.set()
                for t in threads:
                    t.join(30)
            self.assertFalse(any(t.is_alive() for t in threads), "a client hangs")
            self.assertEqual(z.output().count("reload done"), 20, z.output())
        errors = [e for c in clients for e in c.errors]
        self.assertEqual(errors, [], f"{len(errors)} client errors")
        for c in clients:
            self.assertGreater(c.answers, 20, "a client made no progress")
        # keep-alive clients moved to the new workers over the reloads
        self.assertTrue(any(c.connects > 1 for c in clients[:KEEPALIVE_CLIENTS]))


if __name__ == "__main__":
    zgtest.main()

#!/usr/bin/python3
"""test_linger - lingering close through the real binary: when the http
module closes a connection while the client is still sending (the
keepalive_requests limit cuts a pipelined stream), the core half-closes
after the answers and reads and drops input until the client's FIN, so
the client reads every answer and a clean end of stream, not a reset;
and lingering ends after lingering_timeout without input or after
lingering_time in all."""
import os
import socket
import time
import unittest

import zgtest
from zgtest import Zerg

from httptest import read_response

BODY = 256 * 1024  # answers still in the server's socket when it closes


def conf(extra=""):
    return """load_modules: [http]
servers:
  - listen: ["127.0.0.1:{port0}"]
    module: http
""" + extra + """    http:
      keepalive_requests: 3
      locations:
        - path: /
          root: {tmp}/www
"""


def pipelined_client(port, n=10):
    """Send n pipelined requests, read nothing for a while, send n more
    (the server has stopped reading by then: they stay unread in its
    socket), then read to the end. Returns (answers read, how it ended)."""
    req = b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n"
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    try:
        s.sendall(req * n)
        time.sleep(0.2)
        s.sendall(req * n)
        answers, buf = 0, b""
        try:
            while True:
                st, h, body, buf = read_response(s, buf)
                if st != 200 or len(body) != BODY:
                    return answers, f"answer {answers + 1}: status {st}, {len(body)} bytes"
                answers += 1
                if h.get("connection") == "close":
                    break
            rest = s.recv(65536)
            return answers, "eof" if rest == b"" else f"more after the last answer: {rest[:60]!r}"
        except ConnectionResetError:
            return answers, "reset"
        except EOFError as e:
            return answers, f"eof too early: {e}"
    finally:
        s.close()


class Linger(unittest.TestCase):
    def start(self, extra=""):
        z = Zerg(conf(extra), wait=False)
        os.makedirs(os.path.join(z.tmp, "www"))
        with open(os.path.join(z.tmp, "www", "big"), "wb") as f:
            f.write(b"x" * BODY)
        z.wait = True  # started by the with statement
        return z

    def test_every_answer_then_a_clean_end(self):
        with self.start() as z:
            for i in range(20):
                self.assertEqual(pipelined_client(z.ports[0]), (3, "eof"), f"round {i}")

    def test_off_resets(self):
        """Without lingering the client loses answers to a reset: what the
        test above shows is the lingering's doing."""
        with self.start("    lingering_close: off\n") as z:
            results = [pipelined_client(z.ports[0]) for _ in range(5)]
            self.assertTrue(any(r != (3, "eof") for r in results), results)

    def answered_then_probe(self, z):
        """Three answers and the FIN; returns the socket, still open."""
        s = socket.create_connection(("127.0.0.1", z.ports[0]), timeout=5)
        s.sendall(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n" * 3)
        buf = b""
        for _ in range(3):
            st, h, body, buf = read_response(s, buf)
            self.assertEqual((st, len(body)), (200, BODY))
        self.assertEqual(s.recv(10), b"", "a FIN after the last answer")
        return s

    def lingers(self, s):
        """Input is still read and dropped: no reset comes back. (After the
        FIN a read sees the end of stream even once reset; a second write
        fails instead.)"""
        try:
            s.sendall(b"x")
            time.sleep(0.02)  # a reset would be back by now
            s.sendall(b"x")
            return True
        except (ConnectionResetError, BrokenPipeError):
            return False

    def test_lingering_timeout_ends_it(self):
        """A client that keeps the connection open after the answers: the
        server reads and drops what it sends, and closes lingering_timeout
        after the last of it."""
        with self.start("    lingering_close: always\n    lingering_timeout: 300ms\n") as z:
            s = self.answered_then_probe(z)
            time.sleep(0.1)
            self.assertTrue(self.lingers(s))
            time.sleep(0.6)
            self.assertFalse(self.lingers(s), "still lingering after lingering_timeout")
            s.close()

    def test_lingering_time_bounds_it(self):
        """Input every 100 ms keeps each read within lingering_timeout, but
        lingering_time ends it all the same."""
        with self.start("    lingering_close: always\n    lingering_time: 500ms\n") as z:
            s = self.answered_then_probe(z)
            t0 = time.monotonic()
            while self.lingers(s):
                self.assertLess(time.monotonic() - t0, 3, "lingering past lingering_time")
                time.sleep(0.1)
            self.assertGreater(time.monotonic() - t0, 0.3)
            s.close()

if __name__ == "__main__":
    zgtest.main()

"""api->connect_with: an outbound connection served by a hook set of its own,
not by its module's hooks (tests/modules/connect_hooks.c relays each client
to an upstream and marks what the upstream hooks do)."""
import os
import socket
import threading
import unittest

import zgtest
from zgtest import Zerg, recv_exact

MODS = os.path.join(os.environ.get("ZERG_BUILDDIR", "."), "tests/modules/.libs")


def conf(upstream):
    return f"""modules_path: {MODS}
load_modules: [connect_hooks]
servers:
  - listen: ["127.0.0.1:{{port0}}"]
    module: connect_hooks
    connect_hooks: {{{{ upstream: "{upstream}" }}}}
"""


def recv_line(s):
    line = b""
    while not line.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            break
        line += b
    return line


class EchoUpstream:
    """Echoes each connection's bytes until the peer closes."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.echo, args=(c,), daemon=True).start()

    @staticmethod
    def echo(c):
        with c:
            while data := c.recv(4096):
                c.sendall(data)

    def close(self):
        self.sock.close()


class ConnectWith(unittest.TestCase):
    def test_the_upstream_side_has_its_own_hooks(self):
        up = EchoUpstream()
        try:
            with Zerg(conf(f"127.0.0.1:{up.port}")) as z:
                with socket.create_connection(("127.0.0.1", z.ports[0]), timeout=5) as s:
                    # on_connect of the hook set (the module has none)
                    self.assertEqual(recv_line(s), b"connected 0\n")
                    s.sendall(b"ping")
                    # on_data of the hook set, not the module's bare relay
                    self.assertEqual(recv_exact(s, 7), b"up:ping")
        finally:
            up.close()

    def test_a_refused_connect_reaches_the_hooks(self):
        port = zgtest.free_port()  # nothing listens there
        with Zerg(conf(f"127.0.0.1:{port}")) as z:
            with socket.create_connection(("127.0.0.1", z.ports[0]), timeout=5) as s:
                self.assertEqual(recv_line(s), b"connected -111\n")
                # the hook set's on_close closes the client
                self.assertEqual(s.recv(100), b"")
            zgtest.check_sanitizers(z.output())


if __name__ == "__main__":
    zgtest.main()

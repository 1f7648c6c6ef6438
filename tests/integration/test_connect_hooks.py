"""api->connect_with: an outbound connection served by a hook set of its own,
not by its module's hooks (tests/modules/connect_hooks.c relays each client
to an upstream and marks what the upstream hooks do)."""
import os
import socket
import unittest

import zgtest
from zgtest import Zerg, recv_exact

from test_proxy_helpers import Backend, echo_handler, recv_line

MODS = os.path.join(os.environ.get("ZERG_BUILDDIR", "."), "tests/modules/.libs")


def conf(upstream):
    return f"""modules_path: {MODS}
load_modules: [connect_hooks]
servers:
  - listen: ["127.0.0.1:{{port0}}"]
    module: connect_hooks
    connect_hooks: {{{{ upstream: "{upstream}" }}}}
"""


class ConnectWith(unittest.TestCase):
    def test_the_upstream_side_has_its_own_hooks(self):
        up = Backend(echo_handler)
        try:
            with Zerg(conf(up.addr())) as z:
                with socket.create_connection(("127.0.0.1", z.ports[0]), timeout=5) as s:
                    # on_connect of the hook set (the module has none)
                    self.assertEqual(recv_line(s), "connected 0")
                    s.sendall(b"ping")
                    # on_data of the hook set, not the module's bare relay
                    self.assertEqual(recv_exact(s, 7), b"up:ping")
        finally:
            up.stop()

    def test_a_refused_connect_reaches_the_hooks(self):
        port = zgtest.free_port()  # nothing listens there
        with Zerg(conf(f"127.0.0.1:{port}")) as z:
            with socket.create_connection(("127.0.0.1", z.ports[0]), timeout=5) as s:
                self.assertEqual(recv_line(s), "connected -111")
                # the hook set's on_close closes the client
                self.assertEqual(s.recv(100), b"")
            zgtest.check_sanitizers(z.output())


if __name__ == "__main__":
    zgtest.main()

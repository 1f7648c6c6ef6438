"""uring.fixed_outbound: outbound sockets (the proxy's upstream connections)
go into the ring's fixed-file table, as accepted ones do, so a session holds
no plain descriptor once its upstream is connected; with it off the
upstream is a plain descriptor. Either way nothing is left after a close,
nor after a refused connect, and the table's slots come back."""
import socket
import unittest

import zgtest
from zgtest import Zerg, recv_exact, wait_for

from test_echo import idle_fds
from test_proxy_helpers import Backend, conf, dead_port, echo_handler, settle


def uring(fixed_outbound, fixed_files="true"):
    return f"uring: {{{{ fixed_files: {fixed_files}, fixed_outbound: {fixed_outbound} }}}}\n"


def worker(z):
    assert wait_for(lambda: z.workers(), 5)
    return z.workers()[0]


class FixedOutbound(unittest.TestCase):
    def session_fds(self, fixed_outbound, fixed_files="true"):
        """The worker's extra descriptors while one session is open."""
        b = Backend(echo_handler)
        try:
            with Zerg(uring(fixed_outbound, fixed_files) + conf([f'"{b.addr()}"'])) as z:
                settle(b)
                w = worker(z)
                base = idle_fds(z, w)
                with socket.create_connection(("127.0.0.1", z.ports[0]), timeout=5) as s:
                    s.sendall(b"ping")
                    # the echo came back: the upstream is connected
                    self.assertEqual(recv_exact(s, 4), b"ping")
                    during = zgtest.fd_count(w) - base
                self.assertTrue(wait_for(lambda: zgtest.fd_count(w) == base, 5),
                                f"{zgtest.fd_count(w)} descriptors after the close, {base} before")
                return during
        finally:
            b.stop()

    def test_the_upstream_socket_is_a_fixed_file(self):
        self.assertEqual(self.session_fds("true"), 0)

    def test_off_it_is_a_plain_descriptor(self):
        self.assertEqual(self.session_fds("false"), 1)

    def test_without_fixed_files_both_are_plain(self):
        self.assertEqual(self.session_fds("true", fixed_files="false"), 2)

    def test_slots_are_reused(self):
        """A table of 16 slots serves 80 sessions one after the other: each
        session's two slots come back at its close."""
        b = Backend(echo_handler)
        try:
            text = "worker_connections: 16\n" + uring("true") + conf([f'"{b.addr()}"'])
            with Zerg(text) as z:
                for i in range(80):
                    with socket.create_connection(("127.0.0.1", z.ports[0]), timeout=5) as s:
                        s.sendall(b"ping")
                        self.assertEqual(recv_exact(s, 4, timeout=5), b"ping", f"session {i}")
                        # one after the other: zerg ends this session (its FIN
                        # comes with the upstream's) before the next begins
                        s.shutdown(socket.SHUT_WR)
                        self.assertEqual(s.recv(1), b"", f"session {i}")
        finally:
            b.stop()

    def test_a_refused_connect_leaves_nothing(self):
        with Zerg(uring("true") + conf([f'"127.0.0.1:{dead_port()}"'])) as z:
            w = worker(z)
            base = idle_fds(z, w)
            for _ in range(20):
                with socket.create_connection(("127.0.0.1", z.ports[0]), timeout=5) as s:
                    s.settimeout(5)
                    try:
                        s.sendall(b"x")
                        s.recv(10)  # closed by zerg once no upstream answers
                    except OSError:
                        pass
            self.assertTrue(wait_for(lambda: zgtest.fd_count(w) == base, 5),
                            f"{zgtest.fd_count(w)} descriptors, {base} before")


if __name__ == "__main__":
    zgtest.main()

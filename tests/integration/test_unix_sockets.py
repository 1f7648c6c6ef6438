"""test_unix_sockets - unix domain sockets through the real zerg binary: as
listen addresses (echo, http, shared by the workers, abstract names, paths
from the -p prefix), as proxy upstreams, their files across reloads and
stops, stale files, and bad addresses."""
import os
import socket
import threading
import unittest

import zgtest
from zgtest import Zerg, recv_exact, run_zerg, wait_for

from httptest import assert_refused, read_response


def unix_connect(path, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path if not path.startswith("@") else "\0" + path[1:])
    return s


def echo_through(test, s, size):
    """size random bytes sent (from a thread: the echo comes back meanwhile)
    and received back whole."""
    data = os.urandom(size)
    t = threading.Thread(target=s.sendall, args=(data,))
    t.start()
    got = recv_exact(s, size, 20)
    t.join()
    test.assertEqual(got, data)


def echo_conf(*listen, head="", tail=""):
    """One echo server on the listen addresses (Zerg fills in {tmp}, {portN});
    head and tail: more lines before the config and at the server's end."""
    addrs = ", ".join(f'"{a}"' for a in listen)
    return f"{head}load_modules: [echo]\nservers:\n  - listen: [{addrs}]\n    module: echo\n{tail}"



SITE = """worker_processes: 2
load_modules: [echo, http, proxy]
servers:
  - listen: ["127.0.0.1:{port0}"]
    module: proxy
    proxy:
      upstream: {{ servers: ["unix:{tmp}/echo.sock"] }}
  - listen: ["unix:{tmp}/echo.sock", "unix:@zerg-test-{port0}"]
    module: echo
  - listen: ["unix:{tmp}/http.sock", "127.0.0.1:{port1}"]
    module: http
    http:
      access_log: {{ path: "{tmp}/access.log", format: "$remote_addr $request_uri $status", flush: 10ms }}
      locations:
        - {{ path: /local, return: {{ status: 200, body: "local\\n" }}, allow: "unix:" }}
        - {{ path: /, return: {{ status: 200, body: "hi\\n" }} }}
"""


class UnixSockets(unittest.TestCase):
    def test_listen_and_upstream(self):
        with Zerg(SITE) as z:
            echo = os.path.join(z.tmp, "echo.sock")
            self.assertTrue(wait_for(lambda: os.path.exists(echo)))
            # many connections: both workers accept on the one shared socket
            socks = [unix_connect(echo) for _ in range(40)]
            for s in socks:
                echo_through(self, s, 1000)
            s = socks[0]
            echo_through(self, s, 4 << 20)
            for s in socks:
                s.close()
            with unix_connect(f"@zerg-test-{z.ports[0]}") as s:
                echo_through(self, s, 5000)
            # a TCP client through the proxy to the unix upstream
            with socket.create_connection(("127.0.0.1", z.ports[0]), timeout=5) as s:
                echo_through(self, s, 1 << 20)
            # http over the unix socket: "unix:" in allow, and in the access log
            for path, via_unix, want in (("/local", True, 200), ("/local", False, 403),
                                         ("/other", True, 200)):
                s = (unix_connect(os.path.join(z.tmp, "http.sock")) if via_unix
                     else socket.create_connection(("127.0.0.1", z.ports[1]), timeout=5))
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                self.assertEqual(read_response(s)[0], want, (path, via_unix))
                s.close()
            log = os.path.join(z.tmp, "access.log")
            want = ["unix: /local 200", "127.0.0.1 /local 403", "unix: /other 200"]

            def logged():
                if not os.path.exists(log):
                    return False
                with open(log) as f:
                    text = f.read()
                return all(w in text for w in want)

            self.assertTrue(wait_for(logged))
            workers = zgtest.proc_children(z.proc.pid)
            self.assertEqual(len(workers), 2)
        # a stop removes the socket files zerg made
        self.assertFalse(os.path.exists(echo))
        self.assertFalse(os.path.exists(os.path.join(z.tmp, "http.sock")))

    def test_reload_keeps_or_moves_the_socket(self):
        with Zerg(echo_conf("unix:{tmp}/a.sock", head="worker_processes: 2\n")) as z:
            a, b = os.path.join(z.tmp, "a.sock"), os.path.join(z.tmp, "b.sock")
            self.assertTrue(wait_for(lambda: os.path.exists(a)))
            held = unix_connect(a)
            echo_through(self, held, 100)
            ino = os.stat(a).st_ino
            z.proc.send_signal(1)  # SIGHUP, same config: the socket stays
            self.assertTrue(wait_for(lambda: z.output().count("reload done") == 1), z.output())
            self.assertEqual(os.stat(a).st_ino, ino)
            with unix_connect(a) as s:
                echo_through(self, s, 100)
            with open(z.conf) as f:
                conf = f.read()
            with open(z.conf, "w") as f:
                f.write(conf.replace("a.sock", "b.sock"))
            z.proc.send_signal(1)
            self.assertTrue(wait_for(lambda: z.output().count("reload done") == 2), z.output())
            self.assertTrue(wait_for(lambda: not os.path.exists(a)), "the old socket file stays")
            with unix_connect(b) as s:
                echo_through(self, s, 100)
            # the connection made before both reloads still flows
            echo_through(self, held, 100)
            held.close()

    def test_unix_mode(self):
        text = echo_conf("unix:{tmp}/m.sock", "127.0.0.1:{port0}", tail='    unix_mode: "0666"\n')
        with Zerg(text) as z:
            path = os.path.join(z.tmp, "m.sock")
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o666)
            with open(z.conf) as f:
                conf = f.read()
            with open(z.conf, "w") as f:
                f.write(conf.replace('"0666"', '"0600"'))
            z.proc.send_signal(1)  # a reload keeps the socket and sets its new mode
            self.assertTrue(wait_for(lambda: "reload done" in z.output()), z.output())
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
            with unix_connect(path) as s:
                echo_through(self, s, 100)

    def test_stale_busy_and_foreign_files(self):
        z = Zerg(echo_conf("unix:{tmp}/e.sock"))
        path = os.path.join(z.tmp, "e.sock")
        # left by a process that died: bound, nobody listening
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(path)
        stale.close()
        with z:
            self.assertIn("removed the stale socket " + path, z.output())
            with unix_connect(path) as s:
                echo_through(self, s, 100)
            # a second zerg on the same path is refused and leaves it alone
            rc, out = run_zerg(["-c", self.second_conf(z)], timeout=10)
            self.assertEqual(rc, 1, out)
            self.assertIn(f"bind() to unix:{path}: Address already in use", out)
            with unix_connect(path) as s:
                echo_through(self, s, 100)
        # a file that is no socket is never removed
        with open(path, "w") as f:
            f.write("mine")
        rc, out = run_zerg(["-c", self.second_conf(z)], timeout=10)
        self.assertEqual(rc, 1, out)
        self.assertIn(f"bind() to unix:{path}: Address already in use", out)
        with open(path) as f:
            self.assertEqual(f.read(), "mine")

    def second_conf(self, z):
        """z's config for another zerg: its own pid file, errors on stderr."""
        with open(z.conf) as f:
            text = f.read()
        second = os.path.join(z.tmp, "second.yaml")
        with open(second, "w") as f:
            f.write(text.replace("zerg.pid", "second.pid")
                    .replace(f"path: {z.tmp}/error.log", "path: stderr"))
        return second

    def test_relative_path_from_the_prefix(self):
        z = Zerg(echo_conf("unix:run/rel.sock"))
        os.makedirs(os.path.join(z.tmp, "run"))
        z.extra_args = ["-p", z.tmp]
        with z:
            path = os.path.join(z.tmp, "run", "rel.sock")
            self.assertTrue(wait_for(lambda: os.path.exists(path)), z.output())
            with unix_connect(path) as s:
                echo_through(self, s, 100)


class BadAddresses(unittest.TestCase):
    def test_refused(self):
        head = "load_modules: [echo, proxy]\nservers:\n"
        assert_refused(self, head + '  - {{ listen: ["unix:"], module: echo }}\n',
                       'bad address "unix:": expected "unix:/path" or "unix:@name"')
        assert_refused(self, head + '  - {{ listen: ["unix:/' + "x" * 120 + '"], module: echo }}\n',
                       "socket path longer than 107 bytes")
        assert_refused(self, head + '  - {{ listen: ["unix:/tmp/x.sock"], module: echo, '
                       'unix_mode: "0999" }}\n', "unix_mode: expected octal permission bits")
        assert_refused(self, head + '  - {{ listen: ["127.0.0.1:{port0}"], module: echo, '
                       'unix_mode: "0660" }}\n',
                       'unix_mode: the block listens on no "unix:/path" address')
        assert_refused(self, head + '  - listen: ["127.0.0.1:{port0}"]\n    module: proxy\n'
                       '    proxy: {{ upstream: {{ servers: ["unix:@"] }} }}\n',
                       'bad address "unix:@"')


if __name__ == "__main__":
    zgtest.main()

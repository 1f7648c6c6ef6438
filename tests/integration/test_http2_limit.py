#!/usr/bin/env python3
"""test_http2_limit - limit_req and limit_conn over HTTP/2 as over HTTP/1.1,
through the real zerg: zone keys made of $http_name (read from the stream's
HPACK fields), $host (:authority), $server_name and $remote_addr; limit_conn
counts each stream as a request in progress (nginx counts each h2 stream
as a connection), across the streams of one connection, across connections,
and with HTTP/1.1 requests of the same key; a slot goes back when its
stream ends or is reset."""
import os
import socket
import sys
import unittest

import h2.errors
import h2.events
import h2.settings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zgtest  # noqa: E402
from httptest import HTTP_SERVER, start_serving  # noqa: E402
from test_http2 import H2  # noqa: E402
from zgtest import wait_until  # noqa: E402

CONF = HTTP_SERVER + """      server_name: [a.test]
      http2: {{ idle_timeout: 30s }}
      send_timeout: 30s
      limit_zones:
        by_key: {{ key: "$http_x_key", rate: 1r/m }}
        by_host: {{ key: "$host", rate: 1r/m }}
        by_name: {{ key: "$server_name:$http_x_user", rate: 1r/m }}
        conns: {{ key: $remote_addr }}
      locations:
        - path: =/key
          return: {{ status: 200, body: key }}
          limit_req: {{ zone: by_key, status: 503 }}
        - path: =/host
          return: {{ status: 200, body: host }}
          limit_req: {{ zone: by_host, status: 503 }}
        - path: =/name
          return: {{ status: 200, body: name }}
          limit_req: {{ zone: by_name, status: 503 }}
        - path: /held/
          alias: "{tmp}/www/"
          limit_conn: {{ zone: conns, max: 2, status: 503 }}
"""

BIG = 1 << 20


def setUpModule():
    global Z
    Z = start_serving(CONF, {"big.bin": os.urandom(BIG)})


def tearDownModule():
    Z.stop()


def conn(window=None):
    settings = None
    if window is not None:
        settings = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window}
    return H2(port=Z.ports[0], settings=settings)


def status(c, path, headers=(), authority="a.test"):
    return c.response(c.request(path, headers=headers, authority=authority))[0][":status"]


def head_status(c, sid):
    """The :status of stream sid once its HEADERS came (its body may wait)."""
    while True:
        for e in c.events:
            if isinstance(e, h2.events.ResponseReceived) and e.stream_id == sid:
                return dict((k.decode(), v.decode()) for k, v in e.headers)[":status"]
        if c.pump() is None:
            raise EOFError("closed")


def held(c):
    """A request for /held/big.bin: its :status (a 200's body waits)."""
    return head_status(c, c.request("/held/big.bin"))


def http11(path, host="a.test"):
    s = socket.create_connection(("127.0.0.1", Z.ports[0]), timeout=10)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return s


class Keys(unittest.TestCase):
    def test_http_name_key_reads_the_stream_fields(self):
        """$http_x_key: each x-key value has its own bucket (1r/m); a stream
        without the field has an empty key, which is not limited (nginx's)."""
        c = conn()
        try:
            self.assertEqual(status(c, "/key", [("x-key", "alpha")]), "200")
            self.assertEqual(status(c, "/key", [("x-key", "alpha")]), "503")
            self.assertEqual(status(c, "/key", [("x-key", "beta")]), "200")
            self.assertEqual(status(c, "/key"), "200")
            self.assertEqual(status(c, "/key"), "200")
        finally:
            c.close()
        c = conn()  # the same key from another connection: the same bucket
        try:
            self.assertEqual(status(c, "/key", [("x-key", "beta")]), "503")
        finally:
            c.close()

    def test_host_key_is_the_authority(self):
        c = conn()
        try:
            self.assertEqual(status(c, "/host", authority="a.test"), "200")
            self.assertEqual(status(c, "/host", authority="a.test"), "503")
            # nginx's $host: no port, lowercase; so the same bucket
            self.assertEqual(status(c, "/host", authority="A.test:80"), "503")
            self.assertEqual(status(c, "/host", authority="other.test"), "200")
        finally:
            c.close()

    def test_server_name_and_field_combined(self):
        c = conn()
        try:
            self.assertEqual(status(c, "/name", [("x-user", "u1")]), "200")
            self.assertEqual(status(c, "/name", [("x-user", "u1")]), "503")
            self.assertEqual(status(c, "/name", [("x-user", "u2")]), "200")
        finally:
            c.close()


class Conns(unittest.TestCase):
    """limit_conn max 2 on /held/: streams held open by a shut window."""

    def test_each_stream_counts(self):
        c = conn(window=0)
        try:
            a = c.request("/held/big.bin")
            self.assertEqual(head_status(c, a), "200")
            self.assertEqual(held(c), "200")
            self.assertEqual(held(c), "503")  # the third stream
            c.conn.reset_stream(a, h2.errors.ErrorCodes.CANCEL)  # its slot goes back
            c.flush()
            wait_until(lambda: held(c) == "200", what="the reset stream's slot back", timeout=5)
        finally:
            c.close()

    def test_streams_of_other_connections_and_http11_count(self):
        c1, c2 = conn(window=0), conn(window=0)
        s11 = None
        try:
            self.assertEqual(held(c1), "200")
            s11 = http11("/held/big.bin")  # held too: it never reads the body
            s11.settimeout(10)
            self.assertIn(b" 200 ", s11.recv(4096).split(b"\r\n")[0])
            self.assertEqual(held(c2), "503")
            c1.close()  # the connection's streams give their slots back
            wait_until(lambda: held(c2) == "200", what="the closed connection's slot back",
                       timeout=5)
        finally:
            c1.close()
            c2.close()
            if s11:
                s11.close()


if __name__ == "__main__":
    zgtest.main()

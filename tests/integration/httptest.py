"""httptest - what the http module's integration tests share: the test
site's configuration and files, h2 server entries, a zerg started
with its files, a server started once per test class, and raw-socket
helpers (connect, read one response, send and read to close)."""
import gzip
import os
import re
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from zgtest import Zerg, run_zerg  # noqa: E402

# what an http test configuration starts with: one http server on {port0}
HTTP_SERVER = """
load_modules: [http]
servers:
  - listen: ["127.0.0.1:{port0}"]
    module: http
    http:
"""


def h2_server(n, tls=False):
    """A servers entry on {portN} that speaks h2 (by prior knowledge, or on
    TLS with test_tls.make_certs' RSA key: CERTS stands for their
    directory): /hello answered with a body, the rest from {tmp}/www."""
    entry = '  - listen: ["127.0.0.1:{port%d}"]\n    module: http\n' % n
    if tls:
        entry += '    tls: {{ certificates: [ {{ certificate: "CERTS/rsa.pem", ' \
                 'key: "CERTS/rsa.key" }} ] }}\n'
    return entry + """    http:
      http2: true
      locations:
        - path: =/hello
          return: {{ status: 200, body: "%s" }}
        - {{ path: /, root: "{tmp}/www" }}
""" % ("Hello, h2 over TLS!" if tls else "Hello, h2!")


def start_serving(conf, files):
    """A zerg of conf, started and listening, with files (name: bytes, the
    name relative to {tmp}/www) written before it starts."""
    z = Zerg(conf, wait=False)
    for name, data in files.items():
        path = os.path.join(z.tmp, "www", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    z.start()
    z.wait_listening()
    return z


CONF = HTTP_SERVER + """      server_name: [example.com]
      keepalive_timeout: 2s
      client_header_timeout: 1s
      client_body_timeout: 1s
      send_timeout: 1s
      client_max_body_size: 1k
      max_uri_length: 1k
      large_client_header_buffers: 8k
      keepalive_requests: 50
      access_log:
        path: {tmp}/access.log
        format: combined
        flush: 200ms
      mime_types:
        zz: application/x-zz
      locations:
        - path: /
          root: {tmp}/www
          index: [index.html]
        - path: =/hello
          return:
            status: 200
            body: "Hello, World!"
            headers:
              Content-Type: text/plain
              X-Test: yes
        - path: /status
          status: true
        - path: /listing/
          root: {tmp}/www
          autoindex: true
        - path: =/gone
          return:
            status: 301
            location: /hello
        - path: /assets/
          root: {tmp}/www
          add_header:
            Cache-Control: "public, max-age=60"
            X-Frame-Options: DENY
        - path: =/added
          return:
            status: 200
            body: added
          add_header:
            X-Added: "yes"
        - path: =/missing
          return:
            status: 404
            body: missing
          add_header:
            X-Added: "yes"
        - path: /private/
          root: {tmp}/www
          allow: [127.0.0.2, "10.0.0.0/8", "::1"]
        - path: =/nolocal
          return:
            status: 200
            body: open
          deny: 127.0.0.1
        - path: /files/
          alias: {tmp}/www/sub/
        - path: /app/
          root: {tmp}/www
          fallback: /app/index.html
        - path: /broken/
          root: {tmp}/www
          fallback: /broken/none.html
        - path: /old/
          return:
            status: 301
            location: "https://$host$request_uri"
        - path: /gz/
          root: {tmp}/www
          gzip_static: true
        - path: =/where
          return:
            status: 302
            location: "${{scheme}}://$host/new$uri"
            body: moved
"""


def make_tree(tmp):
    www = os.path.join(tmp, "www")
    os.makedirs(os.path.join(www, "sub"), exist_ok=True)
    os.makedirs(os.path.join(www, "emptydir"), exist_ok=True)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("<h1>index</h1>\n")
    with open(os.path.join(www, "sub", "index.html"), "w") as f:
        f.write("<h1>sub</h1>\n")
    with open(os.path.join(www, "data.zz"), "w") as f:
        f.write("zz")
    with open(os.path.join(www, "style.css"), "w") as f:
        f.write("body{}")
    os.makedirs(os.path.join(www, "gz"), exist_ok=True)
    for name, text in (("app.js", "let app = 1;\n" * 50), ("index.html", "<h1>gz</h1>\n")):
        with open(os.path.join(www, "gz", name), "w") as f:
            f.write(text)
        with open(os.path.join(www, "gz", name + ".gz"), "wb") as f:
            f.write(gzip.compress(text.encode(), mtime=0))
    with open(os.path.join(www, "gz", "plain.css"), "w") as f:
        f.write("body{}\n")
    os.makedirs(os.path.join(www, "app"), exist_ok=True)
    with open(os.path.join(www, "app", "index.html"), "w") as f:
        f.write("<h1>app</h1>\n")
    with open(os.path.join(www, "app", "main.js"), "w") as f:
        f.write("main();\n")
    os.makedirs(os.path.join(www, "private"), exist_ok=True)
    with open(os.path.join(www, "private", "p.txt"), "w") as f:
        f.write("private\n")
    os.makedirs(os.path.join(www, "assets"), exist_ok=True)
    with open(os.path.join(www, "assets", "app.js"), "w") as f:
        f.write("let x = 1;\n")
    with open(os.path.join(www, "alpha.txt"), "wb") as f:
        f.write(bytes(range(97, 123)) * 1000)
    os.makedirs(os.path.join(www, "listing", "d"), exist_ok=True)
    for name in ("b.txt", "a&b <x>.txt", ".hidden"):
        with open(os.path.join(www, "listing", name), "w") as f:
            f.write("x")
    with open(os.path.join(tmp, "secret.txt"), "w") as f:
        f.write("TOPSECRET\n")
    os.symlink(os.path.join(tmp, "secret.txt"), os.path.join(www, "link_out"))
    os.symlink(tmp, os.path.join(www, "dirlink"))
    os.symlink("index.html", os.path.join(www, "link_in.html"))


class Server:
    """One zerg for the whole class (started lazily), with a document tree."""

    z = None

    @classmethod
    def start(cls, conf=CONF):
        cls.z = Zerg(conf, wait=False)
        make_tree(cls.z.tmp)
        cls.z.start()
        cls.z.wait_listening()
        cls.port = cls.z.ports[0]
        cls.tmp = cls.z.tmp

    @classmethod
    def stop(cls):
        if cls.z:
            cls.z.stop()


def connect(port, timeout=5.0, source="127.0.0.1"):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
    s.settimeout(timeout)
    return s


def read_response(sock, buf=b"", head=False):
    """Reads one response: (status, headers dict (lowercase), body, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("closed before a full head: %r" % buf)
        buf += chunk
    hend = buf.index(b"\r\n\r\n")
    lines = buf[:hend].decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for ln in lines[1:]:
        k, v = ln.split(":", 1)
        hdrs[k.strip().lower()] = v.strip()
    rest = buf[hend + 4:]
    n = 0 if head or status in (204, 304) or status < 200 else int(hdrs.get("content-length", 0))
    while len(rest) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("closed inside a body")
        rest += chunk
    return status, hdrs, rest[:n], rest[n:]


def closed_after(sock, timeout=3.0):
    """True when the peer closes (EOF or reset) within timeout."""
    sock.settimeout(timeout)
    try:
        while True:
            d = sock.recv(65536)
            if not d:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def raw(port, data, timeout=3.0):
    """Sends data, returns everything read until close or timeout."""
    s = connect(port, timeout)
    try:
        s.sendall(data)
        out = b""
        s.settimeout(timeout)
        while True:
            try:
                d = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not d:
                break
            out += d
        return out
    finally:
        s.close()


def status_of(resp):
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", resp)
    return int(m.group(1)) if m else None


def curl(*args):
    r = subprocess.run(["curl", "-s", "--max-time", "10"] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=20)
    return r.stdout


class SharedServer(unittest.TestCase):
    """Tests of one class share one server on the default CONF."""
    @classmethod
    def setUpClass(cls):
        Server.start()

    @classmethod
    def tearDownClass(cls):
        Server.stop()


def assert_refused(test, text, needle):
    """zerg -t refuses the configuration text, saying needle."""
    z = Zerg(text, wait=False)
    rc, out = run_zerg(["-c", z.conf, "-t"])
    test.assertEqual(rc, 1, out)
    test.assertIn(needle, out)

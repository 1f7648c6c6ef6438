#!/usr/bin/env python3
"""test_tls_upstream - http proxy_pass to https:// upstreams through the real
zerg (the core's TLS client, api->connect_tls): a trusted certificate for
the name gives 200; a wrong name, an untrusted CA and an expired certificate
give 502 with one log line naming the upstream and the verify error;
verify: off passes; kept-alive upstream connections carry many requests;
new connections resume the last session; a bad ca: file fails zerg -t.
The upstreams are TLS servers in this process (Python's ssl), so that the
test sees every connection, its SNI and whether it was resumed; the
certificates are made at test time with the openssl CLI."""
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zgtest  # noqa: E402
from zgtest import Zerg, recv_all, recv_message, run_zerg  # noqa: E402

CERTS = None

LEAF_EXT = """subjectAltName=DNS:localhost,IP:127.0.0.1
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
"""


def openssl(*args):
    r = subprocess.run(["openssl"] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (args[0], r.stdout.decode(errors="replace")))


def make_certs(d):
    """A CA with a good and an expired leaf for localhost/127.0.0.1, and a
    second CA that signed the same name (trusted by nobody)."""
    p = lambda name: os.path.join(d, name)  # noqa: E731
    with open(p("leaf.ext"), "w") as f:
        f.write(LEAF_EXT)
    ec = ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    for ca in ("ca", "rogue"):
        openssl("req", "-x509", "-newkey", *ec, "-nodes", "-keyout", p(ca + ".key"),
                "-out", p(ca + ".pem"), "-days", "30", "-subj", "/CN=zerg test " + ca)
    openssl("req", "-newkey", *ec, "-nodes", "-keyout", p("leaf.key"), "-out", p("leaf.csr"),
            "-subj", "/CN=localhost")
    for name, ca, days in (("good", "ca", "30"), ("expired", "ca", "-1"),
                           ("untrusted", "rogue", "30")):
        openssl("x509", "-req", "-in", p("leaf.csr"), "-CA", p(ca + ".pem"), "-CAkey",
                p(ca + ".key"), "-CAcreateserial", "-out", p(name + ".pem"), "-days", days,
                "-extfile", p("leaf.ext"))
    with open(p("notpem.pem"), "w") as f:
        f.write("this is not a certificate\n")


def setUpModule():
    global CERTS
    CERTS = tempfile.mkdtemp(prefix="zgtlsup-")
    make_certs(CERTS)


def tearDownModule():
    shutil.rmtree(CERTS, ignore_errors=True)


def cert(name):
    return os.path.join(CERTS, name)


class Upstream:
    """An HTTP/1.1 keep-alive server over TLS (certificate name.pem): it
    counts connections, handshakes that resumed a session, and the SNI names
    asked for; each answer's body is "up <port> <path>", with the sha256 of
    the request's body when it has one."""

    def __init__(self, name):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert(name + ".pem"), cert("leaf.key"))
        self.ctx.sni_callback = lambda sock, sni, ctx: self.snis.append(sni) and None
        self.lock = threading.Lock()
        self.conns = self.resumed = self.requests = self.failed = 0
        self.snis = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.running = True
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while self.running:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(raw,), daemon=True).start()

    def serve(self, raw):
        raw.settimeout(20)
        try:
            s = self.ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            with self.lock:
                self.failed += 1
            raw.close()
            return
        with self.lock:
            self.conns += 1
            self.resumed += 1 if s.session_reused else 0
        buf = b""
        try:
            while True:
                msg = recv_message(s, buf)
                if msg is None:
                    return
                head, got, buf = msg
                path = head.split(b" ")[1]
                with self.lock:
                    self.requests += 1
                body = b"up %d %s" % (self.port, path)
                if got:
                    body += b" " + hashlib.sha256(got).hexdigest().encode()
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        except (ssl.SSLError, OSError):
            pass
        finally:
            s.close()

    def stop(self):
        self.running = False
        self.sock.close()


def get(port, path, body=None):
    """One request (a POST of body when given) on a new connection:
    (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        if body is None:
            s.sendall(b"GET %s HTTP/1.1\r\nHost: front\r\nConnection: close\r\n\r\n"
                      % path.encode())
        else:
            s.sendall(b"POST %s HTTP/1.1\r\nHost: front\r\nConnection: close\r\n"
                      b"Content-Length: %d\r\n\r\n" % (path.encode(), len(body)))
            s.sendall(body)
        data = recv_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def location(path, url, tls=None, keepalive=0):
    text = f"        - path: {path}\n          proxy_pass: {url}\n"
    if tls:
        text += f"          proxy_tls: {{{{ {tls} }}}}\n"
    if keepalive:
        text += f"          proxy_keepalive: {keepalive}\n"
    return text


class ProxyPassHttps(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.good, cls.expired, cls.untrusted, cls.resume = (
            Upstream("good"), Upstream("expired"), Upstream("untrusted"), Upstream("good"))
        # a server that accepts and never speaks, one that answers in clear
        cls.silent, cls.plain = socket.socket(), socket.socket()
        for s in (cls.silent, cls.plain):
            s.bind(("127.0.0.1", 0))
            s.listen(16)
        threading.Thread(target=cls.answer_in_clear, daemon=True).start()
        ca = f"ca: {cert('ca.pem')}"
        locs = (location("/good/", f"https://localhost:{cls.good.port}/", ca, keepalive=4)
                + location("/ip/", f"https://127.0.0.1:{cls.good.port}/", ca)
                + location("/wrongname/", f"https://localhost:{cls.good.port}/",
                           ca + ", server_name: other.example")
                + location("/expired/", f"https://localhost:{cls.expired.port}/", ca)
                + location("/untrusted/", f"https://localhost:{cls.untrusted.port}/")
                + location("/noverify/", f"https://localhost:{cls.untrusted.port}/",
                           "verify: off")
                + location("/resume/", f"https://localhost:{cls.resume.port}/", ca)
                + location("/post/", f"https://localhost:{cls.resume.port}/", ca)
                + location("/silent/", f"https://localhost:{cls.silent.getsockname()[1]}/",
                           ca + ", handshake_timeout: 300ms")
                + location("/plain/", f"https://localhost:{cls.plain.getsockname()[1]}/", ca)
                + location("/group/", "https://secure/", ca + ", server_name: localhost"))
        group = f'        secure: ["127.0.0.1:{cls.good.port}", "127.0.0.1:{cls.resume.port}"]\n'
        cls.z = Zerg("""
load_modules: [http]
servers:
  - listen: ["127.0.0.1:{port0}"]
    module: http
    http:
      upstreams:
""" + group + "      locations:\n" + locs)
        cls.z.start()
        cls.port = cls.z.ports[0]

    @classmethod
    def answer_in_clear(cls):
        while True:
            try:
                c, _ = cls.plain.accept()
            except OSError:
                return
            with c:
                c.recv(4096)
                c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    @classmethod
    def tearDownClass(cls):
        cls.z.stop()
        for u in (cls.good, cls.expired, cls.untrusted, cls.resume):
            u.stop()
        cls.silent.close()
        cls.plain.close()

    def test_trusted_certificate(self):
        status, body = get(self.port, "/good/a")
        self.assertEqual((status, body), (200, b"up %d /a" % self.good.port))
        self.assertIn("localhost", self.good.snis)

    def test_group_with_server_name(self):
        """https://group: the group's servers, verified against server_name."""
        ports = set()
        for i in range(4):
            status, body = get(self.port, f"/group/g{i}")
            self.assertEqual(status, 200, body)
            _, port, path = body.split()
            self.assertEqual(path, b"/g%d" % i)
            ports.add(int(port))
        self.assertEqual(ports, {self.good.port, self.resume.port})

    def test_ip_address_verified_against_its_san(self):
        status, body = get(self.port, "/ip/b")
        self.assertEqual((status, body), (200, b"up %d /b" % self.good.port))

    def refused(self, path, upstream, verify_error):
        mark = self.z.log_mark()
        status, _ = get(self.port, path)
        self.assertEqual(status, 502)
        line = self.z.wait_log(verify_error, since=mark)
        self.assertIn(f"127.0.0.1:{upstream.port}", line)
        self.assertIn("certificate verify failed", line)
        # one line: the core's, with the reason (the http module adds none)
        zgtest.holds(lambda: sum(f":{upstream.port}" in l or path in l
                                 for l in self.z.log_since(mark).splitlines()) == 1, 0.3)
        lines = [l for l in self.z.log_since(mark).splitlines()
                 if f":{upstream.port}" in l or path in l]
        self.assertEqual(len(lines), 1, lines)

    def test_wrong_name_is_502_and_logged(self):
        self.refused("/wrongname/x", self.good, "hostname mismatch")

    def test_expired_is_502_and_logged(self):
        self.refused("/expired/x", self.expired, "certificate has expired")

    def test_untrusted_ca_is_502_and_logged(self):
        """No ca: the system's store, which does not know the test CA."""
        self.refused("/untrusted/x", self.untrusted, "unable to get local issuer certificate")

    def test_verify_off_passes(self):
        status, body = get(self.port, "/noverify/c")
        self.assertEqual((status, body), (200, b"up %d /c" % self.untrusted.port))

    def test_keepalive_over_tls(self):
        """proxy_keepalive: 20 requests one after another take one upstream
        connection (the client's connection is new each time)."""
        before_conns, before_reqs = self.good.conns, self.good.requests
        for i in range(20):
            self.assertEqual(get(self.port, f"/good/k{i}"),
                             (200, b"up %d /k%d" % (self.good.port, i)))
        self.assertEqual(self.good.requests - before_reqs, 20)
        self.assertLessEqual(self.good.conns - before_conns, 1)

    def test_request_body_during_the_handshake(self):
        """A 1 MiB body comes while the upstream's handshake is still going
        on (the module has paused that connection's reading meanwhile): it
        goes through whole once the handshake is done."""
        data = os.urandom(1 << 20)
        status, body = get(self.port, "/post/p", data)
        self.assertEqual(status, 200)
        self.assertEqual(body, b"up %d /p %s" % (self.resume.port,
                                                  hashlib.sha256(data).hexdigest().encode()))

    def test_handshake_timeout_is_504(self):
        mark = self.z.log_mark()
        self.assertEqual(get(self.port, "/silent/x")[0], 504)
        self.z.wait_log("no complete handshake within handshake_timeout", since=mark)

    def test_upstream_without_tls_is_502(self):
        mark = self.z.log_mark()
        self.assertEqual(get(self.port, "/plain/x")[0], 502)
        line = self.z.wait_log(f":{self.plain.getsockname()[1]}", since=mark)
        self.assertIn("TLS handshake", line)

    def test_session_reuse(self):
        """Without keep-alive each request has a new upstream connection:
        every one after the first resumes the session of the one before."""
        conns, resumed = self.resume.conns, self.resume.resumed
        for i in range(4):
            self.assertEqual(get(self.port, f"/resume/{i}"),
                             (200, b"up %d /%d" % (self.resume.port, i)))
        self.assertEqual(self.resume.conns - conns, 4)
        self.assertGreaterEqual(self.resume.resumed - resumed, 3)


class Reload(unittest.TestCase):
    def test_bad_ca_file_fails_the_reload(self):
        """The old configuration keeps serving, and the line names the file."""
        up = Upstream("good")
        conf = ("load_modules: [http]\nservers:\n"
                '  - listen: ["127.0.0.1:{port0}"]\n    module: http\n    http:\n'
                "      locations:\n"
                + location("/", f"https://localhost:{up.port}/", "ca: CA_FILE"))
        z = Zerg(conf.replace("CA_FILE", cert("ca.pem")))
        try:
            z.start()
            self.assertEqual(get(z.ports[0], "/r")[0], 200)
            missing = os.path.join(z.tmp, "missing-ca.pem")
            with open(z.conf) as f:
                text = f.read()
            with open(z.conf, "w") as f:
                f.write(text.replace(cert("ca.pem"), missing))
            mark = z.log_mark()
            self.assertIn("reload failed", z.reload())
            self.assertIn(missing, z.log_since(mark))
            self.assertEqual(get(z.ports[0], "/r2"), (200, b"up %d /r2" % up.port))
        finally:
            z.stop()
            up.stop()


class Config(unittest.TestCase):
    def conf(self, d, tls, url="https://localhost:4430/"):
        path = os.path.join(d, "zerg.yaml")
        with open(path, "w") as f:
            f.write(f"""modules_path: {zgtest.ZERG_MODULES}
load_modules: [http]
servers:
  - listen: ["127.0.0.1:1"]
    module: http
    http:
      locations:
        - path: /
          proxy_pass: {url}
""" + (f"          proxy_tls: {{ {tls} }}\n" if tls else ""))
        return path

    def test_bad_ca_file_fails_the_check(self):
        d = tempfile.mkdtemp(prefix="zgtlsup-t-")
        try:
            rc, out = run_zerg(["-t", "-c", self.conf(d, f"ca: {cert('ca.pem')}")])
            self.assertEqual(rc, 0, out)
            missing = os.path.join(d, "missing.pem")
            rc, out = run_zerg(["-t", "-c", self.conf(d, f"ca: {missing}")])
            self.assertNotEqual(rc, 0)
            self.assertIn(missing, out)
            rc, out = run_zerg(["-t", "-c", self.conf(d, f"ca: {cert('notpem.pem')}")])
            self.assertNotEqual(rc, 0)
            self.assertIn(cert("notpem.pem"), out)
            rc, out = run_zerg(["-t", "-c", self.conf(d, "verify: off", "http://127.0.0.1:80/")])
            self.assertNotEqual(rc, 0)
            self.assertIn("needs an https:// proxy_pass", out)
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    zgtest.main()

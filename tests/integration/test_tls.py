#!/usr/bin/env python3
"""test_tls - TLS termination in the core (a server block's tls: key) through
the real zerg: curl over TLS 1.2 and 1.3 against http return and static files
(byte-exact, spliced files falling back to copies), keep-alive and
pipelining, echo of 16 MiB, protocol limits with openssl s_client, garbage,
stalled and truncated input, close_notify, and certificate checks at load
and reload. The certificates are made at test time with the openssl CLI."""
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zgtest  # noqa: E402
from zgtest import Zerg, run_zerg  # noqa: E402

CERTS = None  # the directory setUpModule fills

LEAF_EXT = """subjectAltName=DNS:localhost,IP:127.0.0.1
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
"""


def openssl(*args, stdin=None, timeout=20):
    return subprocess.run(["openssl"] + list(args), input=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout)


def make_certs(d):
    """A CA, an RSA and an ECDSA leaf for localhost/127.0.0.1 it signed."""
    def run(*args):
        r = openssl(*args)
        if r.returncode != 0:
            raise RuntimeError("openssl %s: %s" % (args[0], r.stdout.decode(errors="replace")))

    p = lambda name: os.path.join(d, name)  # noqa: E731
    with open(p("leaf.ext"), "w") as f:
        f.write(LEAF_EXT)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "30", "-subj", "/CN=zerg test CA")
    for name, key in (("rsa", ["rsa:2048"]), ("ecdsa", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"])):
        run("req", "-newkey", *key, "-nodes", "-keyout", p(name + ".key"), "-out", p(name + ".csr"),
            "-subj", "/CN=localhost")
        run("x509", "-req", "-in", p(name + ".csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
            "-CAcreateserial", "-out", p(name + ".pem"), "-days", "30", "-extfile", p("leaf.ext"))
    # the RSA key's certificate once more, valid for a day only
    run("x509", "-req", "-in", p("rsa.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
        "-CAcreateserial", "-out", p("soon.pem"), "-days", "1", "-extfile", p("leaf.ext"))


def setUpModule():
    global CERTS
    CERTS = tempfile.mkdtemp(prefix="zgtls-")
    make_certs(CERTS)


def tearDownModule():
    shutil.rmtree(CERTS, ignore_errors=True)


def cert(name):
    return os.path.join(CERTS, name)


def tls_block(extra=""):
    return ("    tls:\n"
            "      certificates:\n"
            f"        - {{ certificate: {cert('rsa.pem')}, key: {cert('rsa.key')} }}\n"
            f"        - {{ certificate: {cert('ecdsa.pem')}, key: {cert('ecdsa.key')} }}\n"
            + extra)


def http_conf(tls_extra=""):
    return ("""
load_modules: [http]
servers:
  - listen: ["127.0.0.1:{port0}"]
    module: http
""" + tls_block(tls_extra).replace("{", "{{").replace("}", "}}") + """    http:
      keepalive_timeout: 10s
      send_timeout: 10s
      access_log:
        path: {tmp}/access.log
        format: "$ssl_protocol $ssl_cipher $ssl_server_name $ssl_session_reused $ssl_alpn_protocol $request_uri"
        flush: 100ms
      locations:
        - path: =/hello
          return: {{ status: 200, body: "Hello, TLS!" }}
        - path: =/moved
          return: {{ status: 301, location: "$scheme://$host/hello" }}
        - {{ path: /, root: {tmp}/www }}
  - listen: ["127.0.0.1:{port1}"]
    module: http
""" + tls_block(tls_extra).replace("{", "{{").replace("}", "}}") + """    http:
      open_file_cache_valid: 60s
      locations:
        - {{ path: /, root: {tmp}/www }}
""")


def echo_conf(tls_extra=""):
    return ("""
load_modules: [echo]
servers:
  - listen: ["127.0.0.1:{port0}"]
    module: echo
    echo: {{ idle_timeout: 60s }}
""" + tls_block(tls_extra).replace("{", "{{").replace("}", "}}"))


def client_context():
    ctx = ssl.create_default_context(cafile=cert("ca.pem"))
    # an end of stream without close_notify is an error here (Python sets
    # the option by default)
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    return ctx


def tls_connect(port, ctx=None, ragged_ok=True):
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    return (ctx or client_context()).wrap_socket(raw, server_hostname="localhost",
                                                 suppress_ragged_eofs=ragged_ok)


def curl(port, path, *extra):
    r = subprocess.run(["curl", "-sS", "--cacert", cert("ca.pem"), "--max-time", "20",
                        "--resolve", f"localhost:{port}:127.0.0.1", *extra,
                        f"https://localhost:{port}{path}"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def s_client(port, *args, stdin=b""):
    r = openssl("s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
                "-CAfile", cert("ca.pem"), *args, stdin=stdin)
    return r.returncode, r.stdout.decode(errors="replace")


def read_responses(s, n):
    """n HTTP responses with Content-Length bodies: [(head, body)]."""
    buf, out = b"", []
    while len(out) < n:
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                raise AssertionError(f"closed after {len(out)} responses: {buf[:200]!r}")
            buf += d
        head, buf = buf.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, v = line.split(b":", 1)
            if k.strip().lower() == b"content-length":
                length = int(v)
        while len(buf) < length:
            d = s.recv(65536)
            if not d:
                raise AssertionError("closed inside a body")
            buf += d
        out.append((head, buf[:length]))
        buf = buf[length:]
    return out


def handshaken(port):
    """A raw socket and an SSLObject over memory BIOs that finished a TLS 1.3
    handshake on it: the test then writes the records it wants by hand."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context().wrap_bio(inc, out, server_hostname="localhost")
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            raw.sendall(out.read())
            d = raw.recv(65536)
            if not d:
                raise AssertionError("closed during the handshake")
            inc.write(d)
    raw.sendall(out.read())
    return raw, obj, inc, out


class HttpOverTls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.z = Zerg(http_conf())
        os.makedirs(os.path.join(cls.z.tmp, "www"))
        cls.files = {"small.txt": os.urandom(1000), "big.bin": os.urandom(3 * (1 << 20) + 4321)}
        for name, data in cls.files.items():
            with open(os.path.join(cls.z.tmp, "www", name), "wb") as f:
                f.write(data)
        cls.z.start()
        cls.port = cls.z.ports[0]

    @classmethod
    def tearDownClass(cls):
        cls.z.stop()

    def test_curl_return_tls12_and_tls13(self):
        for version in ("--tlsv1.2", "--tlsv1.3"):
            maxv = ["--tls-max", version[-3:]]
            rc, body, err = curl(self.port, "/hello", version, *maxv, "-w", "%{http_code}")
            self.assertEqual(rc, 0, err)
            self.assertEqual(body, b"Hello, TLS!200")

    def test_static_files_byte_exact(self):
        """Spliced file answers (sendfile is on by default), from the open
        file cache too (the second port), fall back to copies under TLS."""
        for port, version in ((self.port, "--tlsv1.2"), (self.port, "--tlsv1.3"),
                              (self.z.ports[1], "--tlsv1.3"), (self.z.ports[1], "--tlsv1.3")):
            for name, data in self.files.items():
                rc, body, err = curl(port, "/" + name, version, "--tls-max", version[-3:])
                self.assertEqual(rc, 0, err)
                self.assertEqual(len(body), len(data))
                self.assertEqual(hashlib.sha256(body).digest(), hashlib.sha256(data).digest())

    def test_keepalive_and_pipelining(self):
        with tls_connect(self.port) as s:
            for _ in range(3):  # one at a time on one connection
                s.sendall(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
                (head, body), = read_responses(s, 1)
                self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
                self.assertEqual(body, b"Hello, TLS!")
            paths = ["/hello", "/small.txt", "/big.bin", "/hello", "/small.txt"] * 2
            s.sendall(b"".join(b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % p.encode()
                               for p in paths))
            got = read_responses(s, len(paths))
            for p, (head, body) in zip(paths, got):
                want = b"Hello, TLS!" if p == "/hello" else self.files[p[1:]]
                self.assertEqual(body, want, p)

    def test_access_log_tls_variables(self):
        rc, body, err = curl(self.port, "/hello?logged", "--tlsv1.3")
        self.assertEqual(rc, 0, err)
        path = os.path.join(self.z.tmp, "access.log")

        def line():
            try:
                with open(path) as f:
                    return next((l for l in f if "/hello?logged" in l), None)
            except OSError:
                return None
        got = zgtest.wait_until(line, 10, "the access log line")
        version, cipher, sni, reused, alpn, uri = got.split()
        self.assertEqual((version, sni, reused, alpn), ("TLSv1.3", "localhost", ".", "http/1.1"))
        self.assertTrue(cipher.startswith("TLS_"), cipher)

    def test_scheme_is_https(self):
        """The http module learns of TLS through api->conn_tls."""
        with tls_connect(self.port) as s:
            s.sendall(b"GET /moved HTTP/1.1\r\nHost: localhost\r\n\r\n")
            (head, body), = read_responses(s, 1)
        self.assertIn(b"\r\nLocation: https://localhost/hello", head)

    def test_close_sends_close_notify(self):
        """A response with Connection: close ends with the server's
        close_notify: Python raises on an end of stream without one."""
        s = tls_connect(self.port, ragged_ok=False)
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)  # SSLEOFError without a close_notify
            if not d:
                break
            data += d
        s.close()
        self.assertTrue(data.endswith(b"Hello, TLS!"), data)

    def test_garbage_instead_of_client_hello(self):
        mark = self.z.log_mark()
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            data = b""
            while True:  # an alert perhaps, then the close
                try:
                    d = s.recv(4096)
                except ConnectionResetError:
                    break
                if not d:
                    break
                data += d
            self.assertNotIn(b"HTTP/1.1", data)
        line = self.z.wait_log("TLS: handshake failed", since=mark)
        self.assertIn("[info]", line)
        rc, body, err = curl(self.port, "/hello")  # the others are served on
        self.assertEqual((rc, body), (0, b"Hello, TLS!"), err)

    def test_truncated_record_and_no_close_notify(self):
        for cut, text in ((True, "inside a record (truncated)"), (False, "without close_notify")):
            mark = self.z.log_mark()
            raw, obj, inc, out = handshaken(self.port)
            if cut:
                obj.write(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
                rec = out.read()
                raw.sendall(rec[:len(rec) // 2])
            raw.shutdown(socket.SHUT_WR)
            raw.settimeout(10)
            while raw.recv(65536):  # tickets, then the close
                pass
            raw.close()
            line = self.z.wait_log("TLS: end of stream " + text, since=mark)
            self.assertIn("[info]", line)

    def test_certificate_by_what_the_client_takes(self):
        """The RSA and the ECDSA pair: each client gets the one its
        signature algorithms allow."""
        rc, out = s_client(self.port, "-sigalgs", "ecdsa_secp256r1_sha256")
        self.assertEqual(rc, 0, out)
        self.assertIn("Server public key is 256 bit", out)
        rc, out = s_client(self.port, "-sigalgs", "rsa_pss_rsae_sha256")
        self.assertEqual(rc, 0, out)
        self.assertIn("Server public key is 2048 bit", out)

    def test_alpn_from_the_module(self):
        rc, out = s_client(self.port, "-alpn", "h2,http/1.1")
        self.assertEqual(rc, 0, out)
        self.assertIn("ALPN protocol: http/1.1", out)
        rc, out = s_client(self.port, "-alpn", "h2")  # none in common: refused
        self.assertNotEqual(rc, 0, out)

    def test_tls11_refused(self):
        rc, out = s_client(self.port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
        self.assertNotEqual(rc, 0, out)
        rc, out = s_client(self.port, "-tls1_2")
        self.assertEqual(rc, 0, out)
        self.assertIn("TLSv1.2", out)


class EchoOverTls(unittest.TestCase):
    def test_16mib_byte_exact(self):
        """In rounds of 128 KiB (below the output high mark, so the server
        never stops reading while this one thread sends)."""
        data = os.urandom(16 << 20)
        step = 128 << 10
        got = bytearray()
        with Zerg(echo_conf()) as z:
            s = tls_connect(z.ports[0])
            s.settimeout(60)
            for i in range(0, len(data), step):
                s.sendall(data[i:i + step])
                while len(got) < i + step:
                    d = s.recv(1 << 20)
                    if not d:
                        break
                    got += d
            s.close()
        self.assertEqual(len(got), len(data))
        self.assertEqual(hashlib.sha256(got).digest(), hashlib.sha256(data).digest())

    def test_protocols_limit(self):
        with Zerg(echo_conf("      protocols: [TLSv1.3]\n")) as z:
            rc, out = s_client(z.ports[0], "-tls1_2")
            self.assertNotEqual(rc, 0, out)
            rc, out = s_client(z.ports[0], "-tls1_3", stdin=b"ping\n")
            self.assertEqual(rc, 0, out)
            self.assertIn("TLSv1.3", out)

    def test_alpn_configured_and_absent(self):
        with Zerg(echo_conf("      alpn: [zz, yy]\n")) as z:
            rc, out = s_client(z.ports[0], "-alpn", "yy,zz")
            self.assertEqual(rc, 0, out)
            self.assertIn("ALPN protocol: zz", out)
        with Zerg(echo_conf()) as z:  # the echo module names none: ALPN ignored
            rc, out = s_client(z.ports[0], "-alpn", "yy")
            self.assertEqual(rc, 0, out)
            self.assertIn("No ALPN negotiated", out)

    def test_stalled_handshake_times_out(self):
        with Zerg(echo_conf("      handshake_timeout: 300ms\n")) as z:
            hello = socket.create_connection(("127.0.0.1", z.ports[0]), timeout=10)
            # the first bytes of a ClientHello record, then nothing
            hello.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            start = time.monotonic()
            self.assertEqual(hello.recv(4096), b"")
            self.assertLess(time.monotonic() - start, 5)
            hello.close()
            line = z.wait_log("no complete handshake within handshake_timeout")
            self.assertIn("[info]", line)
            s = tls_connect(z.ports[0])  # a client that completes is served
            s.sendall(b"ping")
            self.assertEqual(s.recv(4), b"ping")
            s.close()


class Certificates(unittest.TestCase):
    def conf_file(self, d, certificate, key):
        path = os.path.join(d, "zerg.yaml")
        with open(path, "w") as f:
            f.write(f"""modules_path: {zgtest.ZERG_MODULES}
pid: {d}/zerg.pid
load_modules: [echo]
servers:
  - listen: ["127.0.0.1:1"]
    module: echo
    tls:
      certificates:
        - {{ certificate: {certificate}, key: {key} }}
""")
        return path

    def test_check_names_the_bad_file(self):
        d = tempfile.mkdtemp(prefix="zgtls-t-")
        try:
            ok = self.conf_file(d, cert("rsa.pem"), cert("rsa.key"))
            rc, out = run_zerg(["-t", "-c", ok])
            self.assertEqual(rc, 0, out)
            missing = os.path.join(d, "nothere.key")
            rc, out = run_zerg(["-t", "-c", self.conf_file(d, cert("rsa.pem"), missing)])
            self.assertEqual(rc, 1, out)
            self.assertIn(missing, out)
            rc, out = run_zerg(["-t", "-c", self.conf_file(d, cert("rsa.pem"), cert("ecdsa.key"))])
            self.assertEqual(rc, 1, out)
            self.assertIn(cert("ecdsa.key"), out)
            twice = self.conf_file(d, cert("rsa.pem"), cert("rsa.key"))
            with open(twice, "a") as f:
                f.write(f"        - {{ certificate: {cert('rsa.pem')}, key: {cert('rsa.key')} }}\n")
            rc, out = run_zerg(["-t", "-c", twice])
            self.assertEqual(rc, 1, out)
            self.assertIn("one pair per key type", out)
            gap = self.conf_file(d, cert("rsa.pem"), cert("rsa.key"))
            with open(gap, "a") as f:
                f.write("      protocols: [TLSv1.1, TLSv1.3]\n")
            rc, out = run_zerg(["-t", "-c", gap])
            self.assertEqual(rc, 1, out)
            self.assertIn("protocols", out)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_check_warns_of_a_readable_key_and_an_expiring_certificate(self):
        d = tempfile.mkdtemp(prefix="zgtls-w-")
        try:
            rc, out = run_zerg(["-t", "-c", self.conf_file(d, cert("rsa.pem"), cert("rsa.key"))])
            self.assertEqual(rc, 0, out)
            self.assertNotIn("[warn]", out)
            shared = os.path.join(d, "shared.key")
            shutil.copy(cert("rsa.key"), shared)
            os.chmod(shared, 0o644)
            rc, out = run_zerg(["-t", "-c", self.conf_file(d, cert("soon.pem"), shared)])
            self.assertEqual(rc, 0, out)
            self.assertIn(f"key {shared} is readable by other users", out)
            self.assertIn(f"certificate {cert('soon.pem')} expires within 14 days", out)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_reload_with_a_bad_pair_keeps_serving(self):
        with Zerg(echo_conf()) as z:
            with open(z.conf) as f:
                good = f.read()
            with open(z.conf, "w") as f:
                f.write(good.replace(cert("rsa.key"), cert("ecdsa.key"), 1))
            line = z.reload()
            self.assertIn("reload failed", line)
            self.assertIn(cert("ecdsa.key"), z.output())
            s = tls_connect(z.ports[0])
            s.sendall(b"still")
            self.assertEqual(s.recv(5), b"still")
            s.close()


if __name__ == "__main__":
    zgtest.main()

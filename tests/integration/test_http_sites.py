"""test_http_sites - the http module's per-site settings through the real
zerg binary: access log formats and reopening, configuration errors,
error_page, and name-based virtual hosts."""
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zgtest  # noqa: E402
from zgtest import Zerg, wait_for, wait_until  # noqa: E402
from httptest import (CONF, HTTP_SERVER, Server, assert_refused, closed_after, connect, curl,  # noqa: E402
                      make_tree, raw, read_response, status_of)


class TestAccessLog(unittest.TestCase):
    def test_combined_and_reopen(self):
        Server.start()
        try:
            log = os.path.join(Server.tmp, "access.log")
            curl("-A", "agent/1.0", "-e", "http://ref/", f"http://127.0.0.1:{Server.port}/hello")
            curl(f"http://127.0.0.1:{Server.port}/nothere")
            text = wait_until(lambda: os.path.exists(log) and open(log).read().count("\n") >= 2
                              and open(log).read(), 5, "two lines in the access log")
            self.assertRegex(text, r'^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] '
                             r'"GET /hello HTTP/1\.1" 200 13 "http://ref/" "agent/1\.0"\n')
            self.assertIn('"GET /nothere HTTP/1.1" 404 ', text)
            os.rename(log, log + ".1")
            os.kill(Server.z.proc.pid, signal.SIGUSR1)
            wait_until(lambda: os.path.exists(log), 5, "the worker to reopen the access log")
            curl(f"http://127.0.0.1:{Server.port}/hello?after=reopen")
            self.assertTrue(wait_for_text(log, "after=reopen"), open(log).read())
        finally:
            Server.stop()


    def test_custom_format(self):
        fmt = ('$remote_addr|$remote_user|$time_iso8601|$msec|$request|$request_method|'
               '$request_uri|$server_protocol|$status|$body_bytes_sent|$http_referer|'
               '$http_user_agent|$host|$request_time|${status}x|[$time_local]')
        braced = fmt.replace("{", "{{").replace("}", "}}")  # Zerg() formats the text
        Server.start(CONF.replace("        format: combined\n",
                                  "        format: \"%s\"\n" % braced, 1))
        try:
            log = os.path.join(Server.tmp, "access.log")
            curl("-A", 'ag"ent', "-H", "Host: WWW.Example.com:81",
                 f"http://127.0.0.1:{Server.port}/hello?a=1")
            wait_until(lambda: os.path.exists(log) and open(log).read().count("\n") >= 1, 5,
                       "a line in the access log")
            line = open(log).read().splitlines()[0]
            f = line.split("|")
            self.assertEqual(len(f), 16, line)
            self.assertEqual(f[0:2], ["127.0.0.1", "-"])
            self.assertRegex(f[2], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")
            self.assertLess(abs(float(f[3]) - time.time()), 30)
            self.assertEqual(f[4:10], ["GET /hello?a=1 HTTP/1.1", "GET", "/hello?a=1", "HTTP/1.1",
                                       "200", "13"])
            self.assertEqual(f[10:13], ["-", "ag\\x22ent", "www.example.com"])
            self.assertRegex(f[13], r"^\d+\.\d{3}$")
            self.assertEqual(f[14], "200x")
            self.assertRegex(f[15], r"^\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]$")
        finally:
            Server.stop()
        for bad, needle in [
            ("$bogus", "access_log format: unknown variable at \"$bogus\""),
            ("$uri", "access_log format: unknown variable"),
            ("plain", "format must be combined, common or a string with $variables"),
        ]:
            with self.subTest(bad=bad):
                assert_refused(self, CONF.replace("        format: combined\n",
                                                  "        format: \"%s\"\n" % bad, 1), needle)


class TestConfig(unittest.TestCase):
    def test_keepalive_off_and_two_workers(self):
        conf = ("worker_processes: 2\n" + CONF.replace("keepalive_timeout: 2s", "keepalive_timeout: 0ms")
                .replace("client_max_body_size: 1k", "client_max_body_size: 0"))
        z = Zerg(conf, wait=False)
        make_tree(z.tmp)
        z.start()
        z.wait_listening()
        try:
            s = connect(z.ports[0])
            s.sendall(b"POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000)
            st, h, body, rest = read_response(s)
            self.assertEqual(st, 200)  # client_max_body_size 0: no limit
            self.assertEqual(h.get("connection"), "close")  # keepalive_timeout 0: no keep-alive
            self.assertTrue(closed_after(s))
            for _ in range(20):
                out = raw(z.ports[0], b"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n")
                self.assertEqual(status_of(out), 200)
                self.assertTrue(out.endswith(b"<h1>index</h1>\n"))
        finally:
            z.stop()

    def test_server_header_off_and_bad_config(self):
        z = Zerg(CONF.replace("server_name: [example.com]", "server_name: [example.com]\n      server_header: off"), wait=False)
        make_tree(z.tmp)
        z.start()
        z.wait_listening()
        try:
            out = raw(z.ports[0], b"GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            self.assertEqual(status_of(out), 200)
            self.assertNotIn(b"Server:", out)
        finally:
            z.stop()
        bad = CONF.replace("status: true", "status: true\n          root: /tmp")
        z = Zerg(bad, wait=False)
        r = subprocess.run([zgtest.ZERG_BIN, "-c", z.conf, "-t"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"exactly one of root, alias, return, status", r.stdout + open(
            os.path.join(z.tmp, "error.log"), "a+").read().encode())
        for text, needle in [
            ("add_header: DENY", "add_header: expected a mapping of name: value"),
            ("add_header: { Content-Type: text/css }",
             "add_header: Content-Type is set by the server"),
            ("add_header: { Content-Length: 5 }", "add_header: Content-Length is set by the server"),
            ('add_header: { "Bad Name": x }', 'invalid header name "Bad Name"'),
            ("allow: 10.0.0.1/8", '"10.0.0.1/8": expected an IPv4 or IPv6 address'),
            ("deny: [127.0.0.1, localhost]", '"localhost": expected an IPv4 or IPv6 address'),
            ("allow: []", "expected an address, ADDR/BITS, unix: or all"),
            ("alias: /tmp", "location /status: needs exactly one of root, alias, return, status"),
            ("fallback: index.html", "fallback: expected a path like /index.html"),
            ("fallback: /index.html", "location /status: fallback needs root or alias here"),
        ]:
            with self.subTest(text=text):
                assert_refused(self, CONF.replace("        - path: /status\n",
                                                  "        - path: /status\n          %s\n"
                                                  % text.replace("{", "{{").replace("}", "}}"), 1),
                               needle)


class TestLocationConfig(unittest.TestCase):
    def refused(self, location, needle):
        assert_refused(self, "load_modules: [http]\nservers:\n  - listen: [\"127.0.0.1:{port0}\"]\n"
                       "    module: http\n    http:\n      locations:\n        - " + location + "\n",
                       needle)

    def test_alias_needs_a_prefix_location_ending_in_slash(self):
        for path in ("=/x", "/x"):
            with self.subTest(path=path):
                self.refused('{{ path: "%s", alias: /tmp/ }}' % path,
                             "alias needs a prefix location ending in /")

    def test_redirect_unknown_variable(self):
        for loc in ("https://$hostname/", "https://${host/", "$", "x$1"):
            with self.subTest(loc=loc):
                self.refused('{{ path: /, return: {{ status: 301, location: "%s" }} }}'
                             % loc.replace("{", "{{"),
                             "return location: unknown variable")


ERROR_PAGES = """
load_modules: [http]
servers:
  - listen: ["127.0.0.1:{port0}"]
    module: http
    http:
      error_page: {{ 404: /errors/404.html, 405: /errors/405.html, 403: /errors/missing.html }}
      locations:
        - {{ path: /, root: "{tmp}/www" }}
        - {{ path: /private/, root: "{tmp}/www", deny: all }}
        - {{ path: =/hello, return: {{ status: 200, body: "hi" }} }}
"""


class TestErrorPages(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.z = Zerg(ERROR_PAGES, wait=False)
        errors = os.path.join(cls.z.tmp, "www", "errors")
        os.makedirs(errors)
        with open(os.path.join(errors, "404.html"), "w") as f:
            f.write("<h1>custom not found</h1>\n")
        with open(os.path.join(errors, "405.html"), "w") as f:
            f.write("<h1>custom method</h1>\n")
        with open(os.path.join(cls.z.tmp, "www", "index.html"), "w") as f:
            f.write("<h1>index</h1>\n")
        cls.z.start()
        cls.z.wait_listening()

    @classmethod
    def tearDownClass(cls):
        cls.z.stop()

    def ask(self, req, head=False):
        s = connect(self.z.ports[0])
        s.sendall(req)
        r = read_response(s, head=head)
        s.close()
        return r

    def test_custom_page_with_the_error_status(self):
        st, h, body, _ = self.ask(b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual((st, body), (404, b"<h1>custom not found</h1>\n"))
        self.assertEqual(h["content-type"], "text/html")
        self.assertNotIn("etag", h)  # not a cacheable representation of /nope
        # neither conditionals nor ranges turn it into a 304 or 206
        for extra in (b"If-None-Match: *\r\n", b"Range: bytes=0-1\r\n"):
            st, _, body, _ = self.ask(b"GET /nope HTTP/1.1\r\nHost: a\r\n%s\r\n" % extra)
            self.assertEqual((st, body), (404, b"<h1>custom not found</h1>\n"))
        st, h, body, _ = self.ask(b"HEAD /nope HTTP/1.1\r\nHost: a\r\n\r\n", head=True)
        self.assertEqual((st, body, h["content-length"]), (404, b"", "26"))
        # 405 keeps its Allow header
        st, h, body, _ = self.ask(b"POST /index.html HTTP/1.1\r\nHost: a\r\n"
                                  b"Content-Length: 0\r\n\r\n")
        self.assertEqual((st, body, h["allow"]), (405, b"<h1>custom method</h1>\n", "GET, HEAD"))

    def test_missing_page_falls_back_to_the_built_in_one(self):
        st, _, body, _ = self.ask(b"GET /private/x HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(st, 403)
        self.assertIn(b"403 Forbidden", body)

    def test_keep_alive_and_order(self):
        s = connect(self.z.ports[0])
        s.sendall(b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"
                  b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"
                  b"GET /private/ HTTP/1.1\r\nHost: a\r\n\r\n"
                  b"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n")
        got, rest = [], b""
        for _ in range(4):
            st, _, body, rest = read_response(s, rest)
            got.append((st, body[:14]))
        s.close()
        self.assertEqual(got, [(404, b"<h1>custom not"), (200, b"hi"), (403, b"<html>\r\n<head>"),
                               (200, b"<h1>index</h1>")])

    def test_bad_error_page_configs(self):
        for text, needle in [
            ("error_page: {{ 200: /x.html }}", '"200" is not a status 400..599'),
            ("error_page: {{ 404: x.html }}", "error_page 404: expected a path like /404.html"),
            ("error_page: {{ 404: /errors/ }}", "error_page 404: expected a path like /404.html"),
            ("error_page: {{ 404: /hello }}", "error_page 404: /hello is not under a root or alias location"),
            ("error_page: [404]", "error_page: expected a mapping of status: /path"),
        ]:
            with self.subTest(text=text):
                assert_refused(self, ERROR_PAGES.replace(
                    "      error_page: {{ 404: /errors/404.html, 405: /errors/405.html, "
                    "403: /errors/missing.html }}", "      " + text), needle)


VHOSTS = """
load_modules: [http]
servers:
  - listen: ["127.0.0.1:{port0}", "127.0.0.1:{port1}"]
    module: http
    http:
      server_name: [a.example.com]
      locations:
        - {{ path: =/who, return: {{ status: 200, body: "a" }} }}
  - listen: ["127.0.0.1:{port0}"]
    module: http
    default_server: true
    http:
      server_name: [b.example.com]
      locations:
        - {{ path: =/who, return: {{ status: 200, body: "b" }} }}
  - listen: ["127.0.0.1:{port0}"]
    module: http
    http:
      server_name: ["*.example.org", "www.example.*"]
      access_log: {{ path: "{tmp}/org.log", flush: 100ms }}
      client_max_body_size: 10
      locations:
        - {{ path: /, root: "{tmp}/www" }}
"""


EXPIRES_CONF = HTTP_SERVER + """      locations:
        - {{ path: /assets/, root: {tmp}/www, expires: 30d }}
        - {{ path: /sub/, root: {tmp}/www, expires: epoch }}
        - {{ path: =/style.css, root: {tmp}/www, expires: max }}
        - {{ path: /, root: {tmp}/www }}
"""


class TestExpires(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        Server.start(EXPIRES_CONF)

    @classmethod
    def tearDownClass(cls):
        Server.stop()

    def get(self, path, extra=""):
        resp = raw(Server.port, f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}"
                   "Connection: close\r\n\r\n".encode())
        head = resp.split(b"\r\n\r\n", 1)[0].decode()
        fields = dict(l.split(": ", 1) for l in head.split("\r\n")[1:])
        return status_of(resp), fields

    def test_duration_sets_expires_and_max_age(self):
        import email.utils
        status, h = self.get("/assets/app.js")
        self.assertEqual(status, 200)
        self.assertEqual(h["Cache-Control"], "max-age=2592000")
        date = email.utils.parsedate_to_datetime(h["Date"])
        expires = email.utils.parsedate_to_datetime(h["Expires"])
        self.assertEqual((expires - date).total_seconds(), 2592000)
        # a 304 carries them too; a 404 does not
        status, h = self.get("/assets/app.js", f"If-None-Match: {h['ETag']}\r\n")
        self.assertEqual((status, h["Cache-Control"]), (304, "max-age=2592000"))
        status, h = self.get("/assets/nothere.js")
        self.assertEqual(status, 404)
        self.assertNotIn("Expires", h)
        self.assertNotIn("Cache-Control", h)

    def test_epoch_max_and_off(self):
        status, h = self.get("/sub/")
        self.assertEqual((status, h["Expires"], h["Cache-Control"]),
                         (200, "Thu, 01 Jan 1970 00:00:01 GMT", "no-cache"))
        status, h = self.get("/style.css")
        self.assertEqual((status, h["Expires"], h["Cache-Control"]),
                         (200, "Thu, 31 Dec 2037 23:55:55 GMT", "max-age=315360000"))
        status, h = self.get("/index.html")
        self.assertEqual(status, 200)
        self.assertNotIn("Expires", h)

    def test_bad_expires(self):
        base = EXPIRES_CONF.replace("expires: 30d", "expires: %s")
        assert_refused(self, base % "soon", "expires: expected off, epoch, max or a duration")
        assert_refused(self, base % "4000d", "expires: expected off, epoch, max or a duration")
        ret = EXPIRES_CONF.replace("root: {tmp}/www, expires: 30d",
                                   'return: {{ status: 200, body: "x" }}, expires: 1h')
        assert_refused(self, ret, "location /assets/: expires is for files")


class TestVirtualHosts(unittest.TestCase):
    def test_host_picks_the_server_block(self):
        z = Zerg(VHOSTS, wait=False)
        make_tree(z.tmp)
        z.start()
        z.wait_listening()
        try:
            p0, p1 = z.ports[0], z.ports[1]

            def who(port, host):
                return curl("-H", f"Host: {host}", f"http://127.0.0.1:{port}/who")

            self.assertEqual(who(p0, "a.example.com"), b"a")
            self.assertEqual(who(p0, "B.Example.Com:80"), b"b")
            self.assertEqual(who(p0, "nobody.test"), b"b")  # default_server
            self.assertEqual(who(p1, "b.example.com"), b"a")  # only block a listens there
            # the wildcard block serves its own root, with its own limits and log
            for host in ("x.example.org", "www.example.net"):
                out = curl("-H", f"Host: {host}", f"http://127.0.0.1:{p0}/index.html")
                self.assertEqual(out, b"<h1>index</h1>\n")
            out = raw(p0, b"POST /index.html HTTP/1.1\r\nHost: x.example.org\r\n"
                          b"Content-Length: 11\r\n\r\nhello world")
            self.assertEqual(status_of(out), 413)
            out = raw(p0, b"POST /who HTTP/1.1\r\nHost: a.example.com\r\nConnection: close\r\n"
                          b"Content-Length: 11\r\n\r\nhello world")
            self.assertEqual(status_of(out), 200)
            # one keep-alive connection, a different host per request
            s = connect(p0)
            for host, body in ((b"a.example.com", b"a"), (b"b.example.com", b"b"),
                               (b"x.example.org", None), (b"a.example.com", b"a")):
                path = b"/index.html" if body is None else b"/who"
                s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
                st, h, got, rest = read_response(s)
                self.assertEqual(st, 200)
                self.assertEqual(got, body if body is not None else b"<h1>index</h1>\n")
            s.close()
            log = os.path.join(z.tmp, "org.log")
            self.assertTrue(wait_for_text(log, "GET /index.html"), "no access log line")
            with open(log) as f:
                self.assertNotIn("/who", f.read())
        finally:
            z.stop()

    def test_only_http_blocks_share_an_address(self):
        bad = ("load_modules: [http, echo]\nservers:\n"
               "  - {{ listen: \"127.0.0.1:{port0}\", module: http }}\n"
               "  - {{ listen: \"127.0.0.1:{port0}\", module: echo }}\n")
        z = Zerg(bad, wait=False)
        r = subprocess.run([zgtest.ZERG_BIN, "-c", z.conf, "-t"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"only blocks of one module with virtual hosts", r.stdout)


def wait_for_text(path, text, timeout=5.0):
    """Whether text shows up in the file at path within timeout."""
    def seen():
        try:
            with open(path) as f:
                return text in f.read()
        except OSError:
            return False
    return bool(wait_for(seen, timeout))

if __name__ == "__main__":
    zgtest.main()

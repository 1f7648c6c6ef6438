"""test_conf_include - include items in the servers list through the real
binary: a site per file (a sequence of blocks or one block), glob patterns
relative to the including file, nesting, errors that name the included file
and its line, and a reload that picks up a file added to or removed from
the folder."""
import os
import signal
import socket
import tempfile
import unittest

import zgtest
from zgtest import Zerg, run_zerg, wait_for

from httptest import raw


def site(port, body, names=None):
    """One http server block as a YAML mapping (indented for a list item
    when item is true)."""
    lines = [f'listen: ["127.0.0.1:{port}"]', "module: http", "http:"]
    if names:
        lines.append(f"  server_name: [{', '.join(names)}]")
    lines += ["  locations:",
              f'    - {{ path: /, return: {{ status: 200, body: "{body}\\n" }} }}']
    return "\n".join(lines) + "\n"


def as_item(block):
    out = block.splitlines()
    return "\n".join(("- " if i == 0 else "  ") + l for i, l in enumerate(out)) + "\n"


def body_of(port, host="x.test"):
    resp = raw(port, f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    return resp.split(b"\r\n\r\n", 1)[1].decode() if b"\r\n\r\n" in resp else resp.decode()


class IncludeCheck(unittest.TestCase):
    """zerg -t on configurations with include items."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="zginc-")
        os.mkdir(os.path.join(self.dir, "sites"))
        self.port = zgtest.free_port()

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def main(self, servers):
        return self.write("zerg.yaml", f"modules_path: {zgtest.ZERG_MODULES}\n"
                          "load_modules: [echo, http]\nservers:\n" + servers)

    def check(self, conf):
        return run_zerg(["-t", "-c", conf])

    def test_sequences_single_blocks_nesting_and_empty_matches(self):
        self.write("sites/a.yaml", as_item(site(self.port, "a")) + "- include: more/*.yaml\n")
        self.write("sites/b.yaml", site(self.port + 1, "b"))
        self.write("sites/empty.yaml", "")
        os.mkdir(os.path.join(self.dir, "sites", "more"))
        self.write("sites/more/c.yaml", as_item(site(self.port + 2, "c")))
        conf = self.main("  - include: sites/*.yaml\n  - include: [none/*.yaml]\n")
        rc, out = self.check(conf)
        self.assertEqual(rc, 0, out)

    def test_dump_prints_every_file_read_in_order(self):
        a = self.write("sites/10-a.yaml", as_item(site(self.port, "a")))
        b = self.write("sites/20-b.yaml", site(self.port + 1, "b"))  # no final newline below
        with open(b, "a") as f:
            f.write("# end")
        conf = self.main("  - include: sites/*.yaml\n")
        rc, out = run_zerg(["-T", "-c", conf])
        self.assertEqual(rc, 0, out)
        expect = "zerg: configuration file %s test is successful\n" % conf
        for path in (conf, a, b):
            with open(path) as f:
                text = f.read()
            expect += "# configuration file %s:\n%s%s\n" % (
                path, text, "" if text.endswith("\n") else "\n")
        self.assertEqual(out, expect)
        # a broken file: -T fails as -t does, and prints no file
        self.write("sites/30-c.yaml", "- [\n")
        rc, out = run_zerg(["-T", "-c", conf])
        self.assertEqual(rc, 1)
        self.assertNotIn("# configuration file", out)

    def test_errors_name_the_included_file(self):
        self.write("sites/a.yaml", site(self.port, "a") + "bogus: [\n")
        rc, out = self.check(self.main("  - include: sites/a.yaml\n"))
        self.assertEqual(rc, 1)
        self.assertRegex(out, r"zerg: \S*sites/a\.yaml:\d+:\d+: .*flow")
        self.write("sites/a.yaml", site(self.port, "a").replace("path: /", "pth: /"))
        rc, out = self.check(self.main("  - include: sites/a.yaml\n"))
        self.assertEqual(rc, 1)
        self.assertRegex(out, r'zerg: \S*sites/a\.yaml:5:\d+: unknown key "pth"')

    def test_a_missing_file_without_wildcards_is_an_error(self):
        rc, out = self.check(self.main("  - include: sites/nothere.yaml\n"))
        self.assertEqual(rc, 1)
        self.assertRegex(out, r"zerg\.yaml:4:14: include: cannot open \S*sites/nothere\.yaml: "
                              r"No such file or directory")

    def test_a_file_including_itself_is_stopped(self):
        self.write("sites/loop.yaml", "- include: loop.yaml\n")
        rc, out = self.check(self.main("  - include: sites/loop.yaml\n"))
        self.assertEqual(rc, 1)
        self.assertIn("include: nested more than 8 files deep", out)

    def test_includes_that_bring_no_server_leave_nothing_to_serve(self):
        rc, out = self.check(self.main("  - include: sites/*.yaml\n"))
        self.assertEqual(rc, 1)
        self.assertIn("servers: no server block", out)

    def test_bad_include_values(self):
        rc, out = self.check(self.main("  - include: {a: 1}\n"))
        self.assertEqual(rc, 1)
        self.assertIn("expected a string or a list of strings", out)
        self.write("sites/a.yaml", "just a string\n")
        rc, out = self.check(self.main("  - include: sites/a.yaml\n"))
        self.assertEqual(rc, 1)
        self.assertIn("servers: expected a list of server blocks", out)


class IncludeServe(unittest.TestCase):
    def test_sites_from_files_in_order_and_reload_picks_up_the_folder(self):
        z = Zerg("""
load_modules: [echo, http]
servers:
  - listen: ["127.0.0.1:{port0}"]
    module: echo
  - include: sites/*.yaml
""", wait=False)
        self.addCleanup(z.stop)
        sites = os.path.join(z.tmp, "sites")
        os.mkdir(sites)
        port = z.ports[1]

        def put(name, text):
            with open(os.path.join(sites, name), "w") as f:
                f.write(text)

        # two sites on one address: the first in file order is the default
        put("10-a.yaml", site(port, "a", ["a.test"]))
        put("20-b.yaml", as_item(site(port, "b", ["b.test"])))
        z.start()
        z.wait_listening()
        self.assertEqual(body_of(port, "b.test"), "b\n")
        self.assertEqual(body_of(port, "a.test"), "a\n")
        self.assertEqual(body_of(port, "other.test"), "a\n")
        # a new file: served after a reload
        new_port = z.ports[2]
        put("30-c.yaml", site(new_port, "c"))
        z.send(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: "reload done" in z.output(), 10), z.output())
        self.assertEqual(wait_for(lambda: self.try_body(new_port), 10), "c\n")
        # a file removed: its address closed after the next reload
        os.unlink(os.path.join(sites, "30-c.yaml"))
        z.send(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: z.output().count("reload done") == 2, 10), z.output())
        self.assertTrue(wait_for(lambda: self.try_body(new_port) is None, 10))
        # a broken file: the reload is refused, the running sites stay
        put("40-bad.yaml", "- listen: [\n")
        z.send(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: "reload failed" in z.output(), 10), z.output())
        self.assertIn("40-bad.yaml:2:1", z.output())
        self.assertEqual(body_of(port, "b.test"), "b\n")

    @staticmethod
    def try_body(port):
        try:
            return body_of(port)
        except OSError:
            return None


if __name__ == "__main__":
    zgtest.main()

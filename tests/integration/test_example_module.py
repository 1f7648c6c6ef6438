"""The module ABI from outside the tree: install the public header and the
pkg-config file into a staging folder, build examples/uppercase with
`pkg-config --cflags zerg` only, and serve with it through the real binary."""
import os
import shutil
import socket
import subprocess
import tempfile
import unittest

import zgtest
from zgtest import Zerg

BUILDDIR = os.environ.get("ZERG_BUILDDIR", ".")
SRCDIR = os.environ.get("ZERG_SRCDIR", ".")


class ExampleModuleTest(unittest.TestCase):
    def test_out_of_tree_module(self):
        stage = tempfile.mkdtemp(prefix="zgstage-")
        subprocess.run(["make", "-s", "-C", BUILDDIR, "install-zergincludeHEADERS",
                        "install-pkgconfigDATA", f"DESTDIR={stage}"], check=True)
        pcdirs = [d for d, _, files in os.walk(stage) if "zerg.pc" in files]
        self.assertEqual(len(pcdirs), 1)
        env = dict(os.environ, PKG_CONFIG_PATH=pcdirs[0], PKG_CONFIG_SYSROOT_DIR=stage,
                   PKG_CONFIG_LIBDIR=pcdirs[0])
        cflags = subprocess.run(["pkg-config", "--cflags", "zerg"], env=env, check=True,
                                capture_output=True, text=True).stdout.split()
        self.assertTrue(any(f.startswith("-I" + stage) for f in cflags), cflags)
        mods = tempfile.mkdtemp(prefix="zgmods-")
        for m in ("echo.so", "http.so"):
            shutil.copy(os.path.join(zgtest.ZERG_MODULES, m), mods)
        cc = os.environ.get("CC", "cc")
        subprocess.run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC"]
                       + cflags + ["-o", os.path.join(mods, "uppercase.so"),
                                   os.path.join(SRCDIR, "examples/uppercase/uppercase.c")],
                       check=True)
        text = f"""
modules_path: {mods}
load_modules: [echo, uppercase, http]
servers:
  - listen: ["127.0.0.1:{{port0}}"]
    module: uppercase
  - listen: ["127.0.0.1:{{port1}}"]
    module: http
    http:
      locations: [ {{{{ path: /metrics, status: true }}}} ]
"""
        with Zerg(text) as z:
            with socket.create_connection(("127.0.0.1", z.ports[0])) as s:
                s.sendall(b"hello, zerg!")
                self.assertEqual(zgtest.recv_exact(s, 12), b"HELLO, ZERG!")
            # its metrics hook shows on the http module's status page
            with socket.create_connection(("127.0.0.1", z.ports[1])) as s:
                s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
                page = b""
                while chunk := s.recv(65536):
                    page += chunk
            self.assertIn(b'\nzerg_uppercase_letters_total 9\n', page)


if __name__ == "__main__":
    zgtest.main()

#!/usr/bin/python3
"""test_accept_limit - accept failures through the real binary: when a
worker runs out of descriptors (its RLIMIT_NOFILE, here set by
worker_rlimit_nofile) or of fixed-file slots, the log names the limit hit
with its value, at most once a second, counting the failures it did not
log."""
import re
import socket
import time
import unittest

import zgtest
from zgtest import Zerg

CONF = """load_modules: [echo]
worker_rlimit_nofile: 512
{uring}
servers:
  - listen: ["127.0.0.1:{{port0}}"]
    module: echo
    backlog: 1024
"""
OVER = 700  # more than fit


class AcceptLimit(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        zgtest.raise_nofile(OVER + 100)

    def flood(self, uring, seconds=3.0):
        """OVER connections; the accept lines logged over seconds after the
        first one."""
        with Zerg(CONF.format(uring=uring)) as z:
            mark = z.log_mark()
            conns = [socket.create_connection(("127.0.0.1", z.ports[0]), timeout=5)
                     for _ in range(OVER)]
            first = z.wait_log("accept on", since=mark)
            time.sleep(seconds)
            lines = [l for l in z.log_since(mark).splitlines() if "accept on" in l]
            for s in conns:
                s.close()
            return first, lines

    def assert_rate_limited(self, lines, seconds):
        # once a second, the first at once: seconds + 1, and one for a
        # second boundary the sleep's start and end may straddle
        self.assertLessEqual(len(lines), seconds + 2, "\n".join(lines))
        self.assertGreaterEqual(len(lines), 2, "\n".join(lines))
        self.assertTrue(any(re.search(r"\((\d+) more failures since the last line\)", l)
                            for l in lines[1:]), "\n".join(lines))

    def test_plain_descriptors_name_the_process_limit(self):
        first, lines = self.flood("uring: {{ fixed_files: false }}")
        self.assertIn("the process's open file limit is reached (RLIMIT_NOFILE 512)", first)
        self.assert_rate_limited(lines, 3)

    def test_fixed_files_name_the_table(self):
        first, lines = self.flood("")
        self.assertIn("the ring's fixed file table is full (448 slots: worker_connections 16384 "
                      "cut to fit RLIMIT_NOFILE 512)", first)
        self.assert_rate_limited(lines, 3)


if __name__ == "__main__":
    zgtest.main()

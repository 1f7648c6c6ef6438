"""test_memory - what a hostile client can make the http module hold, through
the real zerg binary: clients that pipeline a thousand requests in one write
and never read (receive buffer 4 KB) must not grow the worker beyond the
documented per-connection bound (zerg-http(5), MEMORY PER CONNECTION) times
their number, whatever answers them: a static file, a `return` answer, a
proxy_pass answer, a large (mapped) file, a file streamed through buffers. Files come from the open file
cache: answered at once, as `return` answers are, not after an open."""
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zgtest  # noqa: E402
from zgtest import Zerg  # noqa: E402
from httptest import HTTP_SERVER  # noqa: E402

CONNS = 40
REQUESTS = 1000
FILE = 100 * 1024
BIG = 3 * 1024 * 1024  # under file_mmap_max: sent from a mapping
HUGE = 6 * 1024 * 1024  # above it: streamed through two file_buffer buffers
FILE_BUFFER = 256 * 1024
RETURN_BODY = 4096

# output_high (uring) and input limit: the configured parts of the bound
OUTPUT_HIGH = 256 * 1024
INPUT_LIMIT = 64 * 1024
# the allocator may map a new arena of its own
ALLOCATOR_SLACK = 64 << 20

# the worker's receive buffers: a fixed cost (once traffic has cycled
# through them all), kept small so that it does not hide a per-connection one
RING = 256 * 16384

CONF = "uring: {{ buffers: 256 }}\n" + HTTP_SERVER + """      send_timeout: 30s
      keepalive_requests: 100000
      open_file_cache_valid: 60s
      locations:
        - path: /
          root: {tmp}/www
        - path: =/ret
          return:
            status: 200
            body: "@BODY@"
        - path: /up/
          proxy_pass: "http://127.0.0.1:{port1}/"
  - listen: ["127.0.0.1:{port1}"]
    module: http
    http:
      keepalive_requests: 100000
      locations:
        - path: /
          root: {tmp}/www
""".replace("@BODY@", "r" * RETURN_BODY)


def worker_pid(z):
    ws = z.workers()
    assert len(ws) == 1, ws
    return ws[0]


def vm_size_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1])
    return 0


def settled_rss_kb(pid, quiet=0.6, timeout=15.0):
    """The worker's RSS once it stopped changing for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    last, since = zgtest.rss_kb(pid), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = zgtest.rss_kb(pid)
        if abs(now - last) > 64:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return zgtest.rss_kb(pid)


def get_close(port, target):
    """One request with Connection: close; the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        got = []
        zgtest.recv_to_eof(s, got.append)
        return b"".join(got)


def never_reading_client(port, target):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode() * REQUESTS)
    return s


class NeverReadingPipelinedClient(unittest.TestCase):
    # a fresh worker per test: what an earlier one left in its pools would
    # hide what this one makes it hold
    def setUp(self):
        self.z = Zerg(CONF, wait=False)
        www = os.path.join(self.z.tmp, "www")
        os.makedirs(www)
        with open(os.path.join(www, "file"), "wb") as f:
            f.write(os.urandom(FILE))
        with open(os.path.join(www, "big"), "wb") as f:
            f.write(os.urandom(BIG))
        with open(os.path.join(www, "huge"), "wb") as f:
            f.write(os.urandom(HUGE))
        self.z.start()
        self.z.wait_listening()

    def tearDown(self):
        self.z.stop()

    def check_bounded(self, target, answer, conns_each=1):
        """CONNS clients pipeline REQUESTS requests for target (answers of
        `answer` body bytes) and never read: per connection (conns_each of
        them in this worker when it proxies to itself) the worker grows by at
        most the bound: output_high, the answer that crossed it, the input the
        core keeps. Its resident memory (mapped files count once faulted in)
        and its address space (answers mapped but not yet sent) both."""
        pid = worker_pid(self.z)
        # warm: the page cache, the mapping and pools for one answer
        self.assertIn(b" 200 ", get_close(self.z.ports[0], target)[:20])
        base = settled_rss_kb(pid)
        base_vm = vm_size_kb(pid)
        socks = [never_reading_client(self.z.ports[0], target) for _ in range(CONNS)]
        try:
            grown = settled_rss_kb(pid) - base
            grown_vm = vm_size_kb(pid) - base_vm
            bound = (CONNS * conns_each * (OUTPUT_HIGH + answer + 1024 + INPUT_LIMIT) + RING) // 1024
            print(f"{target}: RSS grew {grown} KB, address space {grown_vm} KB (bound {bound} KB)")
            self.assertLessEqual(grown, bound,
                                 f"{target}: worker grew {grown} KB for {CONNS} never-reading "
                                 f"clients, bound {bound} KB")
            self.assertLessEqual(grown_vm, bound + ALLOCATOR_SLACK // 1024,
                                 f"{target}: worker's address space grew {grown_vm} KB for "
                                 f"{CONNS} never-reading clients, bound {bound} KB")
        finally:
            for s in socks:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                s.close()
        # the worker is still serving
        self.assertIn(b" 200 ", get_close(self.z.ports[0], "/ret")[:20])

    def test_static_file(self):
        self.check_bounded("/file", FILE)

    def test_return(self):
        self.check_bounded("/ret", RETURN_BODY)

    def test_proxy_pass(self):
        # the upstream is zerg's own second block: its side counts too
        self.check_bounded("/up/file", FILE, conns_each=2)

    def test_large_file(self):
        self.check_bounded("/big", BIG)

    def test_streamed_file(self):
        self.check_bounded("/huge", 2 * FILE_BUFFER)


if __name__ == "__main__":
    zgtest.main()

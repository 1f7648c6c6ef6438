"""test_proxy_helpers - shared helpers of the proxy integration tests: threaded
backend servers, a config builder, small clients. Not a test by itself."""
import os
import re
import socket
import struct
import threading

import zgtest
from zgtest import free_port

HERE = os.path.dirname(os.path.abspath(__file__))


# ---- backends -----------------------------------------------------------

class Backend:
    """A threaded TCP server running handler(sock, backend) per connection."""

    def __init__(self, handler, host="127.0.0.1", port=0, name="b", backlog=512):
        self.handler = handler
        self.host = host
        self.name = name
        self.backlog = backlog
        self.accepted = 0
        self.lock = threading.Lock()
        self.conns = set()
        self.events = []
        self.port = port
        self.lsock = None
        self.running = False
        self.start()

    def start(self):
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(self.backlog)
        s.settimeout(0.05)
        self.port = s.getsockname()[1]
        self.lsock = s
        self.running = True
        self.thread = threading.Thread(target=self._accept_loop, args=(s,), daemon=True)
        self.thread.start()
        return self

    def addr(self):
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def _accept_loop(self, lsock):
        while self.running and lsock is self.lsock:
            try:
                c, _ = lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            c.settimeout(None)
            with self.lock:
                self.accepted += 1
                self.conns.add(c)
            threading.Thread(target=self._run, args=(c,), daemon=True).start()

    def _run(self, c):
        try:
            self.handler(c, self)
        except OSError as e:
            self.note(("error", type(e).__name__))
        finally:
            with self.lock:
                self.conns.discard(c)
            try:
                c.close()
            except OSError:
                pass

    def note(self, ev):
        with self.lock:
            self.events.append(ev)

    def stop(self, reset=False):
        """Stop listening and close every connection (RST when reset)."""
        self.running = False
        ls, self.lsock = self.lsock, None
        if ls:
            ls.close()
        self.thread.join(1)
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                if reset:
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.close()
            except OSError:
                pass


def echo_handler(c, b):
    while True:
        d = c.recv(262144)
        if not d:
            c.shutdown(socket.SHUT_WR)
            return
        c.sendall(d)


def tag_handler(c, b):
    """Says its name, then echoes."""
    c.sendall(b.name.encode() + b"\n")
    echo_handler(c, b)


def recv_line(s, timeout=5.0):
    s.settimeout(timeout)
    buf = b""
    while not buf.endswith(b"\n"):
        d = s.recv(1)
        if not d:
            break
        buf += d
    return buf.decode().strip()


def who(port, src=None, timeout=5.0):
    """Connect through the proxy and return the name of the backend reached."""
    s = socket.socket()
    try:
        s.settimeout(timeout)
        if src:
            s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        return recv_line(s, timeout)
    finally:
        s.close()


def conf(servers, extra="", upstream_extra="", workers=None):
    lines = ["load_modules: [proxy]"]
    if workers:
        lines.append(f"worker_processes: {workers}")
    lines += [
        "servers:",
        '  - listen: ["127.0.0.1:{port0}"]',
        "    module: proxy",
        "    proxy:",
        "      upstream:",
    ]
    for ln in upstream_extra.strip("\n").splitlines():
        lines.append("        " + ln)
    lines.append("        servers:")
    for s in servers:
        lines.append("          - " + s)
    for ln in extra.strip("\n").splitlines():
        lines.append("      " + ln)
    text = "\n".join(lines) + "\n"
    # Zerg() runs str.format on the text: keep YAML braces literal
    text = text.replace("{", "{{").replace("}", "}}")
    return re.sub(r"\{\{(tmp|modules|port\d)\}\}", r"{\1}", text)


def settle(b, timeout=3.0):
    """Wait until zerg's start-up probe (which went through the proxy) is over
    at backend b (its handler has returned: what it noted is in), then forget
    its events."""
    def over():
        with b.lock:
            return b.accepted >= 1 and not b.conns
    zgtest.wait_until(over, timeout, "the start-up probe's session to end at the backend")
    with b.lock:
        b.events.clear()


def dead_port():
    return free_port()

"""zgtest - helpers for integration tests that run the real zerg binary.

Environment (set by `make check`): ZERG_BIN (the zerg binary), ZERG_MODULES
(a folder holding every built module .so), ZERG_SHARED (../shared, optional).
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

ZERG_BIN = os.environ.get("ZERG_BIN", os.path.abspath("zerg"))
ZERG_MODULES = os.environ.get("ZERG_MODULES", os.path.abspath("build-modules"))
SHARED = os.environ.get("ZERG_SHARED", "")

# The socket and /proc helpers live once, in the benchmarks' library (which
# must keep running from a bare source tree, so the tests import it).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "bench", "common"))
import benchlib  # noqa: E402
from benchlib import free_port, free_ports, pids  # noqa: E402,F401


def wait_port(host, port, timeout=10.0):
    """Wait until host:port accepts a TCP connection."""
    if not benchlib.wait_port(host, port, timeout):
        raise TimeoutError(f"{host}:{port} not listening after {timeout}s")
    return True


def wait_for(pred, timeout=10.0, step=0.02):
    """Poll pred until it returns something true (returned) or timeout passes
    (then its last answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def wait_until(pred, timeout=10.0, what="a condition", step=0.01, detail=None):
    """Poll pred until it returns something true, and return that. After
    timeout seconds raise AssertionError naming what was awaited (and
    detail(), when given: a log tail, the state seen last)."""
    v = wait_for(pred, timeout, step)
    if v:
        return v
    msg = f"timed out after {timeout}s waiting for {what}"
    if detail is not None:
        msg += ":\n" + str(detail())
    raise AssertionError(msg)


def holds(pred, duration, step=0.01):
    """True when pred stays true for duration seconds (checked every step).
    For tests whose point is that something does NOT happen within a time."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        if not pred():
            return False
        time.sleep(step)
    return bool(pred())


def in_parallel(target, n, timeout=30.0):
    """Run target(i) for i in range(n), each in a thread of its own, and wait
    for them all, timeout seconds in all (None: no bound); a thread still
    running then fails the caller."""
    ts = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(n)]
    for t in ts:
        t.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    for t in ts:
        t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
    alive = sum(t.is_alive() for t in ts)
    if alive:
        raise AssertionError(f"{alive} of {n} threads still running after {timeout}s")


def proc_state(pid):
    """The state letter of pid from /proc (R, S, Z, ...); None once gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def tcp_peers(port):
    """(peer address, peer port) of the TCP connections whose local port is
    port and which that side has not closed yet (established or close-wait;
    a connection still in the accept queue counts)."""
    out = subprocess.run(["ss", "-tnH", "state", "established", "state", "close-wait",
                          f"( sport = :{port} )"], capture_output=True, text=True).stdout
    peers = []
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 5:
            host, _, p = f[4].rpartition(":")
            peers.append((host.strip("[]"), int(p)))
    return peers


def wait_consumed(sock, timeout=10.0):
    """Wait until the server has read all that the connected TCP socket sock
    sent (sock's send queue and the server side's receive queue are empty,
    as ss shows them): the bytes are in the server's hands, not in flight."""
    me, peer = sock.getsockname()[1], sock.getpeername()[1]

    def queues():
        out = subprocess.run(["ss", "-tnH", "state", "established",
                              f"( sport = :{me} or dport = :{me} )"],
                             capture_output=True, text=True).stdout
        q = {}
        for line in out.splitlines():
            f = line.split()
            if len(f) >= 4 and f[0].isdigit():
                q[int(f[2].rpartition(":")[2])] = (int(f[0]), int(f[1]))
        return q

    def done():
        q = queues()
        return me in q and peer in q and q[me][1] == 0 and q[peer][0] == 0
    wait_until(done, timeout, f"the server to read what port {me} sent", detail=queues)


def tcp_queues(port, state="established"):
    """[(recv-q, send-q)] of the TCP sockets in state whose local port is
    port, from ss: a way to see that a peer stopped reading (its recv-q and
    our send-q stay full); for a listener, recv-q is its accept queue."""
    out = subprocess.run(["ss", "-tnH", "state", state, f"( sport = :{port} )"],
                         capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 2 and f[0].isdigit():
            rows.append((int(f[0]), int(f[1])))
    return rows


def proc_children(pid):
    """Direct children of pid (from /proc)."""
    return sorted(p for p, (ppid, _) in benchlib.proc_table().items() if ppid == pid)


def cpu_ticks(pid):
    """utime+stime of pid in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def raise_nofile(n):
    """Let this process open n descriptors (its soft RLIMIT_NOFILE raised
    toward the hard one), or skip the test where the hard limit is lower."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < n:
        raise unittest.SkipTest(f"RLIMIT_NOFILE hard limit {hard} < {n}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, n), hard))


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Zerg:
    """A running zerg: `with Zerg(yaml_text) as z:`.

    The text may use {modules}, {tmp} and {port0}..{port9}; each {portN} is a
    fresh free port (z.ports[N]). Unless the text sets them, worker_processes
    is 1 and error_log goes to {tmp}/error.log at level info.
    """

    def __init__(self, text, wait=True, extra_args=(), check=True, env=None):
        self.tmp = tempfile.mkdtemp(prefix="zgtest-")
        self.ports = free_ports(10)
        subs = {"modules": ZERG_MODULES, "tmp": self.tmp}
        subs.update({f"port{i}": p for i, p in enumerate(self.ports)})
        body = text.format(**subs)
        head = "" if "modules_path" in body else f"modules_path: {ZERG_MODULES}\n"
        if "worker_processes" not in body:
            head += "worker_processes: 1\n"
        self.own_log = "error_log" not in body
        if self.own_log:
            head += f"error_log: {{ path: {self.tmp}/error.log, level: info }}\n"
        if "pid:" not in body:
            head += f"pid: {self.tmp}/zerg.pid\n"
        self.conf = os.path.join(self.tmp, "zerg.yaml")
        with open(self.conf, "w") as f:
            f.write(head + body)
        self.wait = wait
        self.extra_args = list(extra_args)
        self.proc = None
        self.check = check
        self.env = env

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        # stdin is not a terminal, as under systemd (a master on a terminal
        # ignores SIGWINCH)
        self.proc = subprocess.Popen([ZERG_BIN, "-c", self.conf] + self.extra_args,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=self.env)
        if self.wait:
            self.wait_listening()
        return self

    def wait_listening(self, timeout=10.0):
        """Wait until the master says its workers are ready (in the error log
        this class sets up), then for the first port the config mentions."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("zerg exited with %s:\n%s%s" % (
                    self.proc.returncode, self.proc.stdout.read().decode(errors="replace"),
                    self.output()))
            if not self.own_log or "workers ready" in self.output():
                break
            time.sleep(0.02)
        with open(self.conf) as f:
            text = f.read()
        for p in self.ports:
            if str(p) in text:
                host = "::1" if f"[::1]:{p}" in text and f"127.0.0.1:{p}" not in text else "127.0.0.1"
                try:
                    wait_port(host, p, timeout)
                except TimeoutError:
                    raise AssertionError("zerg did not listen:\n" + self.output())
                break

    def workers(self):
        return proc_children(self.proc.pid)

    def send(self, sig):
        """Send sig to the master."""
        os.kill(self.proc.pid, sig)

    def log_path(self):
        return os.path.join(self.tmp, "error.log")

    def log_mark(self):
        """Where the error log ends now: pass it to wait_log to see only what
        is written from here on."""
        try:
            return os.path.getsize(self.log_path())
        except OSError:
            return 0

    def log_since(self, mark=0):
        try:
            with open(self.log_path(), "rb") as f:
                f.seek(mark)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def wait_log(self, *texts, since=0, timeout=10.0, count=1):
        """Wait until one of texts appears (count times) in the error log
        after offset since; returns the first line holding it. Raises
        AssertionError with the log's tail when timeout passes."""
        def seen():
            lines = [l for l in self.log_since(since).splitlines() if any(t in l for t in texts)]
            return lines[0] if len(lines) >= count else None
        return wait_until(seen, timeout, f"{count}x {' or '.join(map(repr, texts))} in the error log",
                          detail=lambda: self.log_since(since)[-3000:])

    def reload(self, timeout=15.0):
        """SIGHUP, then wait until the master has finished that reload (its
        'reload done' or 'reload failed' line); returns that line. One at a
        time: signals do not queue, and a SIGHUP sent while the master is busy
        with the last one would merge with another."""
        mark = self.log_mark()
        self.send(signal.SIGHUP)
        return self.wait_log("reload done", "reload failed", since=mark, timeout=timeout)

    def wait_workers(self, n, timeout=10.0):
        """Wait until the master has n worker processes, none of them a
        zombie; returns their pids."""
        def ok():
            ws = self.workers()
            return ws if len(ws) == n and all(proc_state(w) not in ("Z", None) for w in ws) else None
        return wait_until(ok, timeout, f"{n} workers", detail=lambda: (self.workers(), self.output()[-2000:]))

    def output(self):
        """What zerg printed plus its error log, for failure messages."""
        log = ""
        try:
            with open(os.path.join(self.tmp, "error.log")) as f:
                log = f.read()
        except OSError:
            pass
        return log

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Stop zerg; returns its exit code. Fails when zerg (master or a
        worker) printed a sanitizer report while it ran."""
        if self.proc is None:
            return None
        if self.proc.stdout.closed:  # stopped already
            return self.proc.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("zerg did not stop in time:\n" + self.output())
        check_sanitizers(self.proc.stdout.read().decode(errors="replace"))
        self.proc.stdout.close()
        return self.proc.returncode


# What ASan, LeakSanitizer and UBSan print (to the stderr every process of
# zerg shares) when they find something.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def check_sanitizers(text):
    """Raise AssertionError when text holds a sanitizer report."""
    for mark in SANITIZER_MARKS:
        if mark in text:
            raise AssertionError("sanitizer report from zerg:\n" + text[-6000:])


def run_zerg(args, timeout=10):
    """Run zerg with args to completion: (exit code, stdout+stderr)."""
    r = subprocess.run([ZERG_BIN] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    out = r.stdout.decode(errors="replace")
    check_sanitizers(out)
    return r.returncode, out


def recv_to_eof(sock, each=None, bufsize=1 << 16):
    """Read sock until the peer's FIN and return how many bytes came; each
    (when given) sees every piece as it arrives."""
    n = 0
    while True:
        d = sock.recv(bufsize)
        if not d:
            return n
        if each is not None:
            each(d)
        n += len(d)


def recv_all(sock):
    """Every byte sock sends until the peer's FIN."""
    data = bytearray()
    recv_to_eof(sock, data.extend)
    return bytes(data)


def recv_message(sock, buf=b""):
    """The next HTTP message from sock, buf being what came of it already,
    its body as long as its Content-Length says (none: empty): (head, body,
    what came after it), or None where the peer closes first."""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        if not d:
            return None
        buf += d
    head, buf = buf.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(buf) < length:
        d = sock.recv(65536)
        if not d:
            return None
        buf += d
    return head, buf[:length], buf[length:]


def recv_exact(sock, n, timeout=10.0):
    sock.settimeout(timeout)
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(1 << 20, n - len(buf)))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def main():
    """Run the calling file's unittest cases; end with 'N passed, N failed'."""
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules["__main__"])
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    failed = len(result.failures) + len(result.errors)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    sys.exit(1 if failed else 0)

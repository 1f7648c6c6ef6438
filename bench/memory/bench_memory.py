#!/usr/bin/env python3
"""bench_memory.py - worker memory per connection: zerg against nginx (one
worker) and HAProxy (one thread, for the proxy module), on the same loads in
the same run. Each figure is the growth of the serving process's resident
memory (VmRSS in /proc/PID/status of the worker, or of HAProxy's process)
while the connections are held, divided by their number:

  idle-http      N keep-alive connections, one small request each, then idle
                 (zerg http, nginx)              target: <= 1 KB per connection
  idle-proxy     N TCP sessions through the proxy to an echo backend, one
                 message each, then idle (zerg proxy, HAProxy mode tcp)
                                                 target: <= HAProxy's
  idle-echo      N echo connections, one message each, then idle (zerg only)
                                                 target: <= 1 KB per connection
  idle-tls       N TLS 1.3 keep-alive connections (ECDSA P-256, the same
                 certificate for both), one small request each, then idle
                 (zerg http, nginx)              target: <= nginx's
  handshake-tls  N TLS 1.3 connections that sent their ClientHello, got the
                 server's flight and stall there, in the middle of the
                 handshake (zerg http, nginx)    target: <= nginx's
  pipelined      40 clients that write ~1000 `GET /file` (100 KB file) at once
                 with a 4 KB receive buffer and never read (zerg http, nginx)
                 target: <= the bound of zerg-http(5) MEMORY PER CONNECTION

The table goes to stdout (and --out); the exit status is 1 when a target is
missed. The descriptor limit is raised to its hard limit (the idle loads need
N, N and 2N descriptors here and in the server); N is cut to fit when it
cannot be.

  python3 bench/memory/bench_memory.py --zerg BUILD/zerg --modules BUILD/build-modules
        [--n 10000] [--pipelined 40] [--out results.txt]

Needs nginx (Debian's nginx-light is enough) and haproxy; a row whose peer
is missing is printed without it.
"""
import argparse
import os
import resource
import selectors
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "common"))
import benchlib as bl  # noqa: E402

FILE_SIZE = 100 * 1024
PIPELINE_REQUESTS = 1000
# zerg-http(5), MEMORY PER CONNECTION, with the defaults and a 100 KB mapped
# file: uring.output_high, the answer that crossed it, the input kept and the
# request head's copy
PIPELINE_BOUND = 256 * 1024 + FILE_SIZE + 64 * 1024 + 8 * 1024
IDLE_TARGET = 1024


def status_kb(pid, key="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def settled_kb(pid, quiet=1.0, timeout=60.0):
    """pid's VmRSS once it has not moved by more than 64 KB for quiet s."""
    deadline = time.monotonic() + timeout
    last, since = status_kb(pid), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = status_kb(pid)
        if abs(now - last) > 64:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return status_kb(pid)


class Server:
    """A server under test; pid() is the process whose memory is measured:
    the single worker of a master, or the process itself (HAProxy)."""

    def __init__(self, name, argv, port, has_master=True):
        self.name, self.argv, self.port, self.has_master = name, argv, port, has_master
        self.proc = None

    def start(self):
        self.proc = bl.start(self.argv, bl.SERVER_CPU, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        bl.need_port("127.0.0.1", self.port)
        time.sleep(0.3)

    def pid(self):
        if not self.has_master:
            return self.proc.pid
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            kids = [p for p in bl.tree_pids(self.proc.pid) if p != self.proc.pid]
            if kids:
                return kids[-1]
            time.sleep(0.05)
        raise RuntimeError(f"{self.name}: no worker")

    def stop(self):
        if self.proc:
            bl.stop(self.proc, 10)
            self.proc = None


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def zerg_server(args, tmp, n, body, name="zerg", top=""):
    port = bl.free_port()
    conf = write(os.path.join(tmp, f"{name}.yaml"), f"""{top}modules_path: {args.modules}
worker_processes: 1
worker_connections: {2 * n + 1000}  # a proxy session is two connections
error_log: {{ path: {tmp}/{name}-error.log, level: warn }}
pid: {tmp}/{name}.pid
load_modules: [{body.split()[0]}]
servers:
  - listen: ["127.0.0.1:{port}"]
    backlog: 4096
    module: {body}
""")
    return Server(name, [args.zerg, "-c", conf], port)


def zerg_http(args, tmp, n, www, tls=None):
    """tls: (certificate, key) to serve TLS, with room for n handshakes."""
    block, top = "", ""
    if tls:
        block = (f"\n    tls: {{ certificates: [{{ certificate: {tls[0]}, key: {tls[1]} }}], "
                 "handshake_timeout: 10m }")
        top = f"max_handshakes: {n + 1000}\n"
    return zerg_server(args, tmp, n, f"""http{block}
    http:
      keepalive_timeout: 10m
      keepalive_requests: 1000000
      send_timeout: 10m
      open_file_cache_valid: 60s
      locations:
        - {{ path: "=/", return: {{ status: 200, body: "ok" }} }}
        - {{ path: /, root: {www} }}
""", "zerg-https" if tls else "zerg-http", top)


def zerg_proxy(args, tmp, n, backend):
    return zerg_server(args, tmp, n, f"""proxy
    proxy:
      upstream:
        servers: ["127.0.0.1:{backend}"]
      idle_timeout: 10m
""", "zerg-proxy")


def zerg_echo(args, tmp, n):
    return zerg_server(args, tmp, n, """echo
    echo: { idle_timeout: 10m }
""", "zerg-echo")


def nginx_http(args, tmp, n, www, tls=None):
    """tls: (certificate, key) to serve TLS 1.3 (the handshake's time
    bounded by client_header_timeout in nginx 1.22)."""
    port = bl.free_port()
    ssl = (f"ssl;\n        ssl_certificate {tls[0]};\n        ssl_certificate_key {tls[1]};\n"
           "        ssl_protocols TLSv1.2 TLSv1.3;\n        client_header_timeout 10m") if tls else ""

    conf = write(os.path.join(tmp, "nginx.conf"), f"""daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile {n + 1000};
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections {n + 1000}; }}
http {{
    access_log off;
    sendfile on;
    keepalive_timeout 10m;
    keepalive_requests 1000000;
    send_timeout 10m;
    open_file_cache max=1000 inactive=60s;
    client_body_temp_path {tmp}/cb; proxy_temp_path {tmp}/pt; fastcgi_temp_path {tmp}/ft;
    uwsgi_temp_path {tmp}/ut; scgi_temp_path {tmp}/st;
    server {{
        listen 127.0.0.1:{port} backlog=4096 {ssl};
        location = / {{ return 200 "ok"; }}
        location / {{ root {www}; }}
    }}
}}
""")
    return Server("nginx", [args.nginx, "-p", tmp, "-e", f"{tmp}/nginx-error.log", "-c", conf],
                  port)


def haproxy_tcp(args, tmp, n, backend):
    port = bl.free_port()
    conf = write(os.path.join(tmp, "haproxy.cfg"), f"""global
    nbthread 1
    maxconn {n + 100}
defaults
    mode tcp
    timeout connect 5s
    timeout client 10m
    timeout server 10m
listen p
    bind 127.0.0.1:{port}
    maxconn {n + 100}
    server s1 127.0.0.1:{backend}
""")
    return Server("haproxy", [args.haproxy, "-db", "-f", conf], port, has_master=False)


class EchoBackend:
    """An echo server in a thread of this process (for the idle proxy
    sessions): it holds every connection and echoes what comes."""

    def __init__(self):
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(4096)
        self.ls.setblocking(False)
        self.port = self.ls.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.ls, selectors.EVENT_READ)
        self.conns = set()
        self.done = False
        self.drop = threading.Event()
        self.dropped = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def close(self, s):
        self.sel.unregister(s)
        self.conns.discard(s)
        s.close()

    def run(self):
        while not self.done:
            if self.drop.is_set():  # this thread owns the sockets: it closes them
                for s in list(self.conns):
                    self.close(s)
                self.drop.clear()
                self.dropped.set()
            for key, _ in self.sel.select(0.1):
                if key.fileobj is self.ls:
                    try:
                        s, _ = self.ls.accept()
                    except OSError:
                        continue
                    s.setblocking(False)
                    self.conns.add(s)
                    self.sel.register(s, selectors.EVENT_READ)
                    continue
                try:
                    d = key.fileobj.recv(4096)
                except OSError:
                    d = b""
                if d:
                    key.fileobj.send(d)
                else:
                    self.close(key.fileobj)

    def drop_all(self):
        self.dropped.clear()
        self.drop.set()
        self.dropped.wait(30)

    def stop(self):
        self.drop_all()
        self.done = True
        self.t.join()
        self.ls.close()


def recv_until(s, pred, timeout=30.0):
    s.settimeout(timeout)
    buf = b""
    while not pred(buf):
        d = s.recv(65536)
        if not d:
            raise RuntimeError("closed early")
        buf += d
    return buf


def open_idle(port, n, msg, answered, batch=64):
    """n connections, each sends msg and reads until answered(bytes), batch
    at a time: what stays is what idle connections hold, not the peak of
    answers in flight at once."""
    socks = []
    for i in range(0, n, batch):
        now = [socket.create_connection(("127.0.0.1", port), timeout=30)
               for _ in range(min(batch, n - i))]
        for s in now:
            s.sendall(msg)
        for s in now:
            recv_until(s, answered)
        socks += now
    return socks


def close_all(socks):
    for s in socks:
        s.close()


def http_answered(b):
    return b"\r\n\r\nok" in b


def per_conn(srv, n, opener, quiet=1.0):
    """Bytes of srv's worker memory per connection that opener() holds,
    once the worker's RSS has not moved for quiet seconds."""
    pid = srv.pid()
    warm = opener(min(n, 50))
    close_all(warm)
    base = settled_kb(pid, quiet)
    socks = opener(n)
    held = settled_kb(pid, quiet)
    close_all(socks)
    return (held - base) * 1024 / n


def idle_http(srv, n):
    return per_conn(srv, n, lambda k: open_idle(srv.port, k, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                                                http_answered))


def make_cert(tmp):
    """An ECDSA P-256 certificate and key for localhost, made now."""
    cert, key = os.path.join(tmp, "tls.pem"), os.path.join(tmp, "tls.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=localhost"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    os.chmod(key, 0o644)  # nginx's workers read it as another user
    return cert, key


def tls_client():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def open_tls_idle(port, n, batch=64):
    """As open_idle, over TLS: handshake, one request, its answer."""
    ctx, socks = tls_client(), []
    for i in range(0, n, batch):
        now = [ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30),
                               server_hostname="localhost") for _ in range(min(batch, n - i))]
        for s in now:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        for s in now:
            recv_until(s, http_answered)
        socks += now
    return socks


def open_tls_handshaking(port, n, batch=64):
    """n connections stalled in their handshake: each sent a ClientHello
    and got the server's flight (ServerHello to Finished), and sends no
    more."""
    ctx, socks = tls_client(), []
    for i in range(0, n, batch):
        now = []
        for _ in range(min(batch, n - i)):
            out = ssl.MemoryBIO()
            obj = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname="localhost")
            try:
                obj.do_handshake()
            except ssl.SSLWantReadError:
                pass
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(out.read())
            now.append(s)
        for s in now:
            recv_until(s, lambda b: len(b) > 0)
        socks += now
    return socks


# zerg frees the record buffers of a TLS connection quiet for a second (a
# sweep each second, then malloc_trim): the TLS rows measure after 3 quiet
# seconds, past that, for every server alike.
TLS_QUIET = 3.0


def idle_tls(srv, n):
    return per_conn(srv, n, lambda k: open_tls_idle(srv.port, k), TLS_QUIET)


def handshake_tls(srv, n):
    return per_conn(srv, n, lambda k: open_tls_handshaking(srv.port, k), TLS_QUIET)


def idle_echo(srv, n):
    return per_conn(srv, n, lambda k: open_idle(srv.port, k, b"x", lambda b: b == b"x"))


def idle_proxy(srv, n, backend):
    try:
        return per_conn(srv, n, lambda k: open_idle(srv.port, k, b"x", lambda b: b == b"x"))
    finally:
        backend.drop_all()


def pipelined(srv, n):
    def opener(k):
        socks = []
        for _ in range(k):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", srv.port))
            s.sendall(b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n" * PIPELINE_REQUESTS)
            socks.append(s)
        return socks
    return per_conn(srv, n, opener)


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and want > hard:
        try:  # root may raise the hard limit too (the servers inherit it)
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        except (ValueError, OSError):
            want = hard
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zerg", required=True)
    ap.add_argument("--modules", required=True)
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--haproxy", default=shutil.which("haproxy") or "/usr/sbin/haproxy")
    ap.add_argument("--n", type=int, default=10000, help="idle connections per load")
    ap.add_argument("--pipelined", type=int, default=40, help="never-reading clients")
    ap.add_argument("--out")
    args = ap.parse_args()

    # idle-proxy: the client and backend ends here, and HAProxy (inheriting
    # the limit) wants two descriptors per session and its maxconn margin
    limit = raise_nofile(3 * args.n + 5000)
    n = min(args.n, (limit - 2000) // 2)
    if n < args.n:
        bl.log(f"descriptor limit {limit}: {n} connections per idle load")
    have_nginx = os.access(args.nginx, os.X_OK)
    have_haproxy = os.access(args.haproxy, os.X_OK)
    tmp = tempfile.mkdtemp(prefix="bench-memory-")
    os.chmod(tmp, 0o755)  # nginx workers may run as another user
    www = os.path.join(tmp, "www")
    os.makedirs(www)
    os.chmod(www, 0o755)
    with open(os.path.join(www, "file"), "wb") as f:
        f.write(os.urandom(FILE_SIZE))
    os.chmod(os.path.join(www, "file"), 0o644)

    rows = []  # (load, zerg, peer name, peer, target text, ok)

    def run(srv, fn, *a):
        srv.start()
        try:
            return fn(srv, *a)
        finally:
            srv.stop()

    bl.log(f"idle http, {n} connections")
    z = run(zerg_http(args, tmp, n, www), idle_http, n)
    p = run(nginx_http(args, tmp, n, www), idle_http, n) if have_nginx else None
    rows.append(("idle-http", z, "nginx", p, f"<= {IDLE_TARGET}", z <= IDLE_TARGET))

    backend = EchoBackend()
    try:
        bl.log(f"idle proxy sessions, {n}")
        z = run(zerg_proxy(args, tmp, n, backend.port), idle_proxy, n, backend)
        p = (run(haproxy_tcp(args, tmp, n, backend.port), idle_proxy, n, backend)
             if have_haproxy else None)
        rows.append(("idle-proxy", z, "haproxy", p, "<= haproxy", p is None or z <= p))
    finally:
        backend.stop()

    bl.log(f"idle echo, {n} connections")
    z = run(zerg_echo(args, tmp, n), idle_echo, n)
    rows.append(("idle-echo", z, "-", None, f"<= {IDLE_TARGET}", z <= IDLE_TARGET))

    tls = make_cert(tmp)
    for load, fn in (("idle-tls", idle_tls), ("handshake-tls", handshake_tls)):
        bl.log(f"{load}, {n} connections")
        z = run(zerg_http(args, tmp, n, www, tls), fn, n)
        p = run(nginx_http(args, tmp, n, www, tls), fn, n) if have_nginx else None
        rows.append((load, z, "nginx", p, "<= nginx", p is None or z <= p))

    bl.log(f"never-reading pipelined clients, {args.pipelined}")
    z = run(zerg_http(args, tmp, n, www), pipelined, args.pipelined)
    p = run(nginx_http(args, tmp, n, www), pipelined, args.pipelined) if have_nginx else None
    rows.append(("pipelined", z, "nginx", p, f"<= {PIPELINE_BOUND}", z <= PIPELINE_BOUND))

    lines = [f"worker memory per connection (bytes; RSS growth / connections), "
             f"idle loads {n} connections, pipelined {args.pipelined}; load {bl.loadavg()}",
             f"{'load':<12} {'zerg':>10} {'peer':>8} {'peer B':>10} {'target':>14}  verdict"]
    for load, z, pn, p, target, ok in rows:
        ps = f"{p:10.0f}" if p is not None else f"{'-':>10}"
        lines.append(f"{load:<12} {z:10.0f} {pn:>8} {ps} {target:>14}  {'ok' if ok else 'MISSED'}")
    bl.report("\n".join(lines), args.out)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if all(r[5] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

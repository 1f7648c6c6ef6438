#!/usr/bin/env python3
"""bench/http/bench_h2.py - HTTP/2: zerg's http module against nginx and h2o.

The HTTP/2 rows of bench/http: each server runs one worker (h2o one thread)
pinned to CPU 0, h2load runs on CPU 1; the workloads alternate the servers
for ROUNDS rounds and the table shows medians of req/s and server CPU
microseconds per request (the whole server process tree), for the 1 MiB file
also server CPU milliseconds per GB, with zerg's ratios to each peer. Every
workload runs over h2c (prior knowledge) and h2 over TLS (ALPN, an ECDSA
P-256 certificate made at start): a small `return` body with 64 connections
of 16 streams each and of 1 stream each, and a 1 MiB file. A server missing
on this machine (h2o: Debian's h2o package) is left out of the table.

Reading the h2 - h2c difference: with 1 stream per connection nginx sends a
response's HEADERS and DATA frames in two writev calls (two TCP segments)
over h2c but in one SSL_write (one record, one segment) over TLS, so its h2
row saves a loopback segment that its h2c row pays; zerg sends one segment
per response either way. Compare the h2 rows themselves, not the differences.

After each workload's timed rounds a separate h2load run samples every
server's call stacks with perf (3 s, bench/common/cpu_split.py --libs):
zerg's tcp%, ssl% and ng2% columns are the shares of its CPU in the
kernel's socket work, in OpenSSL and in nghttp2 (malloc and page faults
they cause included); floor is their sum times zerg's CPU per request over
the peer's: the ratio zerg would reach if its own code cost nothing. evt%
is the kernel's side of zerg's io_uring loop outside the socket work (its
waits, task work and submissions), and floor+evt adds it to the floor: the
ratio zerg would reach if its user-space code cost nothing. The peers'
shares (evt: their epoll_wait) are in the log lines (--no-split leaves all
this out).

Usage: bench_h2.py [--zerg BIN] [--modules DIR] [--rounds N] [--duration S]
                   [--only NAME[,NAME]] [--out FILE] [--no-split]
                   [--zerg-base OTHER/zerg]   # a second build in the same rounds (A/B)
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "common"))
import benchlib as bl  # noqa: E402
import cpu_split  # noqa: E402

HELLO = "Hello, World!"
WORKLOADS = [
    # name, path, connections, streams per connection
    ("return-c64-m16", "/", 64, 16),
    ("return-c64-m1", "/", 64, 1),
    ("file-1MiB-c16-m1", "/static/1m.bin", 16, 1),
]
FILE_BYTES = {"file-1MiB-c16-m1": 1 << 20}
SPLIT_SECONDS = 3  # of perf sampling per workload and server, outside the timed rounds


class Server:
    def __init__(self, name, argv, ports, tmp, sig=signal.SIGTERM):
        self.name, self.argv, self.ports, self.tmp, self.sig = name, argv, ports, tmp, sig
        self.proc = None

    def start(self):
        self.proc = bl.start(self.argv, bl.SERVER_CPU, stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(self.tmp, self.name + ".out"), "w"))
        for p in self.ports.values():
            bl.need_port("127.0.0.1", p)
        time.sleep(0.3)

    def stop(self):
        if self.proc:
            bl.stop(self.proc, 10, self.sig)


def make_zerg(args, tmp, www, name="zerg", binary=None, modules=None):
    """zerg (or, as name "zerg-base", the --zerg-base build with the
    modules built beside it) with the same configuration."""
    h2c, tls = bl.free_port(), bl.free_port()
    locations = f"""      keepalive_requests: 1000000
      open_file_cache_valid: 1s
      http2: {{ max_concurrent_streams: 128 }}
      locations:
        - {{ path: "=/", return: {{ status: 200, body: "{HELLO}", headers: {{ Content-Type: text/plain }} }} }}
        - {{ path: /static/, root: {os.path.dirname(www)} }}
"""
    conf = os.path.join(tmp, name + ".yaml")
    with open(conf, "w") as f:
        f.write(f"""modules_path: {modules or args.modules}
worker_processes: 1
error_log: {{ path: {tmp}/{name}-error.log, level: warn }}
pid: {tmp}/{name}.pid
uring: {{ send_zc_threshold: 0 }}
load_modules: [http]
servers:
  - listen: ["127.0.0.1:{h2c}"]
    module: http
    http:
{locations}  - listen: ["127.0.0.1:{tls}"]
    module: http
    tls: {{ certificates: [ {{ certificate: {tmp}/cert.pem, key: {tmp}/key.pem }} ] }}
    http:
{locations}""")
    return Server(name, [binary or args.zerg, "-c", conf], {"h2c": h2c, "h2": tls}, tmp)


def make_nginx(args, tmp, www):
    h2c, tls = bl.free_port(), bl.free_port()
    conf = os.path.join(tmp, "nginx.conf")
    site = f"""        location = / {{ default_type text/plain; return 200 "{HELLO}"; }}
        location /static/ {{ root {os.path.dirname(www)}; }}"""
    with open(conf, "w") as f:
        f.write(f"""daemon off;
master_process on;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    http2_max_concurrent_streams 128;
    open_file_cache max=1000 inactive=20s;
    open_file_cache_valid 1s;
    client_body_temp_path {tmp}/cb; proxy_temp_path {tmp}/pt; fastcgi_temp_path {tmp}/ft;
    uwsgi_temp_path {tmp}/ut; scgi_temp_path {tmp}/st;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{h2c} http2;
{site}
    }}
    server {{
        listen 127.0.0.1:{tls} ssl http2;
        ssl_certificate {tmp}/cert.pem;
        ssl_certificate_key {tmp}/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
{site}
    }}
}}
""")
    return Server("nginx", [args.nginx, "-p", tmp, "-e", f"{tmp}/nginx-error.log", "-c", conf],
                  {"h2c": h2c, "h2": tls}, tmp, signal.SIGQUIT)


def make_h2o(args, tmp, www):
    h2c, tls = bl.free_port(), bl.free_port()
    conf = os.path.join(tmp, "h2o.conf")
    paths = f"""    paths:
      "/":
        mruby.handler: |
          Proc.new {{ [200, {{"content-type" => "text/plain"}}, ["{HELLO}"]] }}
      "/static":
        file.dir: {www}
"""
    with open(conf, "w") as f:
        # as root h2o would switch to nobody, who may not write the pid file here
        user = "user: root\n" if os.geteuid() == 0 else ""
        f.write(f"""{user}num-threads: 1
error-log: {tmp}/h2o-error.log
pid-file: {tmp}/h2o.pid
access-log: /dev/null
listen: {{ host: 127.0.0.1, port: {h2c} }}
listen:
  host: 127.0.0.1
  port: {tls}
  ssl: {{ certificate-file: {tmp}/cert.pem, key-file: {tmp}/key.pem }}
hosts:
  "127.0.0.1:{h2c}":
{paths}  "127.0.0.1:{tls}":
{paths}""")
    return Server("h2o", [args.h2o, "-c", conf], {"h2c": h2c, "h2": tls}, tmp)


def h2load(args, srv, proto, path, conns, streams):
    """(requests, req/s, server us/req, note) of one h2load run against srv."""
    scheme = "https" if proto == "h2" else "http"
    # the connections (and TLS handshakes) are made in the warm-up, not counted
    cmd = [args.h2load, "-t1", f"-c{conns}", f"-m{streams}", f"-D{args.duration}",
           "--warm-up-time=1",
           f"{scheme}://127.0.0.1:{srv.ports[proto]}{path}"]
    load = bl.start(cmd, bl.LOAD_CPU, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(1)  # the warm-up's CPU is not counted either
    t0 = bl.tree_ticks(srv.proc.pid)
    try:
        out = load.communicate(timeout=args.duration + 60)[0].decode()
    except subprocess.TimeoutExpired:
        load.kill()
        out = load.communicate()[0].decode() + "h2load did not finish"
    ticks = bl.tree_ticks(srv.proc.pid) - t0
    m = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed",
                  out)
    ok, failed = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    note = f"failed {failed}" if failed else ("" if m else out.strip()[-200:])
    rps = ok / args.duration
    return ok, rps, bl.ticks_to_us(ticks) / ok if ok else 0.0, note


def work_split(args, srv, proto, path, conns, streams):
    """srv's CPU split into the kernel's socket work, OpenSSL's, nghttp2's
    and its own code (bench/common/cpu_split.py --libs), sampled in a
    separate h2load run, out of the timed rounds; None where perf cannot."""
    short = argparse.Namespace(**{**vars(args), "duration": SPLIT_SECONDS + 1})
    r, done = bl.during(lambda: h2load(short, srv, proto, path, conns, streams),
                        lambda: cpu_split.split_libs(bl.tree_pids(srv.proc.pid), SPLIT_SECONDS),
                        1.5)
    if not r or not done:
        return None
    print(f"# split {srv.name} {proto}: {cpu_split.describe(r[0])}", file=sys.stderr,
          flush=True)
    return r[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    build = os.environ.get("ZERG_BUILDDIR", os.getcwd())
    ap.add_argument("--zerg", default=os.environ.get("ZERG_BIN", os.path.join(build, "zerg")))
    ap.add_argument("--modules", default=os.environ.get("ZERG_MODULES",
                                                        os.path.join(build, "build-modules")))
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--h2o", default=shutil.which("h2o") or "/usr/bin/h2o")
    ap.add_argument("--h2load", default=shutil.which("h2load") or "h2load")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--only", default="")
    ap.add_argument("--zerg-base", default="",
                    help="a second zerg build (its modules in build-modules beside it), "
                         "measured in the same rounds as zerg-base")
    ap.add_argument("--out", default="")
    ap.add_argument("--no-split", action="store_true",
                    help="no perf sampling for the tcp%%, ssl%%, ng2%%, evt%% and floor columns")
    args = ap.parse_args()
    if not os.path.exists(args.zerg):
        sys.exit(f"no zerg binary at {args.zerg} (run from the build folder or pass --zerg)")
    tmp = tempfile.mkdtemp(prefix="zg-bench-h2-")
    os.chmod(tmp, 0o755)  # nginx workers may run as another user
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{tmp}/key.pem", "-out",
                    f"{tmp}/cert.pem", "-days", "2", "-subj", "/CN=localhost"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    www = os.path.join(tmp, "static")
    os.makedirs(www)
    with open(os.path.join(www, "1m.bin"), "wb") as f:
        f.write(os.urandom(1 << 20))
    for p in (os.path.join(www, "1m.bin"), f"{tmp}/key.pem", f"{tmp}/cert.pem"):
        os.chmod(p, 0o644)
    servers = [make_zerg(args, tmp, www)]
    if args.zerg_base:
        base_dir = os.path.dirname(os.path.abspath(args.zerg_base))
        servers.append(make_zerg(args, tmp, www, "zerg-base", args.zerg_base,
                                 os.path.join(base_dir, "build-modules")))
    for name, make, prog in (("nginx", make_nginx, args.nginx), ("h2o", make_h2o, args.h2o)):
        if os.path.exists(prog):
            servers.append(make(args, tmp, www))
        else:
            print(f"# {name}: not installed ({prog}), left out", file=sys.stderr)
    only = set(filter(None, args.only.split(",")))
    results = {}
    try:
        for srv in servers:
            srv.start()
        for name, path, conns, streams in WORKLOADS:
            if only and name not in only:
                continue
            for proto in ("h2c", "h2"):
                for r in range(args.rounds):
                    for srv in servers:
                        res = h2load(args, srv, proto, path, conns, streams)
                        results.setdefault((name, proto, srv.name), []).append(res)
                        print(f"# {name} {proto} round {r + 1} {srv.name}: {res[1]:.0f} req/s, "
                              f"{res[2]:.2f} us/req {res[3]}", file=sys.stderr, flush=True)
                if not args.no_split:
                    for srv in servers:
                        results[(name, proto, srv.name, "split")] = work_split(
                            args, srv, proto, path, conns, streams)
    finally:
        for srv in servers:
            srv.stop()
    peers = [s.name for s in servers[1:]]
    head = (f"{'workload':<18} {'proto':<5} {'zerg req/s':>10} {'zerg us/req':>11} "
            f"{'tcp%':>4} {'ssl%':>4} {'ng2%':>4} {'evt%':>4}")
    for p in peers:
        head += (f" {p + ' req/s':>11} {p + ' us/req':>12} {'cpu ratio':>9} {'floor':>5}"
                 f" {'floor+evt':>9}")
    lines = [head + f" {'zerg ms/GB':>10}"]
    for name, _, _, _ in WORKLOADS:
        for proto in ("h2c", "h2"):
            z = results.get((name, proto, "zerg"))
            if not z:
                continue
            zc = bl.median(x[2] for x in z)
            line = f"{name:<18} {proto:<5} {bl.median(x[1] for x in z):>10.0f} {zc:>11.2f}"
            sp = results.get((name, proto, "zerg", "split"))
            for k in ("tcp", "libssl", "nghttp2", "evt"):
                line += f" {100 * sp[k]:>4.0f}" if sp else f" {'-':>4}"
            shared = sp["tcp"] + sp["libssl"] + sp["nghttp2"] if sp else None
            with_evt = shared + sp["evt"] if sp else None
            for p in peers:
                pr = results[(name, proto, p)]
                pc = bl.median(x[2] for x in pr)
                fl, fe = bl.floor(shared, zc, pc), bl.floor(with_evt, zc, pc)
                line += (f" {bl.median(x[1] for x in pr):>11.0f} {pc:>12.2f}"
                         f" {zc / pc if pc else 0:>9.2f}"
                         f" {f'{fl:.2f}' if fl is not None else '-':>5}"
                         f" {f'{fe:.2f}' if fe is not None else '-':>9}")
            n = FILE_BYTES.get(name)
            line += f" {zc * 1e9 / n / 1e3:>10.1f}" if n else f" {'-':>10}"
            lines.append(line)
    if not args.no_split:
        lines.append("(tcp%, ssl%, ng2%: zerg's CPU in the kernel's socket work, OpenSSL and "
                     "nghttp2, sampled with perf in a separate run; floor: their sum times "
                     "zerg's CPU per request over the peer's, the ratio zerg would reach if its "
                     "own code cost nothing; evt%: the kernel's side of zerg's io_uring loop "
                     "outside the socket work; floor+evt: the ratio zerg would reach if its "
                     "user-space code cost nothing)")
    bl.report("\n".join(lines), args.out)
    if not os.environ.get("BENCH_KEEP"):
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

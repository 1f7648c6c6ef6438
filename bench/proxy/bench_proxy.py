#!/usr/bin/env python3
"""bench_proxy.py - zerg's proxy module against HAProxy (mode tcp, one thread)
and nginx stream (one worker), in one run, by bench/common/README's method: each
proxy on CPU 0, load generators and backends on CPU 1, rounds alternating
A B C, median of the rounds; reports throughput and proxy CPU per request /
per message / per GB, with ratios to HAProxy taken round by round (each
round's figure over HAProxy's in the same round, then the median), the
range of the CPU ratios, and each proxy's context switches per operation.
Syscalls are counted (perf) in the untimed warm-up only: the tracepoint
costs every syscall, and HAProxy makes many times as many as zerg.

  python3 bench/proxy/bench_proxy.py --zerg BUILD/zerg --modules BUILD/build-modules
        [--rounds 3] [--seconds 10] [--requests 200000] [--out results.txt]
        [--zerg-base OTHER/zerg]   # a second build in the same rounds (A/B)

The echo load uses bench/echo's programs: epoll_echo as the backend and
echo_load (64 connections, 64-byte messages, one in flight per connection).
They are taken from the build folder of --zerg (BUILD/bench/echo/), or from
--epoll-echo / --echo-load, and compiled from bench/echo/*.c with cc -O2
when not built.

Needs redis-server, redis-benchmark, iperf3, haproxy, nginx with the stream
module (Debian: libnginx-mod-stream; skipped when missing), and a C compiler
when the echo programs are not built.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "common"))
import benchlib as bl  # noqa: E402
import cpu_split  # noqa: E402

ECHO_SRC = os.path.join(HERE, "..", "echo")


class Proxy:
    def __init__(self, name, tmp, listen, backend, args):
        self.name, self.tmp, self.listen, self.backend, self.args = name, tmp, listen, backend, args
        self.proc = None

    def start(self):
        self.proc = bl.start(self.command(), bl.SERVER_CPU, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        bl.need_port("127.0.0.1", self.listen)
        time.sleep(0.2)

    def stop(self):
        if self.proc:
            bl.stop(self.proc, 10)


class Zerg(Proxy):
    def binary(self):
        return self.args.zerg, self.args.modules

    def uring(self):
        return self.args.zerg_uring

    def command(self):
        zerg, modules = self.binary()
        c = os.path.join(self.tmp, f"zerg-{self.listen}.yaml")
        with open(c, "w") as f:
            f.write(f"""modules_path: {modules}
load_modules: [proxy]
worker_processes: 1
worker_cpu_affinity: [{bl.SERVER_CPU}]
pid: {self.tmp}/zerg-{self.listen}.pid
error_log: {{ path: {self.tmp}/zerg-{self.listen}.log, level: warn }}
uring: {{ send_zc_threshold: {self.args.zerg_zc}{self.uring()} }}
servers:
  - listen: ["127.0.0.1:{self.listen}"]
    module: proxy
    proxy:
      upstream:
        servers: ["127.0.0.1:{self.backend}"]
      idle_timeout: 10m
""")
        return [zerg, "-c", c]


class ZergBase(Zerg):
    """A second zerg build (--zerg-base) in the same rounds, to compare two
    builds as fairly as this noisy machine allows."""

    def binary(self):
        return self.args.zerg_base, self.args.modules_base

    def uring(self):
        return self.args.zerg_base_uring


class HAProxy(Proxy):
    def command(self):
        c = os.path.join(self.tmp, f"haproxy-{self.listen}.cfg")
        with open(c, "w") as f:
            f.write(f"""global
    nbthread 1
    maxconn 4000
defaults
    mode tcp
    timeout connect 5s
    timeout client 10m
    timeout server 10m
listen p
    bind 127.0.0.1:{self.listen}
    server s1 127.0.0.1:{self.backend}
""")
        return ["haproxy", "-db", "-f", c]


class Nginx(Proxy):
    MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"

    def command(self):
        c = os.path.join(self.tmp, f"nginx-{self.listen}.conf")
        load = f"load_module {self.MODULE};\n" if os.path.exists(self.MODULE) else ""
        with open(c, "w") as f:
            f.write(f"""{load}worker_processes 1;
daemon off;
pid {self.tmp}/nginx-{self.listen}.pid;
error_log {self.tmp}/nginx-{self.listen}.log warn;
events {{ worker_connections 10000; }}
stream {{
    server {{
        listen 127.0.0.1:{self.listen};
        proxy_pass 127.0.0.1:{self.backend};
        proxy_timeout 10m;
    }}
}}
""")
        return ["nginx", "-c", c, "-e", f"{self.tmp}/nginx-{self.listen}.log"]

    @classmethod
    def available(cls):
        if not shutil.which("nginx"):
            return False
        r = subprocess.run(["nginx", "-V"], stderr=subprocess.PIPE, stdout=subprocess.PIPE)
        v = r.stderr.decode()
        return "--with-stream " in v + " " or os.path.exists(cls.MODULE)


def switches(pids):
    """Context switches (voluntary + involuntary) of every thread of pids: a
    proxy's sleeps, read from /proc without disturbing it."""
    n = 0
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    n += sum(int(l.split()[1]) for l in f if "ctxt_switches:" in l)
            except (OSError, ValueError, IndexError):
                continue
    return n


def measure(proxy, fn):
    """Runs fn() (returns ops, bytes) with the proxy up; returns a result dict
    with the proxy's CPU seconds and context switches. No perf here: its
    tracepoint costs each syscall, and the proxies differ tenfold in those."""
    pids = bl.tree_pids(proxy.proc.pid)
    s0 = switches(pids)
    c0 = bl.tree_cpu_s(proxy.proc.pid)
    t0 = time.monotonic()
    ops, nbytes = fn()
    dt = time.monotonic() - t0
    cpu = bl.tree_cpu_s(proxy.proc.pid) - c0
    return {"ops": ops, "bytes": nbytes, "secs": dt, "cpu": cpu, "switches": switches(pids) - s0}


def warm_up(proxy, fn, perf_ok):
    """Runs fn() once untimed; returns the proxy's syscalls per operation
    over it, counted with perf, or None where perf cannot."""
    perf = bl.perf_start(bl.tree_pids(proxy.proc.pid)) if perf_ok else None
    if perf:
        time.sleep(0.2)
    ops, _ = fn()
    n = bl.perf_count(perf)
    return n / ops if n is not None and ops else None


def socket_share(proxy, fn, seconds=2.0):
    """The share of the proxy's CPU in the kernel's socket work
    (bench/common/cpu_split.py), sampled for `seconds` from 0.5 s into a
    separate load fn(); None when perf cannot sample it or the load failed."""
    r, done = bl.during(fn, lambda: cpu_split.split(bl.tree_pids(proxy.proc.pid), seconds), 0.5)
    return None if done is None or r is None else r[0]


def redis_load(port, test, args):
    r = subprocess.run(bl.pinned(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c",
                                  "50", "-n", str(args.requests), "-t", test, "-q", "--csv"],
                                 bl.LOAD_CPU),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(r.stdout.decode())
    return args.requests, 0


def echo_load(port, args):
    r = subprocess.run(bl.pinned([args.echo_load, "127.0.0.1", str(port), "64", "64",
                                  str(args.seconds)], bl.LOAD_CPU),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    m = re.search(rb"\bmsgs=(\d+)", r.stdout)
    if r.returncode != 0 or not m:
        raise RuntimeError(r.stdout.decode().strip())
    return int(m.group(1)), 0


def iperf_load(port, args):
    r = subprocess.run(bl.pinned(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t",
                                  str(args.seconds), "-J"], bl.LOAD_CPU),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    j = json.loads(r.stdout)
    if "error" in j:
        raise RuntimeError(j["error"])
    b = j["end"]["sum_received"]["bytes"]
    return 1, b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--zerg", default=os.environ.get("ZERG_BIN", "zerg"))
    ap.add_argument("--modules", default=os.environ.get("ZERG_MODULES", "build-modules"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--only", default="redis_get,redis_set,echo,iperf")
    ap.add_argument("--out")
    ap.add_argument("--no-split", action="store_true",
                    help="skip the separate run that samples each proxy's call stacks "
                         "(tcp%% and floor columns)")
    ap.add_argument("--zerg-zc", default="0",
                    help="zerg's uring.send_zc_threshold (0: off; loopback gains nothing from it)")
    ap.add_argument("--epoll-echo", default=os.environ.get("EPOLL_ECHO"),
                    help="bench/echo's epoll_echo (default: BUILD/bench/echo/epoll_echo next "
                         "to --zerg, else compiled from bench/echo/epoll_echo.c)")
    ap.add_argument("--echo-load", default=os.environ.get("ECHO_LOAD"),
                    help="bench/echo's echo_load (default: BUILD/bench/echo/echo_load next "
                         "to --zerg, else compiled from bench/echo/echo_load.c)")
    ap.add_argument("--zerg-uring", default="",
                    help="more keys for zerg's uring map, e.g. 'batch_size: 64'")
    ap.add_argument("--zerg-base",
                    help="a second zerg build, measured in the same rounds as zerg-base")
    ap.add_argument("--modules-base", help="its modules (default: build-modules beside it)")
    ap.add_argument("--zerg-base-uring",
                    help="uring keys for zerg-base (default: --zerg-uring's); with "
                         "--zerg-base the same binary twice compares two settings")
    args = ap.parse_args()
    if args.zerg_base_uring is None:
        args.zerg_base_uring = args.zerg_uring
    args.zerg_uring = ", " + args.zerg_uring if args.zerg_uring else ""
    args.zerg_base_uring = ", " + args.zerg_base_uring if args.zerg_base_uring else ""
    args.zerg = os.path.abspath(args.zerg)
    args.modules = os.path.abspath(args.modules)
    if args.zerg_base:
        args.zerg_base = os.path.abspath(args.zerg_base)
        args.modules_base = os.path.abspath(args.modules_base or os.path.join(
            os.path.dirname(args.zerg_base), "build-modules"))

    tmp = tempfile.mkdtemp(prefix="bench-proxy-")
    build_echo = os.path.join(os.path.dirname(args.zerg), "bench", "echo")
    if "echo" in args.only.split(","):
        args.epoll_echo = bl.program(args.epoll_echo or os.path.join(build_echo, "epoll_echo"),
                                     os.path.join(ECHO_SRC, "epoll_echo.c"), tmp)
        args.echo_load = bl.program(args.echo_load or os.path.join(build_echo, "echo_load"),
                                    os.path.join(ECHO_SRC, "echo_load.c"), tmp)

    only = args.only.split(",")
    backends = []
    rport, eport, iport = bl.free_ports(3)
    if "redis_get" in only or "redis_set" in only:
        backends.append((rport, bl.start(["redis-server", "--port", str(rport), "--save", "",
                                          "--appendonly", "no", "--bind", "127.0.0.1"],
                                         bl.LOAD_CPU, stdout=subprocess.DEVNULL)))
    if "echo" in only:
        backends.append((eport, bl.start([args.epoll_echo, "127.0.0.1", str(eport)],
                                         bl.LOAD_CPU)))
    if "iperf" in only:
        backends.append((iport, bl.start(["iperf3", "-s", "-p", str(iport)], bl.LOAD_CPU,
                                         stdout=subprocess.DEVNULL)))
    for port, _ in backends:
        bl.need_port("127.0.0.1", port)

    kinds = [("zerg", Zerg)] + ([("zerg-base", ZergBase)] if args.zerg_base else [])
    kinds.append(("haproxy", HAProxy))
    if Nginx.available():
        kinds.append(("nginx", Nginx))
    else:
        print("nginx stream module not found (apt-get install libnginx-mod-stream): skipped")
    loads = {
        "redis_get": (rport, lambda p: redis_load(p, "get", args)),
        "redis_set": (rport, lambda p: redis_load(p, "set", args)),
        "echo": (eport, lambda p: echo_load(p, args)),
        "iperf": (iport, lambda p: iperf_load(p, args)),
    }
    results = {}  # (load, proxy) -> [result]
    perf_ok = bl.perf_ok()
    try:
        for load in only:
            bport, fn = loads[load]
            proxies = [(n, cls(n, tmp, bl.free_port(), bport, args)) for n, cls in kinds]
            try:
                for n, p in proxies:
                    p.start()
                    try:  # syscalls are counted here, never in the timed rounds
                        results[(load, n, "syscalls")] = warm_up(p, lambda: fn(p.listen), perf_ok)
                    except RuntimeError as e:
                        print(f"  warm-up {load} {n} failed: {e}", flush=True)
                for rnd in range(args.rounds):
                    for n, p in proxies:
                        try:
                            r = measure(p, lambda: fn(p.listen))
                        except RuntimeError as e:
                            print(f"  round {rnd + 1} {load:9} {n:8} FAILED: {e}", flush=True)
                            continue
                        r["round"] = rnd
                        results.setdefault((load, n), []).append(r)
                        print(f"  round {rnd + 1} {load:9} {n:9} ops {r['ops']:>9} "
                              f"bytes {r['bytes']:>12} secs {r['secs']:6.2f} cpu {r['cpu']:6.2f} "
                              f"switches {r['switches']}", flush=True)
                if not args.no_split and load != "iperf" and perf_ok:
                    for n, p in proxies:
                        results[(load, n, "tcp")] = socket_share(p, lambda: fn(p.listen))
                        print(f"  socket work {load:9} {n:8} {results[(load, n, 'tcp')]}",
                              flush=True)
            finally:
                for _, p in proxies:
                    p.stop()
    finally:
        for _, b in backends:
            bl.stop(b)

    lines = ["", f"{'load':10} {'proxy':9} {'throughput':>16} {'CPU/op':>12} {'CPU/GB':>10}"
             f" {'sys/op':>7} {'cs/op':>6} {'vs haproxy (tput, cpu)':>24} {'cpu range':>13}"
             f" {'tcp%':>5} {'floor':>6}"]
    for load in only:
        for n, _ in kinds:
            rs = results.get((load, n))
            if not rs:
                continue
            for r in rs:
                if load == "iperf":
                    r["tput"], r["cost"] = r["bytes"] * 8 / r["secs"] / 1e9, r["cpu"] / (r["bytes"] / 1e9)
                else:
                    r["tput"], r["cost"] = r["ops"] / r["secs"], r["cpu"] / r["ops"] * 1e6
            results[(load, n, "row")] = (bl.median(r["tput"] for r in rs),
                                         bl.median(r["cost"] for r in rs),
                                         bl.median(r["switches"] / r["ops"] for r in rs))
        base = {r["round"]: r for r in results.get((load, "haproxy"), [])}
        for n, _ in kinds:
            row = results.get((load, n, "row"))
            if not row:
                continue
            if load == "iperf":
                txt = f"{row[0]:11.2f} Gb/s {'':>12} {row[1]:8.3f} s {'-':>7}"
            else:
                sc = results.get((load, n, "syscalls"))
                sysop = f"{sc:7.2f}" if sc is not None else f"{'-':>7}"
                txt = f"{row[0]:11.0f} op/s {row[1]:9.2f} µs {'':>10} {sysop}"
            # each round's figure over HAProxy's in the same round, then the
            # median: drift between rounds cancels out
            paired = [(r["tput"] / base[r["round"]]["tput"], r["cost"] / base[r["round"]]["cost"])
                      for r in results[(load, n)] if r["round"] in base]
            cpu_r = [c for _, c in paired]
            ratio = (f"{bl.median(t for t, _ in paired):6.2f}x {bl.median(cpu_r):6.2f}x"
                     if paired else "")
            spread = f"{min(cpu_r):5.2f}-{max(cpu_r):.2f}x" if paired else ""
            tcp = results.get((load, n, "tcp"))
            split = f"{tcp * 100:5.0f}" if tcp is not None else f"{'-':>5}"
            hp = results.get((load, "haproxy", "row"))
            fl = bl.floor(tcp, row[1], hp[1] if hp else None)
            floor = f"{fl:5.2f}x" if fl is not None else f"{'-':>6}"
            cs = f"{row[2]:6.3f}" if load != "iperf" else f"{'-':>6}"
            lines.append(f"{load:10} {n:9} {txt} {cs} {ratio:>24} {spread:>13} {split} {floor}")
    lines.append("(CPU: proxy utime+stime over its process tree; median of "
                 f"{args.rounds} rounds; proxy on CPU 0, load and backends on CPU 1; ratios: "
                 "the median of each round's over HAProxy's in that round, cpu range their "
                 "lowest and highest; cs/op: the proxy's context switches (sleeps) per "
                 "operation; sys/op: syscalls per operation, counted in the untimed warm-up)")
    if not args.no_split:
        lines.append("(tcp%: the share of the proxy's CPU in the kernel's socket work, tcp_sendmsg, "
                     "tcp_recvmsg, inet_accept and inet_release call stacks, sampled with perf "
                     "in a separate run; floor: "
                     "tcp% x its CPU/op over HAProxy's, the CPU ratio it would reach if "
                     "everything else it does cost nothing)")
    bl.report("\n".join(lines), args.out)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

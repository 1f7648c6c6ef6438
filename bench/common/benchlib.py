"""benchlib - the helpers shared by zerg's benchmarks (bench/*/).

The method they serve (bench/common/README): server pinned to CPU
0, load to CPU 1, A B A B rounds, server CPU time per operation from
/proc/PID/stat of the server's whole process tree, syscalls counted with
perf's raw_syscalls:sys_enter tracepoint. Nothing here needs root except
perf (and only where perf_event_paranoid forbids it otherwise).

    import sys, os
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "common"))
    import benchlib as bl

    srv = bl.start(["./epoll_echo", "127.0.0.1", str(port)], cpu=bl.SERVER_CPU)
    bl.wait_port("127.0.0.1", port)
    t0 = bl.tree_ticks(srv.pid)
    ...run the load pinned to bl.LOAD_CPU...
    us_per_op = bl.ticks_to_us(bl.tree_ticks(srv.pid) - t0) / ops
    bl.stop(srv)

Run as a script for a quick look: `python3 benchlib.py ticks PID`,
`python3 benchlib.py pids PID`, `python3 benchlib.py median 3 1 2`.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

SERVER_CPU = int(os.environ.get("BENCH_SERVER_CPU", "0"))
LOAD_CPU = int(os.environ.get("BENCH_LOAD_CPU", "1"))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def pids():
    """The pid of every process now (from /proc)."""
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def proc_table():
    """{pid: (ppid, utime+stime ticks)} of every process now."""
    table = {}
    for pid in pids():
        try:
            with open(f"/proc/{pid}/stat") as f:
                # the command name may hold spaces and ')': split after the last one
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # fields[0]=state [1]=ppid ... [11]=utime [12]=stime
        table[pid] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return table


def tree_pids(root, table=None):
    """root and all its live descendants (root first); [] if root is gone."""
    table = table if table is not None else proc_table()
    if root not in table:
        return []
    out, frontier = [root], [root]
    while frontier:
        kids = [p for p, (pp, _) in table.items() if pp in frontier and p not in out]
        out.extend(kids)
        frontier = kids
    return out


def tree_ticks(root):
    """utime+stime in clock ticks summed over root's live process tree (every
    thread of each process included: io_uring io-wq and SQPOLL threads too)."""
    table = proc_table()
    return sum(table[p][1] for p in tree_pids(root, table))


def tree_ticks_split(root):
    """(utime, stime) in clock ticks summed over root's live process tree:
    where tree_ticks' time went, user space or the kernel."""
    user = system = 0
    for pid in tree_pids(root):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        user, system = user + int(fields[11]), system + int(fields[12])
    return user, system


def tree_cpu_s(root):
    return tree_ticks(root) / CLK_TCK


def ticks_to_us(ticks):
    return ticks * 1e6 / CLK_TCK


def kv(line):
    """{key: value} of the key=value words in a load generator's line."""
    return dict(w.split("=", 1) for w in line.split() if "=" in w)


def floor(share, cpu, peer_cpu):
    """The best CPU ratio a server could reach against its peer if all but
    its socket work (share of its CPU per operation, cpu) cost nothing
    (see cpu_split.py); None when a figure is missing."""
    if share is None or cpu is None or not peer_cpu:
        return None
    return share * cpu / peer_cpu


def median(values):
    """Median of the numbers (None and "n/a" skipped); None if there are none."""
    v = sorted(float(x) for x in values if x is not None and x != "n/a")
    if not v:
        return None
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def perf_ok():
    if not shutil.which("perf"):
        return False
    r = subprocess.run(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "--", "true"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode == 0


def perf_start(pids, seconds=None):
    """Starts counting the syscalls entered by pids (perf on LOAD_CPU, in the
    background) for `seconds`, or until perf_count when seconds is None.
    Returns a handle for perf_count; None when perf is missing."""
    if not pids or not shutil.which("perf"):
        return None
    cmd = pinned(["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter",
                  "-p", ",".join(str(p) for p in pids)], LOAD_CPU)
    if seconds is not None:
        cmd += ["--", "sleep", str(seconds)]
    handle = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    handle.timed = seconds is not None
    return handle


def perf_count(handle, timeout=10.0):
    """The syscall count of a perf_start handle: waits for a timed one, stops
    an open-ended one (SIGINT). None when perf is missing or refused."""
    if handle is None:
        return None
    if not handle.timed and handle.poll() is None:
        handle.send_signal(signal.SIGINT)
    try:
        err = handle.communicate(timeout=None if handle.timed else timeout)[1]
    except subprocess.TimeoutExpired:
        handle.kill()
        err = handle.communicate()[1]
    for line in err.splitlines():
        parts = line.split(",")
        if len(parts) > 2 and parts[2].startswith("raw_syscalls:sys_enter"):
            return int(parts[0]) if parts[0].isdigit() else None
    return None


def perf_syscalls(pids, seconds):
    """Syscalls entered by pids during the next `seconds` (perf on LOAD_CPU);
    None when perf is missing or refused."""
    return perf_count(perf_start(pids, seconds))


def free_ports(n, host="127.0.0.1"):
    """n distinct TCP ports free right now on host (all bound at once, so
    the kernel cannot hand out one twice)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks = [socket.socket(fam, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port(host="127.0.0.1"):
    return free_ports(1, host)[0]


def wait_port(host, port, timeout=10.0):
    """True once host:port accepts a connection, False after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def need_port(host, port, timeout=10.0):
    """wait_port, raising RuntimeError when host:port does not listen in time."""
    if not wait_port(host, port, timeout):
        raise RuntimeError(f"port {port} not listening")


def pinned(argv, cpu):
    """argv run under taskset -c cpu (argv unchanged when cpu is None)."""
    return list(argv) if cpu is None else ["taskset", "-c", str(cpu)] + list(argv)


def start(argv, cpu=None, **kw):
    """Popen argv, pinned with taskset to cpu when given."""
    return subprocess.Popen(pinned(argv, cpu), **kw)


def stop(proc, timeout=5.0, sig=signal.SIGTERM):
    """Send sig, wait up to timeout, then SIGKILL the whole process tree.
    Returns the exit status."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            for p in reversed(tree_pids(proc.pid)):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            proc.wait()
    return proc.returncode


COMMON = os.path.dirname(os.path.abspath(__file__))


def program(path, src, tmp):
    """path when it is an executable, else the C file src compiled into tmp
    (with bench/common/loadgen.c, which the load generators share)."""
    if path and os.access(path, os.X_OK):
        return path
    out = os.path.join(tmp, os.path.splitext(os.path.basename(src))[0])
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-std=gnu11", "-I", COMMON, "-o", out, src,
                    os.path.join(COMMON, "loadgen.c"), "-luring"], check=True)
    return out


def during(load, probe, delay):
    """Runs load() in a thread and, `delay` seconds into it, probe() (a perf
    measurement, kept out of the timed rounds); returns (probe's result,
    load's result), load's result None when it raised RuntimeError."""
    out = [None]

    def run():
        try:
            out[0] = load()
        except RuntimeError as e:
            log(f"load failed: {e}")

    t = threading.Thread(target=run)
    t.start()
    time.sleep(delay)
    try:
        res = probe()
    finally:
        t.join()
    return res, out[0]


def loadavg():
    """The 1, 5 and 15 minute load averages, as /proc/loadavg gives them."""
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def log(msg):
    """A timestamped line on stderr (progress, next to the table on stdout)."""
    print(time.strftime("[%H:%M:%S] ") + msg, file=sys.stderr, flush=True)


def report(text, out=None):
    """Prints a result table and, when out is given, writes it there too."""
    print(text)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")


def _main(argv):
    if len(argv) >= 2 and argv[0] == "ticks":
        print(tree_ticks(int(argv[1])))
    elif len(argv) >= 2 and argv[0] == "pids":
        print("\n".join(str(p) for p in tree_pids(int(argv[1]))))
    elif argv and argv[0] == "median":
        m = median(argv[1:])
        print("n/a" if m is None else f"{m:g}")
    else:
        print("usage: benchlib.py ticks PID | pids PID | median N...", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

#!/bin/bash
# bench/echo/run.sh - zerg's echo module against a plain epoll echo server.
#
# Usage: bench/echo/run.sh [BUILD_DIR]
#
# Follows /work/shared/BENCHMARKING.md: each server runs pinned to CPU 0 (zerg
# with one worker, worker_cpu_affinity [0], and itself under taskset -c 0; the
# epoll server under taskset -c 0), the load generator (echo_load) on CPU 1.
# For every workload (connections x message size) both servers get one
# warm-up, then A B A B rounds of the same load; the server's CPU time
# (utime+stime of its whole process tree, from /proc) is sampled before and
# after each round. The table gives the medians over the rounds, and writes
# it to bench/results/echo.txt.
#
# BUILD_DIR (default .) is a configured and built zerg tree: zerg, the
# modules in build-modules/, and bench/echo/{epoll_echo,echo_load}. Missing
# bench programs are compiled on the fly with cc -O2.
#
# Environment:
#   ZERG_BIN, ZERG_MODULES   the zerg binary and the folder holding echo.so
#   EPOLL_ECHO, ECHO_LOAD    the two bench programs
#   ROUNDS (3)  DURATION (5 s per round)  WARMUP (1 s)
#   WORKLOADS ("64:64 64:16384 256:64 256:16384", CONNS:MSG_BYTES each)
#   LOAD_ENGINE (uring)      how echo_load drives its sockets: uring (io_uring,
#                            batched: far cheaper per message, so one core
#                            loads the servers harder) or epoll (a send and
#                            a recv syscall per message)
#   SYSCALLS (1)             also count server syscalls per message with perf,
#                            in a separate run (perf is kept out of the rounds)
#   SPLIT (1)                also sample each server's call stacks with perf
#                            in a separate run (bench/common/cpu_split.py):
#                            the share of its CPU spent in the kernel's
#                            socket work (tcp%), and from zerg's share the
#                            floor: the CPU ratio zerg would reach if
#                            everything else it does cost nothing
#   ZERG_EXTRA_CONF          YAML lines added at the top level of zerg's config
#                            (e.g. 'uring: {sqpoll: true}')
#   OUT (bench/results/echo.txt of the source tree)
#   ECHO_BENCH_SELFTEST=1    put a second epoll_echo in zerg's place (to test
#                            this harness without a zerg build)
#   MAX_RESTARTS (5)         a server killed by SIGKILL from outside (the
#                            machine is shared) is restarted and its run
#                            repeated, this many times at most; a crash of
#                            zerg (any other death) stops the benchmark
#
# The machine is shared and other benchmarks pin to the same CPUs: check
# `uptime` first. The table header records the load average; echo_load's own
# CPU use (load%) well under 100 means it was starved of CPU 1 by other work.
#
# Example: bench/echo/run.sh /tmp/build-bench
#          ZERG_EXTRA_CONF='uring: {send_zc_threshold: 0}' bench/echo/run.sh /tmp/build-bench
set -u

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/../.." && pwd)
. "$here/../common/lib.sh"

build=$(cd "${1:-.}" && pwd) || exit 2
ZERG_BIN=${ZERG_BIN:-$build/zerg}
ZERG_MODULES=${ZERG_MODULES:-$build/build-modules}
EPOLL_ECHO=${EPOLL_ECHO:-$build/bench/echo/epoll_echo}
ECHO_LOAD=${ECHO_LOAD:-$build/bench/echo/echo_load}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
WORKLOADS=${WORKLOADS:-"64:64 64:16384 256:64 256:16384"}
SYSCALLS=${SYSCALLS:-1}
SPLIT=${SPLIT:-1}
LOAD_ENGINE=${LOAD_ENGINE:-uring}
ZERG_EXTRA_CONF=${ZERG_EXTRA_CONF:-}
OUT=${OUT:-$srcdir/bench/results/echo.txt}
SELFTEST=${ECHO_BENCH_SELFTEST:-0}
HOST=127.0.0.1
SCPU=$BENCH_SERVER_CPU
LCPU=$BENCH_LOAD_CPU

tmp=$(mktemp -d /tmp/zerg-bench-echo.XXXXXX)
zpid='' epid=''
cleanup() {
    [ -n "$zpid" ] && bench_stop "$zpid" 10
    [ -n "$epid" ] && bench_stop "$epid" 5
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
    echo "run.sh: $*" >&2
    exit 1
}

# ---- programs ----
for v in EPOLL_ECHO ECHO_LOAD; do
    p=${!v}
    if [ ! -x "$p" ]; then
        src=$here/$(basename "$p").c
        [ -f "$src" ] || die "$p not built and $src missing"
        bench_log "$p not built: compiling $src"
        ${CC:-cc} -O2 -std=gnu11 -Wall -I"$here/../common" -o "$tmp/$(basename "$p")" "$src" \
            "$here/../common/loadgen.c" -luring || die "cannot compile $src"
        printf -v "$v" '%s' "$tmp/$(basename "$p")"
    fi
done
if [ "$SELFTEST" = 1 ]; then
    A_NAME=epollA
else
    A_NAME=zerg
    [ -x "$ZERG_BIN" ] || die "no zerg binary at $ZERG_BIN (build zerg, or set ZERG_BIN; ECHO_BENCH_SELFTEST=1 tests the harness alone)"
    [ -f "$ZERG_MODULES/echo.so" ] || die "no echo.so in $ZERG_MODULES (set ZERG_MODULES)"
fi
[ "$(nproc --all)" -ge 2 ] || bench_log "warning: fewer than 2 CPUs; server and load share one"

# ---- servers ----
zport=$(bench_free_port $HOST)
eport=$(bench_free_port $HOST)
[ "$zport" != "$eport" ] || eport=$(bench_free_port $HOST)

if [ "$SELFTEST" != 1 ]; then
    cat >"$tmp/zerg.yaml" <<EOF
# written by bench/echo/run.sh
worker_processes: 1
worker_cpu_affinity: [$SCPU]
pid: $tmp/zerg.pid
error_log: {path: $tmp/error.log, level: warn}
modules_path: $ZERG_MODULES
load_modules: [echo]
$ZERG_EXTRA_CONF
servers:
  - listen: ["$HOST:$zport"]
    module: echo
    echo: {idle_timeout: 60s}
EOF
fi

a_failed() {
    echo "run.sh: $A_NAME (pid $zpid) failed; its output:" >&2
    tail -n 20 "$tmp/a.log" >&2
    [ -f "$tmp/error.log" ] && tail -n 20 "$tmp/error.log" >&2
    exit 1
}

# start_a: (re)start server A (zerg, or epoll_echo in selftest mode)
start_a() {
    if [ "$SELFTEST" = 1 ]; then
        taskset -c "$SCPU" "$EPOLL_ECHO" $HOST "$zport" >>"$tmp/a.log" 2>&1 &
    else
        taskset -c "$SCPU" "$ZERG_BIN" -c "$tmp/zerg.yaml" >>"$tmp/a.log" 2>&1 &
    fi
    zpid=$!
    bench_wait_port $HOST "$zport" 10 || a_failed
    sleep 0.3 # let zerg's workers set up their rings behind the listening socket
    kill -0 "$zpid" 2>/dev/null || a_failed
    bench_log "$A_NAME pid $zpid on $HOST:$zport (tree: $(bench_tree_pids "$zpid" | tr '\n' ' '))"
}

start_b() {
    taskset -c "$SCPU" "$EPOLL_ECHO" $HOST "$eport" >>"$tmp/b.log" 2>&1 &
    epid=$!
    bench_wait_port $HOST "$eport" 10 || die "epoll_echo did not start: $(cat "$tmp/b.log")"
    bench_log "epoll pid $epid on $HOST:$eport"
}

# The machine is shared: a server killed from outside (SIGKILL, e.g. someone's
# cleanup) is restarted and the run repeated, at most MAX_RESTARTS times; any
# other death (a crash) ends the benchmark with the server's output.
MAX_RESTARTS=${MAX_RESTARTS:-5}
restarts=0
# check_alive WHICH -> 0 if alive; 1 if it was killed and has been restarted
check_alive() {
    local pid st
    if [ "$1" = A ]; then pid=$zpid; else pid=$epid; fi
    # a dead child stays a zombie until waited for: kill -0 alone still succeeds
    if kill -0 "$pid" 2>/dev/null && [ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" != Z ]; then
        return 0
    fi
    wait "$pid" 2>/dev/null
    st=$?
    if [ "$st" = 137 ] && [ "$restarts" -lt "$MAX_RESTARTS" ]; then
        restarts=$((restarts + 1))
        bench_log "server $1 (pid $pid) was killed by SIGKILL from outside: restarting it, repeating the run"
        echo "# server $1 (pid $pid) killed by SIGKILL from outside; restarted" >>"$tmp/detail.log"
        if [ "$1" = A ]; then
            [ -n "$(bench_tree_pids "$pid")" ] && bench_stop "$pid" 2
            start_a
        else
            start_b
        fi
        return 1
    fi
    if [ "$1" = A ]; then
        echo "run.sh: $A_NAME exited with status $st" >&2
        a_failed
    fi
    die "epoll_echo exited with status $st"
}

start_a
start_b

HZ=$(bench_clk_tck)
loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)
perf_on=0
if [ "$SYSCALLS" = 1 ] || [ "$SPLIT" = 1 ]; then
    if bench_perf_ok; then perf_on=1; else bench_log "perf unusable: no syscall counts, no CPU split"; fi
fi

# run_load WHICH CONNS BYTES SECONDS -> sets L_RATE L_MSGS L_US L_LOADCPU
run_load() {
    local which=$1 conns=$2 bytes=$3 secs=$4 pid port line t0 t1 rc
    while :; do
        if [ "$which" = A ]; then pid=$zpid port=$zport; else pid=$epid port=$eport; fi
        t0=$(bench_tree_ticks "$pid")
        line=$(taskset -c "$LCPU" "$ECHO_LOAD" $HOST "$port" "$conns" "$bytes" "$secs" "$LOAD_ENGINE")
        rc=$?
        t1=$(bench_tree_ticks "$pid")
        check_alive "$which" && break
    done
    [ $rc -eq 0 ] || bench_log "echo_load against $which exited $rc: $line"
    L_MSGS=$(bench_kv msgs "$line")
    L_RATE=$(bench_kv msgs_per_s "$line")
    L_LOADCPU=$(bench_kv load_cpu_pct "$line")
    L_US=$(bench_div $((t1 - t0)) "${L_MSGS:-0}" "$(bench_div 1000000 "$HZ" 1 %.6f)")
    echo "server=$which $line server_ticks=$((t1 - t0)) server_us_per_msg=$L_US" >>"$tmp/detail.log"
}

# during_load WHICH CONNS BYTES FN: runs a load of DURATION seconds and, for
# PWIN (DURATION-1) seconds in its middle, FN PWIN PID... on the server's
# tree; sets D_OUT (FN's output) and D_RATE (the load's msgs/s). FN is a
# perf helper of lib.sh: perf stays out of the timed rounds.
during_load() {
    local which=$1 conns=$2 bytes=$3 fn=$4 pid port lpid
    PWIN=$(awk -v d="$DURATION" 'BEGIN { print (d > 1.5) ? d - 1 : d / 2 }')
    while :; do
        if [ "$which" = A ]; then pid=$zpid port=$zport; else pid=$epid port=$eport; fi
        taskset -c "$LCPU" "$ECHO_LOAD" $HOST "$port" "$conns" "$bytes" "$DURATION" "$LOAD_ENGINE" \
            >"$tmp/perf-load.out" &
        lpid=$!
        sleep "$(awk -v d="$DURATION" -v w="$PWIN" 'BEGIN { print (d - w) / 2 }')"
        # shellcheck disable=SC2046 # one argument per pid
        D_OUT=$("$fn" "$PWIN" $(bench_tree_pids "$pid"))
        wait "$lpid"
        check_alive "$which" && break
    done
    D_RATE=$(bench_kv msgs_per_s "$(cat "$tmp/perf-load.out")")
}

# syscalls_per_msg WHICH CONNS BYTES -> sets SYS_PER_MSG: server syscalls per
# message (or n/a)
syscalls_per_msg() {
    during_load "$1" "$2" "$3" bench_perf_syscalls
    SYS_PER_MSG=$(bench_div "${D_OUT:-x}" "${D_RATE:-0}" "$(bench_div 1 "$PWIN" 1 %.6f)" %.2f)
}

# tcp_share WHICH CONNS BYTES -> sets TCP_SHARE: the share of the server's CPU
# spent in the kernel's socket work (bench/common/cpu_split.py), or n/a
tcp_share() {
    during_load "$1" "$2" "$3" bench_cpu_split
    TCP_SHARE=${D_OUT:-n/a}
}

# num FMT VALUE: printf FMT, or n/a (same width) when VALUE is not a number
# shellcheck disable=SC2059 # the format is the argument
num() {
    local w
    if [[ $2 =~ ^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$ ]]; then
        printf "$1" "$2"
    else
        w=$(printf "$1" 0 | wc -c)
        printf "%${w}s" n/a
    fi
}

fmt_bytes() {
    if [ "$1" -ge 1024 ] && [ $(($1 % 1024)) -eq 0 ]; then echo "$(($1 / 1024)) KiB"; else echo "$1 B"; fi
}

rows=()
saturated=0
for wl in $WORKLOADS; do
    conns=${wl%%:*}
    bytes=${wl##*:}
    name="${conns}c x $(fmt_bytes "$bytes")"
    bench_log "workload $name: warm-up"
    run_load A "$conns" "$bytes" "$WARMUP"
    run_load B "$conns" "$bytes" "$WARMUP"
    a_rate=() b_rate=() ratio=() a_us=() b_us=() cpu_ratio=() a_lc=() b_lc=()
    for r in $(seq 1 "$ROUNDS"); do
        run_load A "$conns" "$bytes" "$DURATION"
        a_rate+=("$L_RATE") a_us+=("$L_US") a_lc+=("$L_LOADCPU")
        ar=$L_RATE au=$L_US
        run_load B "$conns" "$bytes" "$DURATION"
        b_rate+=("$L_RATE") b_us+=("$L_US") b_lc+=("$L_LOADCPU")
        ratio+=("$(bench_div "$ar" "$L_RATE")")
        cpu_ratio+=("$(bench_div "$au" "$L_US")")
        bench_log "  round $r: $A_NAME $ar msgs/s ${au} us/msg | epoll $L_RATE msgs/s ${L_US} us/msg"
    done
    for lc in "${a_lc[@]}" "${b_lc[@]}"; do
        awk -v x="$lc" 'BEGIN { exit !(x > 90) }' && saturated=1
    done
    a_sys=n/a b_sys=n/a
    if [ "$perf_on" = 1 ] && [ "$SYSCALLS" = 1 ]; then
        syscalls_per_msg A "$conns" "$bytes"
        a_sys=$SYS_PER_MSG
        syscalls_per_msg B "$conns" "$bytes"
        b_sys=$SYS_PER_MSG
        bench_log "  syscalls/msg: $A_NAME $a_sys | epoll $b_sys"
    fi
    a_tcp=n/a b_tcp=n/a floor=n/a
    if [ "$perf_on" = 1 ] && [ "$SPLIT" = 1 ]; then
        tcp_share A "$conns" "$bytes"
        a_tcp=$TCP_SHARE
        tcp_share B "$conns" "$bytes"
        b_tcp=$TCP_SHARE
        floor=$(bench_div "$(bench_div "$a_tcp" 1 "$(bench_median "${a_us[@]}")" %.4f)" \
            "$(bench_median "${b_us[@]}")" 1 %.4f)
        bench_log "  socket work: $A_NAME $a_tcp | epoll $b_tcp of the CPU; floor $floor"
    fi
    rows+=("$(printf '%-14s' "$name")$(num ' %13.0f' "$(bench_median "${a_rate[@]}")")$(
        num ' %13.0f' "$(bench_median "${b_rate[@]}")")$(num ' %6.2f' "$(bench_median "${ratio[@]}")")$(
        num ' %12.2f' "$(bench_median "${a_us[@]}")")$(num ' %12.2f' "$(bench_median "${b_us[@]}")")$(
        num ' %6.2f' "$(bench_median "${cpu_ratio[@]}")")$(num ' %13.2f' "$a_sys")$(
        num ' %13.2f' "$b_sys")$(num ' %5.0f' "$(bench_median "${a_lc[@]}")")/$(
        num '%-3.0f' "$(bench_median "${b_lc[@]}")")$(num ' %4.0f' "$(bench_div "$a_tcp" 1 100 %.1f)")/$(
        num '%-3.0f' "$(bench_div "$b_tcp" 1 100 %.1f)")$(num ' %6.2f' "$floor")")
done

if [ "$SELFTEST" = 1 ]; then
    zver="selftest: epoll_echo in zerg's place"
else
    zver=$("$ZERG_BIN" -v 2>&1 | head -n 1)
fi
report() {
    echo "# TCP echo: $A_NAME vs single-thread epoll echo server ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo "# $(uname -sr), $(nproc --all) CPUs; servers on CPU $SCPU, echo_load ($LOAD_ENGINE) on CPU $LCPU;"
    echo "# load average before/after: $loadavg_start / $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine adds noise)"
    echo "# $A_NAME: $zver"
    echo "# ${ROUNDS} rounds x ${DURATION}s per server and workload, alternating, after a ${WARMUP}s warm-up;"
    echo "# every column is the median over the rounds (ratios: median of the per-round ratios)."
    echo "# us/msg = server CPU (utime+stime of its process tree) per echoed message;"
    echo "# CPU ratio < 1: $A_NAME spends less CPU per message. sys/msg: server syscalls"
    echo "# per message (perf raw_syscalls:sys_enter, separate run). load%: echo_load's own"
    echo "# CPU use ($A_NAME/epoll runs); near 100 means the load generator is the bottleneck."
    echo "# tcp%: the share of each server's CPU in the kernel's socket work (tcp_sendmsg and"
    echo "# tcp_recvmsg call stacks: copies, TCP/IP, the peer's receive path that loopback runs"
    echo "# in the sender), sampled with perf in a separate run. floor: $A_NAME's tcp% x its"
    echo "# us/msg over epoll's us/msg, the CPU ratio $A_NAME would reach if everything else"
    echo "# it does (event loop, io_uring, user space) cost nothing."
    printf '%-14s %13s %13s %6s %12s %12s %6s %13s %13s %9s %8s %6s\n' workload "$A_NAME msgs/s" \
        "epoll msgs/s" ratio "$A_NAME us/msg" "epoll us/msg" "CPU r" "$A_NAME sys/msg" \
        "epoll sys/msg" "load%" "tcp%" floor
    printf '%s\n' "${rows[@]}"
    [ "$restarts" -gt 0 ] && echo "# a server was killed from outside (SIGKILL) $restarts time(s) and restarted; those runs were repeated"
    if [ -s "$tmp/error.log" ]; then
        echo "# zerg's error log (level warn) has $(wc -l <"$tmp/error.log") lines; the first:"
        head -n 3 "$tmp/error.log" | cut -c1-160 | sed 's/^/#   /'
    fi
    if [ "$saturated" = 1 ]; then
        echo "# echo_load used over 90% of its CPU in some runs: there msgs/s is bounded by the"
        echo "# load generator (one core) as much as by the server; compare us/msg (CPU r) there."
    fi
}
mkdir -p "$(dirname "$OUT")"
report | tee "$OUT"
echo "# per-run detail (server A=$A_NAME B=epoll; echo_load output + server CPU):" >>"$OUT"
sed 's/^/#   /' "$tmp/detail.log" >>"$OUT"
bench_log "table written to $OUT"

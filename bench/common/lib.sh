# bench/common/lib.sh - shell helpers shared by zerg's benchmarks.
#
# Source it from a bash script:   . "$(dirname "$0")/../common/lib.sh"
# The method these helpers serve is /work/shared/BENCHMARKING.md: server on
# CPU 0, load on CPU 1, A B A B rounds, server CPU time per operation taken
# from /proc/PID/stat of the server's whole process tree, syscalls counted
# with perf's raw_syscalls:sys_enter tracepoint. Nothing here needs root
# except perf (and only where perf_event_paranoid forbids it otherwise).
#
# Functions (all print to stdout; none exits the caller):
#   bench_clk_tck                  clock ticks per second of /proc times
#   bench_tree_pids ROOT           ROOT and all its live descendants, one a line
#   bench_tree_ticks ROOT          utime+stime (ticks) summed over that tree,
#                                  every thread included (io_uring io-wq and
#                                  SQPOLL threads belong to their process)
#   bench_tree_cpu_s ROOT          the same in seconds (3 decimals)
#   bench_median N...              median of the numbers (mean of the middle
#                                  two for an even count); empty for none
#   bench_div A B [K] [FMT]        A/B*K printed with FMT (default %.3f);
#                                  "n/a" when B is 0 or either is not a number
#   bench_kv KEY LINE              value of KEY=value in LINE (echo_load output)
#   bench_free_port [HOST]         a TCP port free right now on HOST
#   bench_wait_port HOST PORT [S]  wait (default 10 s) until HOST:PORT accepts;
#                                  status 1 on timeout
#   bench_stop PID [S] [SIG]       send SIG (default TERM), wait up to S
#                                  seconds (default 5), then SIGKILL
#   bench_perf_ok                  status 0 when perf can count syscalls here
#   bench_perf_syscalls S PID...   run perf for S seconds on the PIDs (on the
#                                  load CPU, see BENCH_LOAD_CPU) and print
#                                  the syscalls they entered; empty if perf fails
#   bench_cpu_split S PID...       the share of the PIDs' CPU time spent in the
#                                  kernel's socket work (tcp_sendmsg and
#                                  tcp_recvmsg call stacks) over S seconds, as
#                                  0.xxxx; empty if perf fails (cpu_split.py)
#   bench_log MSG...               a timestamped line on stderr
#
# Variables: BENCH_SERVER_CPU (default 0), BENCH_LOAD_CPU (default 1).

_bench_common=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${BENCH_SERVER_CPU:=0}"
: "${BENCH_LOAD_CPU:=1}"

bench_log() {
    printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

bench_clk_tck() {
    getconf CLK_TCK 2>/dev/null || echo 100
}

# One awk pass over every /proc/PID/stat: the fields after the command name
# (which may hold spaces and parentheses) start after the last ") ".
# Prints "pid ppid ticks" per process.
_bench_proc_table() {
    # cat keeps going when a process vanishes between the glob and the read.
    cat /proc/[0-9]*/stat 2>/dev/null | awk '{
        pid = $1
        line = $0
        i = 0
        # position of the last ") "
        while ((j = index(substr(line, i + 1), ") ")) > 0) i += j
        rest = substr(line, i + 2)
        n = split(rest, f, " ")
        # f[1]=state f[2]=ppid ... f[12]=utime f[13]=stime
        if (n >= 13) print pid, f[2], f[12] + f[13]
    }'
}

bench_tree_pids() {
    _bench_proc_table | awk -v root="$1" '
        { ppid[$1] = $2; seen[$1] = 1 }
        END {
            if (!(root in seen)) exit
            out[root] = 1; print root
            # repeat until no new descendant is found (process trees are shallow)
            do {
                added = 0
                for (p in ppid)
                    if (!(p in out) && (ppid[p] in out)) { out[p] = 1; print p; added = 1 }
            } while (added)
        }'
}

bench_tree_ticks() {
    _bench_proc_table | awk -v root="$1" '
        { ppid[$1] = $2; t[$1] = $3; seen[$1] = 1 }
        END {
            if (!(root in seen)) { print 0; exit }
            out[root] = 1; sum = t[root]
            do {
                added = 0
                for (p in ppid)
                    if (!(p in out) && (ppid[p] in out)) { out[p] = 1; sum += t[p]; added = 1 }
            } while (added)
            print sum
        }'
}

bench_tree_cpu_s() {
    awk -v t="$(bench_tree_ticks "$1")" -v hz="$(bench_clk_tck)" 'BEGIN { printf "%.3f\n", t / hz }'
}

bench_median() {
    [ $# -gt 0 ] || return 0
    printf '%s\n' "$@" | grep -v '^n/a$' | sort -g | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print "n/a"; exit }
            if (NR % 2) m = v[(NR + 1) / 2]; else m = (v[NR / 2] + v[NR / 2 + 1]) / 2
            print m
        }'
}

bench_div() {
    awk -v a="$1" -v b="$2" -v k="${3:-1}" -v f="${4:-%.3f}" 'BEGIN {
        if (a !~ /^-?[0-9.eE+-]+$/ || b !~ /^-?[0-9.eE+-]+$/ || b + 0 == 0) print "n/a"
        else printf f "\n", a / b * k
    }'
}

bench_kv() {
    printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1
}

bench_free_port() {
    python3 - "${1:-127.0.0.1}" <<'EOF'
import socket, sys
h = sys.argv[1]
s = socket.socket(socket.AF_INET6 if ":" in h else socket.AF_INET)
s.bind((h, 0))
print(s.getsockname()[1])
EOF
}

bench_wait_port() {
    _h=$1 _p=$2 _s=${3:-10}
    _end=$(($(date +%s) + _s))
    while [ "$(date +%s)" -le "$_end" ]; do
        if (exec 3<>"/dev/tcp/$_h/$_p") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

bench_stop() {
    _pid=$1 _s=${2:-5} _sig=${3:-TERM}
    kill -0 "$_pid" 2>/dev/null || return 0
    kill -"$_sig" "$_pid" 2>/dev/null
    _i=0
    while kill -0 "$_pid" 2>/dev/null && [ "$_i" -lt $((_s * 20)) ]; do
        # reap it when it is our child, so kill -0 stops seeing a zombie
        if ! ps -o stat= -p "$_pid" 2>/dev/null | grep -qv Z; then
            break
        fi
        sleep 0.05
        _i=$((_i + 1))
    done
    if kill -0 "$_pid" 2>/dev/null && ps -o stat= -p "$_pid" 2>/dev/null | grep -qv Z; then
        bench_log "pid $_pid still alive after SIG$_sig and ${_s}s: SIGKILL"
        kill -KILL "$_pid" 2>/dev/null
    fi
    wait "$_pid" 2>/dev/null
    return 0
}

bench_perf_ok() {
    command -v perf >/dev/null 2>&1 &&
        perf stat -x, -e raw_syscalls:sys_enter -- true >/dev/null 2>&1
}

bench_perf_syscalls() {
    _s=$1
    shift
    _pids=$(printf '%s,' "$@")
    _pids=${_pids%,}
    taskset -c "$BENCH_LOAD_CPU" perf stat -x, -e raw_syscalls:sys_enter -p "$_pids" \
        -- sleep "$_s" 2>&1 >/dev/null | awk -F, '/raw_syscalls:sys_enter/ { print $1; exit }' |
        grep -E '^[0-9]+$'
}

bench_cpu_split() {
    BENCH_LOAD_CPU=$BENCH_LOAD_CPU python3 "$_bench_common/cpu_split.py" "$@" 2>/dev/null |
        sed -n 's/^tcp_share=\([0-9.]*\) .*/\1/p'
}

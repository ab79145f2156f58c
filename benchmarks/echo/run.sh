#!/usr/bin/env bash
# Side-by-side echo benchmark: every available server, one common client, loopback only.
#
#   benchmarks/echo/run.sh <build-dir> [options]
#
# For each server and each mode (pingpong, stream) a fresh server process is started pinned
# to CPU 0 (taskset), the client runs pinned to CPU 1, then the server gets SIGTERM (by PID)
# and prints its own getrusage as "server_cpu_s=...". Its CPU time at the moment the port
# first accepted (from /proc/<pid>/stat) is subtracted, so interpreter start-up is not
# charged to the echo work. Prints a markdown table with ratios against the plain liburing
# server (ref) measured in the same run. Defaults: 50 connections; pingpong 500,000 round
# trips of 64 bytes; stream 4 GiB in 1 MiB blocks, at most one block per connection sent but
# not yet echoed; at most 8 s of sending per server and mode (about 1 minute in all).
#
# Servers (rows appear only when the program exists):
#   ref      <bin>/ref_uring_echo_server            plain liburing, the physical limit
#   coio     <build>/benchmarks/echo/coio_echo_server, else <bin>/coio_echo_server,
#            else <build>/examples/echo_server
#   coio-read   the coio server's asyncio-style loop (--read read: read(65536), write, drain)
#   asio     <bin>/asio_echo_server                 Asio C++20 coroutines, io_uring backend
#   coio-epoll  the coio server with COIO_BACKEND=epoll
#   asio-epoll  <bin>/asio_epoll_echo_server        the same Asio server on its epoll reactor
#   libuv    <bin>/uv_echo_server                   plain libuv (epoll)
#   asyncio  /usr/bin/python3 asyncio_echo_server.py
#   uvloop   the same script with --loop uvloop     (if python3-uvloop is installed)
# plus any --server NAME=COMMAND (COMMAND contains {port}). A server must listen on
# 127.0.0.1:{port} and print "server_cpu_s=<user+sys seconds>" on SIGTERM (otherwise its CPU
# is read from /proc/<pid>/stat just before SIGTERM, at 10 ms resolution, and marked "~").
#
# Options:
#   --quick              tiny counts (CI smoke test: seconds, not a measurement)
#   --only a,b,...       run only these servers (ref is still needed for the ratios)
#   --modes a,b          run only these modes (pingpong, stream; default both)
#   --server NAME=CMD    add a server; may be repeated
#   --bin-dir DIR        where echo_client etc. are (default <build>/benchmarks/echo)
#   --conns N --size N --count N --bytes N --block N --window N --seconds N
#   --repeat N           run each (server, mode) N times, keep the fastest
#   --rounds N           run the whole list N times, server order rotating, and report
#                        medians: the table holds each server's median, and a second table
#                        its spread and its per-round ratio to ref. On a noisy machine the
#                        fastest of several servers in one run is the luckiest, not the
#                        best: compare medians over rounds, not single runs.
#   --server-cpu N --client-cpu N   CPUs to pin to (default 0 and 1)
#   --nice N             run server and client with this nice value (e.g. -10 on a machine
#                        shared with builds; needs root for negative values)
#   --cc NAME            run everything in a private network namespace (its own loopback)
#                        whose TCP congestion control is NAME (cubic, bbr, reno): needs root
#                        and unshare(1)/ip(8); the machine's own settings are not touched.
#                        Streaming depends on it: with bbr, TCP paces every connection itself
#                        (a timer per burst; loopback has no fq qdisc), which changes which
#                        servers stream fastest. The footer says which one was in use.
#   --keep-logs          keep the per-run logs (always kept when something failed)
# Exit status: 0 when every run succeeded, 1 otherwise.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=""
bin=""
quick=0
only=""
modes="pingpong stream"
keep_logs=0
repeat=1
rounds=1
conns=50
size=64
count=500000
block=1048576
window=""
bytes=$((4 << 30))
seconds=8
server_cpu=0
client_cpu=1
nice_value=0
cc=""
extra=()
args_in=("$@")

while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) quick=1 ;;
        --only) only=$2; shift ;;
        --modes) modes=${2//,/ }; shift ;;
        --server) extra+=("$2"); shift ;;
        --bin-dir) bin=$2; shift ;;
        --conns) conns=$2; shift ;;
        --size) size=$2; shift ;;
        --count) count=$2; shift ;;
        --bytes) bytes=$2; shift ;;
        --block) block=$2; shift ;;
        --window) window=$2; shift ;;
        --seconds) seconds=$2; shift ;;
        --repeat) repeat=$2; shift ;;
        --rounds) rounds=$2; shift ;;
        --server-cpu) server_cpu=$2; shift ;;
        --client-cpu) client_cpu=$2; shift ;;
        --nice) nice_value=$2; shift ;;
        --cc) cc=$2; shift ;;
        --keep-logs) keep_logs=1 ;;
        -h|--help) usage ;;
        -*) echo "run.sh: unknown option $1" >&2; usage ;;
        *) if [[ -z $build ]]; then build=$1; else usage; fi ;;
    esac
    shift
done
[[ -n $build ]] || usage
if [[ -n $cc && -z ${COIO_ECHO_NETNS:-} ]]; then
    # Again, inside a new network namespace: loopback up, the congestion control set there.
    if ! grep -qw -- "$cc" /proc/sys/net/ipv4/tcp_available_congestion_control; then
        echo "run.sh: congestion control '$cc' is not available here:" \
             "$(cat /proc/sys/net/ipv4/tcp_available_congestion_control)" >&2
        exit 1
    fi
    exec unshare --net env COIO_ECHO_NETNS=1 bash -c \
        'ip link set lo up && sysctl -qw net.ipv4.tcp_congestion_control="$1" && shift && exec "$@"' \
        netns "$cc" "$0" "${args_in[@]}"
fi
[[ -n $bin ]] || bin=$build/benchmarks/echo
[[ -n $window ]] || window=$block
client=$bin/echo_client
if [[ ! -x $client ]]; then
    echo "run.sh: $client not found (build the benchmarks first)" >&2
    exit 1
fi
if [[ $quick == 1 ]]; then
    count=2000
    bytes=$((64 << 20))
    seconds=2
fi
if (( $(nproc) < 2 )); then
    echo "run.sh: fewer than 2 CPUs: server and client share CPU $server_cpu" >&2
    client_cpu=$server_cpu
fi

# ---- the server list -----------------------------------------------------------------------
names=()
cmds=()
add_server() { names+=("$1"); cmds+=("$2"); }
[[ -x $bin/ref_uring_echo_server ]] && add_server ref "$bin/ref_uring_echo_server --port {port}"
for cand in "$build/benchmarks/echo/coio_echo_server" "$bin/coio_echo_server" \
            "$build/examples/echo_server"; do
    if [[ -x $cand ]]; then
        add_server coio "$cand --port {port}"
        # The asyncio-style loop (read(65536), write(std::move(data)), drain) next to the
        # zero-copy one (the example server is that loop already).
        [[ $cand == */coio_echo_server ]] && add_server coio-read "$cand --read read --port {port}"
        break
    fi
done
[[ -x $bin/asio_echo_server ]] && add_server asio "$bin/asio_echo_server --port {port}"
# The epoll backend: the same coio server, told by COIO_BACKEND to run on epoll, next to
# the epoll servers a user would otherwise pick.
coio_cmd=""
for i in "${!names[@]}"; do [[ ${names[$i]} == coio ]] && coio_cmd=${cmds[$i]}; done
[[ -n $coio_cmd ]] && add_server coio-epoll "env COIO_BACKEND=epoll $coio_cmd"
[[ -x $bin/asio_epoll_echo_server ]] && add_server asio-epoll "$bin/asio_epoll_echo_server --port {port}"
[[ -x $bin/uv_echo_server ]] && add_server libuv "$bin/uv_echo_server --port {port}"
if [[ -x /usr/bin/python3 ]]; then
    add_server asyncio "/usr/bin/python3 $here/asyncio_echo_server.py --port {port}"
    if /usr/bin/python3 -c 'import uvloop' 2>/dev/null; then
        add_server uvloop "/usr/bin/python3 $here/asyncio_echo_server.py --loop uvloop --port {port}"
    fi
fi
for spec in "${extra[@]+"${extra[@]}"}"; do add_server "${spec%%=*}" "${spec#*=}"; done
if [[ -n $only ]]; then
    keep_names=()
    keep_cmds=()
    for i in "${!names[@]}"; do
        if [[ ",$only," == *",${names[$i]},"* ]]; then
            keep_names+=("${names[$i]}")
            keep_cmds+=("${cmds[$i]}")
        fi
    done
    names=("${keep_names[@]+"${keep_names[@]}"}")
    cmds=("${keep_cmds[@]+"${keep_cmds[@]}"}")
fi
if [[ ${#names[@]} == 0 ]]; then
    echo "run.sh: no server to run" >&2
    exit 1
fi

logs=$(mktemp -d /tmp/echo-bench.XXXXXX)
server_pid=""
cleanup() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tck=$(getconf CLK_TCK)
# CPU seconds (user+sys) of a process so far, from /proc/<pid>/stat (fields after the comm).
proc_cpu() {
    local rest
    rest=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    awk -v tck="$tck" '{ printf "%.6f", ($12 + $13) / tck }' <<<"$rest"
}
# Busy and total ticks of the whole machine, to see how much CPU other processes took.
machine_ticks() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat; }
kv() { grep -o "\b$1=[^ ]*" <<<"$2" | head -1 | cut -d= -f2; }

declare -A R          # results: R[name:mode:key]
failures=0

# run_once NAME CMD MODE LOG: one server process, one client run. Stores results in R.
run_once() {
    local name=$1 cmd=$2 mode=$3 log=$4 port srv_cmd start_cpu end_cpu out cpu_line
    port=$("$client" --free-port)
    srv_cmd=${cmd//\{port\}/$port}
    echo "+ taskset -c $server_cpu $srv_cmd" >"$log"
    # exec: the PID we get is the server itself, so SIGTERM reaches it directly.
    nice -n "$nice_value" taskset -c "$server_cpu" sh -c "exec $srv_cmd" \
        >"$log.server" 2>"$log.server.err" &
    server_pid=$!
    # Wait (at most 10 s) until the port accepts; give up at once if the server died.
    local tries=0
    until "$client" --probe --port "$port" --timeout-ms 200 >/dev/null 2>&1; do
        tries=$((tries + 1))
        if ! kill -0 "$server_pid" 2>/dev/null || (( tries >= 50 )); then
            echo "server $name did not start listening on port $port" >>"$log"
            cat "$log.server.err" >>"$log"
            return 1
        fi
    done
    start_cpu=$(proc_cpu "$server_pid")
    local args=(--port "$port" --conns "$conns" --seconds "$seconds" --mode "$mode")
    if [[ $mode == pingpong ]]; then
        args+=(--size "$size" --count "$count")
    else
        args+=(--block "$block" --window "$window" --bytes "$bytes")
    fi
    echo "+ taskset -c $client_cpu $client ${args[*]}" >>"$log"
    local m0 m1
    m0=$(machine_ticks)
    if ! out=$(nice -n "$nice_value" taskset -c "$client_cpu" "$client" "${args[@]}" 2>>"$log"); then
        echo "client failed" >>"$log"
        return 1
    fi
    m1=$(machine_ticks)
    echo "$out" >>"$log"
    end_cpu=$(proc_cpu "$server_pid")
    kill -TERM "$server_pid"
    local waited=0
    while kill -0 "$server_pid" 2>/dev/null && (( waited < 100 )); do
        sleep 0.1
        waited=$((waited + 1))
    done
    if kill -0 "$server_pid" 2>/dev/null; then
        echo "server $name ignored SIGTERM for 10 s; killed" >>"$log"
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
        return 1
    fi
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    cat "$log.server" >>"$log"
    cpu_line=$(grep -o 'server_cpu_s=[0-9.]*' "$log.server" | tail -1 | cut -d= -f2 || true)
    local approx=""
    if [[ -z $cpu_line ]]; then
        cpu_line=$end_cpu
        approx="~"
    fi
    local k=$name:$mode
    R[$k:approx]=$approx
    R[$k:server_cpu]=$(awk -v a="$cpu_line" -v b="$start_cpu" 'BEGIN { v = a - b; if (v < 0) v = 0; printf "%.6f", v }')
    R[$k:seconds]=$(kv seconds "$out")
    R[$k:client_cpu]=$(kv client_cpu_s "$out")
    # Share of the machine's CPU time used by anything other than this server and client.
    read -r b0 t0 <<<"$m0"
    read -r b1 t1 <<<"$m1"
    R[$k:other]=$(awk -v b="$((b1 - b0))" -v t="$((t1 - t0))" -v s="${R[$k:server_cpu]}" \
        -v c="${R[$k:client_cpu]}" -v tck="$tck" -v n="$(nproc)" \
        'BEGIN { o = b / tck - s - c; if (o < 0) o = 0; w = t / tck / n; printf "%.0f", (w > 0 ? 100 * o / (w * n) : 0) }')
    if [[ $mode == pingpong ]]; then
        R[$k:rate]=$(kv rt_per_s "$out")
        R[$k:p50]=$(kv p50_us "$out")
        R[$k:p99]=$(kv p99_us "$out")
        R[$k:units]=$(kv round_trips "$out")
        # server CPU microseconds per round trip
        R[$k:cost]=$(awk -v s="${R[$k:server_cpu]}" -v n="${R[$k:units]}" 'BEGIN { printf "%.3f", (n > 0 ? s / n * 1e6 : 0) }')
    else
        R[$k:rate]=$(kv gb_per_s "$out")
        R[$k:units]=$(kv bytes "$out")
        # server CPU seconds per GB (1e9 bytes) echoed
        R[$k:cost]=$(awk -v s="${R[$k:server_cpu]}" -v n="${R[$k:units]}" 'BEGIN { printf "%.3f", (n > 0 ? s / (n / 1e9) : 0) }')
    fi
    return 0
}

echo "echo benchmark: ${#names[@]} servers (${names[*]}), $conns connections," \
     "pingpong ${size} B x $count, stream ${block} B blocks x $bytes B, <= ${seconds}s each," \
     "server on CPU $server_cpu, client on CPU $client_cpu; logs in $logs" >&2
declare -A RR         # per-round results with --rounds: RR[name:mode:key:round]
for ((round = 1; round <= rounds; round++)); do
  (( rounds > 1 )) && echo "round $round of $rounds" >&2
  for ((j = 0; j < ${#names[@]}; j++)); do
    # Each round starts one server further down the list, so no server always runs first.
    i=$(( (j + round - 1) % ${#names[@]} ))
    name=${names[$i]}
    for mode in $modes; do
        case $mode in pingpong|stream) ;; *) echo "run.sh: unknown mode $mode" >&2; exit 2 ;; esac
        best=""
        for ((rep = 1; rep <= repeat; rep++)); do
            log=$logs/$name.$mode.$rep.log
            declare -A prev=()
            for key in approx server_cpu seconds client_cpu other rate p50 p99 units cost; do
                prev[$key]=${R[$name:$mode:$key]:-}
            done
            if run_once "$name" "${cmds[$i]}" "$mode" "$log"; then
                printf '  %-8s %-8s run %d: %s\n' "$name" "$mode" "$rep" "$(tail -n +3 "$log" | grep '^mode=' | head -1)" >&2
                # keep the fastest repetition
                if [[ -n $best ]] && awk -v a="${prev[rate]}" -v b="${R[$name:$mode:rate]}" 'BEGIN { exit !(a >= b) }'; then
                    for key in "${!prev[@]}"; do R[$name:$mode:$key]=${prev[$key]}; done
                fi
                best=1
            else
                echo "  $name $mode run $rep FAILED (log: $log)" >&2
                cleanup
                server_pid=""
                failures=$((failures + 1))
                if [[ -n $best ]]; then
                    for key in "${!prev[@]}"; do R[$name:$mode:$key]=${prev[$key]}; done
                fi
            fi
            unset prev
        done
        if [[ -n $best ]]; then
            for key in rate cost; do RR[$name:$mode:$key:$round]=${R[$name:$mode:$key]}; done
        fi
    done
  done
done
# median KEY_PREFIX: the median of RR[KEY_PREFIX:1..rounds] (the rounds that succeeded).
median() {
    local r vals=()
    for ((r = 1; r <= rounds; r++)); do [[ -n ${RR[$1:$r]:-} ]] && vals+=("${RR[$1:$r]}"); done
    (( ${#vals[@]} )) || return 0
    printf '%s\n' "${vals[@]}" | sort -g | awk '{ v[NR] = $1 } END { printf "%.6f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
if (( rounds > 1 )); then
    for name in "${names[@]}"; do
        for mode in $modes; do
            for key in rate cost; do
                m=$(median "$name:$mode:$key")
                [[ -n $m ]] && R[$name:$mode:$key]=$m
            done
            # Per-round ratio to ref (same round: the fairest pairing on a noisy machine).
            for ((r = 1; r <= rounds; r++)); do
                a=${RR[$name:$mode:rate:$r]:-} b=${RR[ref:$mode:rate:$r]:-}
                [[ -n $a && -n $b ]] && RR[$name:$mode:vsref:$r]=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.6f", a / b }')
            done
        done
    done
fi

# ---- report -----------------------------------------------------------------------------------
cell() { local v=${R[$1]:-}; echo "${v:-n/a}"; }
ratio() { # ratio NAME MODE KEY: value / ref's value
    local a=${R[$1:$2:$3]:-} b=${R[ref:$2:$3]:-}
    if [[ -z $a || -z $b ]]; then echo "n/a"; return; fi
    awk -v a="$a" -v b="$b" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2fx", a / b }'
}
fmt() { awk -v v="$1" -v f="$2" 'BEGIN { if (v == "" || v == "n/a") print "n/a"; else printf f, v }'; }

echo
echo "| server | round trips/s | vs ref | p50 us | p99 us | server CPU us/rt | vs ref | stream GB/s | vs ref | server CPU s/GB | vs ref |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for name in "${names[@]}"; do
    p=$name:pingpong
    s=$name:stream
    echo "| $name | $(fmt "$(cell $p:rate)" '%.0f') | $(ratio "$name" pingpong rate) | $(fmt "$(cell $p:p50)" '%.1f') | $(fmt "$(cell $p:p99)" '%.1f') | ${R[$p:approx]:-}$(fmt "$(cell $p:cost)" '%.2f') | $(ratio "$name" pingpong cost) | $(fmt "$(cell $s:rate)" '%.2f') | $(ratio "$name" stream rate) | ${R[$s:approx]:-}$(fmt "$(cell $s:cost)" '%.3f') | $(ratio "$name" stream cost) |"
done
echo
echo "Where the time went$( (( rounds > 1 )) && echo " (last round)"): CPU seconds / wall seconds of the client run (100% = one core busy);"
echo "'other' = share of the machine's CPU time taken by other processes during the run (above"
echo "~5% the figures are noisy):"
echo
echo "| server | pingpong: server | client | other | stream: server | client | other |"
echo "|---|---:|---:|---:|---:|---:|---:|"
pct() { if [[ -n $1 ]]; then echo "$1%"; else echo "n/a"; fi; }
util() { awk -v c="$1" -v s="$2" 'BEGIN { if (c == "" || s == "" || s + 0 == 0) print "n/a"; else printf "%.0f%%", 100 * c / s }'; }
for name in "${names[@]}"; do
    p=$name:pingpong
    s=$name:stream
    echo "| $name | $(util "${R[$p:server_cpu]:-}" "${R[$p:seconds]:-}") | $(util "${R[$p:client_cpu]:-}" "${R[$p:seconds]:-}") | $(pct "${R[$p:other]:-}") | $(util "${R[$s:server_cpu]:-}" "${R[$s:seconds]:-}") | $(util "${R[$s:client_cpu]:-}" "${R[$s:seconds]:-}") | $(pct "${R[$s:other]:-}") |"
done
if (( rounds > 1 )); then
    echo
    echo "Spread over $rounds rounds (the table above holds medians): each round's figure, and its"
    echo "ratio to ref's figure in the same round (median, lowest..highest):"
    echo
    echo "| server | mode | median | lowest..highest | vs ref: median | lowest..highest |"
    echo "|---|---|---:|---:|---:|---:|"
    spread() { # spread KEY_PREFIX FORMAT: "lowest..highest" of RR[KEY_PREFIX:round]
        local r vals=()
        for ((r = 1; r <= rounds; r++)); do [[ -n ${RR[$1:$r]:-} ]] && vals+=("${RR[$1:$r]}"); done
        (( ${#vals[@]} )) || { echo "n/a"; return; }
        printf '%s\n' "${vals[@]}" | sort -g | awk -v f="$2" '{ v[NR] = $1 } END { printf f ".." f, v[1], v[NR] }'
    }
    for mode in $modes; do
        for name in "${names[@]}"; do
            if [[ $mode == pingpong ]]; then f='%.0f'; else f='%.2f'; fi
            echo "| $name | $mode | $(fmt "$(median "$name:$mode:rate")" "$f") | $(spread "$name:$mode:rate" "$f") |" \
                 "$(fmt "$(median "$name:$mode:vsref")" '%.2fx') | $(spread "$name:$mode:vsref" '%.2fx') |"
        done
    done
fi
echo
cc_used=$(cat /proc/sys/net/ipv4/tcp_congestion_control)
[[ -n ${COIO_ECHO_NETNS:-} ]] && cc_used+=" (--cc: a private network namespace)"
echo "$conns connections; pingpong: ${size}-byte messages, $count round trips max; stream:" \
     "${block}-byte blocks, $bytes bytes max, at most $window bytes per connection unechoed;" \
     "each run <= ${seconds}s" \
     "(+ drain); server pinned to CPU $server_cpu, client to CPU $client_cpu; best of $repeat;" \
     "$( (( rounds > 1 )) && echo "median of $rounds rounds;")" \
     "nice $nice_value; TCP congestion control $cc_used."
if [[ $quick == 1 ]]; then
    echo "(--quick: a smoke test; runs this short measure start-up, not throughput)"
fi
if (( failures > 0 || keep_logs == 1 )); then
    echo "logs: $logs" >&2
else
    rm -rf "$logs"
fi
(( failures == 0 ))

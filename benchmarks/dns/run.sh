#!/usr/bin/env bash
# benchmarks/dns/run.sh <build-dir> - DNS throughput, coio vs plain c-ares vs Python asyncio.
#
# Starts a private dnsmasq on 127.0.0.1:<free port> serving COUNT names bench0.test ..
# bench<COUNT-1>.test (bench<i>.test -> 10.<i>>16>.<i>>8>.<i>), with the same flags as the test
# fixture tests/support/dnsmasq.hpp, then resolves all names with:
#   ref_cares_poll (sort)     c-ares 1.18 + poll(), INFLIGHT at once, ares_getaddrinfo AF_INET
#                             with c-ares' default RFC 6724 sorting   <- the ratio base
#   ref_cares_poll (nosort)   the same with ARES_AI_NOSORT (sorting costs a connect() per answer)
#   ref_cares_poll uncapped   all COUNT lookups at once: shows the burst-drop problem
#   ref_aiodns.py             asyncio (and uvloop) + aiodns, INFLIGHT at once, if installed
#   bench_dns                 coio, if <build-dir>/benchmarks/dns/bench_dns exists
# Each configuration runs REPS times, interleaved with the others; the table shows the median
# names/s, the range, the timeouts summed over all runs, and the ratio of medians against the
# capped reference (and against its ARES_AI_NOSORT variant).
# Then the repeated burst (coio only): COUNT AF_UNSPEC lookups (A + AAAA each) started at
# once, BURST_REPS times on one loop, with the resolver's default cap, timeout and tries.
# Target: no repetition over 1 s (a lost query costs a whole retry timeout) and no query
# dropped by the server (the drops column of /proc/net/udp for dnsmasq's socket). The script
# exits 1 when the target is missed.
# Nothing leaves 127.0.0.1; dnsmasq is stopped by PID on exit.
#
# Knobs (environment): COUNT=2000 INFLIGHT=100 REPS=11 UNCAPPED_REPS=3 TIMEOUT_MS=2000 TRIES=2
#                      BURST_REPS=20 (0: no burst run)
#                      PIN=0 (1: dnsmasq on CPU 0, clients on CPU 1; measured slower on a
#                      shared 2-CPU machine: every query then needs a cross-CPU wake-up)
# Example: benchmarks/dns/run.sh /tmp/build-x
set -u -o pipefail

build=${1:?usage: run.sh <build-dir>}
here=$(cd "$(dirname "$0")" && pwd)
COUNT=${COUNT:-2000}
INFLIGHT=${INFLIGHT:-100}
REPS=${REPS:-11}
UNCAPPED_REPS=${UNCAPPED_REPS:-3}
TIMEOUT_MS=${TIMEOUT_MS:-2000}
TRIES=${TRIES:-2}
PIN=${PIN:-0}
BURST_REPS=${BURST_REPS:-20}

ref=$build/benchmarks/dns/ref_cares_poll
coio_bench=$build/benchmarks/dns/bench_dns
[[ -x $ref ]] || { echo "run.sh: $ref not built (cmake --build $build --target ref_cares_poll)" >&2; exit 2; }

dnsmasq_bin=${COIO_DNSMASQ:-$(command -v dnsmasq || echo /usr/sbin/dnsmasq)}
[[ -x $dnsmasq_bin ]] || { echo "run.sh: dnsmasq not found (apt-get install dnsmasq-base)" >&2; exit 2; }

server_cpu=() client_cpu=()
if [[ $PIN == 1 ]] && (( $(nproc) >= 2 )) && command -v taskset >/dev/null; then
    server_cpu=(taskset -c 0) client_cpu=(taskset -c 1)
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/coio-dnsbench-XXXXXX")
dnsmasq_pid=
cleanup() {
    if [[ -n $dnsmasq_pid ]]; then
        kill -TERM "$dnsmasq_pid" 2>/dev/null
        wait "$dnsmasq_pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

awk -v n="$COUNT" 'BEGIN { for (i = 0; i < n; i++)
    printf "10.%d.%d.%d bench%d.test\n", int(i / 65536) % 256, int(i / 256) % 256, i % 256, i }' \
    > "$tmp/hosts"
: > "$tmp/dnsmasq.conf"

# Same flags as coio_test::dnsmasq (see tests/support/dnsmasq.hpp for why each is there).
start_dnsmasq() {  # $1 = port; sets dnsmasq_pid
    local user=()
    (( EUID == 0 )) && user=(--user=root)
    # cleanup() kills $!, so $! must be dnsmasq itself, never a shell waiting for it: the
    # explicit exec guarantees that whatever bash decides about forking background jobs.
    ( exec "${server_cpu[@]}" "$dnsmasq_bin" --keep-in-foreground --conf-file="$tmp/dnsmasq.conf" \
        --listen-address=127.0.0.1 --port="$1" --bind-interfaces --no-resolv --no-poll \
        --no-hosts --addn-hosts="$tmp/hosts" --local=/#/ --no-round-robin --local-ttl=0 \
        --pid-file= "${user[@]}" --log-facility="$tmp/dnsmasq.log" \
        </dev/null 2>"$tmp/dnsmasq.stderr" ) &
    dnsmasq_pid=$!
}

# A free port: try one outside the ephemeral range, retry if dnsmasq reports it in use (exit 2).
port=
for attempt in 1 2 3 4 5 6 7 8; do
    candidate=$(( 20000 + RANDOM % 10000 ))
    start_dnsmasq "$candidate"
    # Ready = it answers a real query for bench0.test (bounded: 50 x 100 ms).
    for _ in $(seq 50); do
        if ! kill -0 "$dnsmasq_pid" 2>/dev/null; then break; fi
        if "$ref" --server "127.0.0.1:$candidate" --count 1 --timeout-ms 100 --tries 1 >/dev/null 2>&1; then
            port=$candidate
            break
        fi
    done
    [[ -n $port ]] && break
    if ! kill -0 "$dnsmasq_pid" 2>/dev/null; then
        wait "$dnsmasq_pid"; rc=$?
        dnsmasq_pid=
        (( rc == 2 )) && grep -q "in use" "$tmp/dnsmasq.stderr" && continue
        echo "run.sh: dnsmasq exited with $rc:" >&2; cat "$tmp/dnsmasq.stderr" "$tmp/dnsmasq.log" >&2
        exit 1
    fi
    echo "run.sh: dnsmasq on port $candidate does not answer" >&2
    exit 1
done
[[ -n $port ]] || { echo "run.sh: no free port found" >&2; exit 1; }
server=127.0.0.1:$port

echo "# DNS benchmark: $COUNT names, dnsmasq $("$dnsmasq_bin" --version | head -1 | awk '{print $3}') at $server (pid $dnsmasq_pid)," \
     "c-ares $(pkg-config --modversion libcares 2>/dev/null || echo '?'), inflight cap $INFLIGHT," \
     "timeout ${TIMEOUT_MS} ms x $TRIES tries, $REPS runs each${server_cpu:+, dnsmasq on CPU 0 / clients on CPU 1}," \
     "$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"

# add_config <label> <reps> <command...>: registers a configuration. run_all then runs the
# capped ones interleaved (A B C A B C ...), so a burst of load from elsewhere on the machine
# hits every configuration alike instead of skewing one ratio, and the uncapped one last.
labels=() reps_of=() cmd_of=()
add_config() {
    labels+=("$1"); reps_of+=("$2"); shift 2
    cmd_of+=("$(printf '%q ' "$@")")
}
declare -A vals tsum fsum lastline
run_one() {  # $1 = index into labels
    local i=$1 label=${labels[$1]} out v t f w
    out=$(eval "timeout 300 ${client_cpu[*]} ${cmd_of[$i]}" 2>&1 | tail -1)
    v=$(sed -n 's/.*names_per_s=\([0-9.]*\).*/\1/p' <<<"$out")
    t=$(sed -n 's/.*timeouts=\([0-9]*\).*/\1/p' <<<"$out")
    f=$(sed -n 's/.*failures=\([0-9]*\).*/\1/p' <<<"$out")
    w=$(sed -n 's/.*wrong=\([0-9]*\).*/\1/p' <<<"$out")
    if [[ -z $v ]]; then
        echo "  $label: no result: $out" >&2
        return
    fi
    vals[$label]+="$v "
    tsum[$label]=$(( ${tsum[$label]:-0} + ${t:-0} ))
    fsum[$label]=$(( ${fsum[$label]:-0} + ${f:-0} + ${w:-0} ))
    lastline[$label]=$out
}
run_all() {
    local max=0 r i
    for i in "${!labels[@]}"; do (( reps_of[i] > max )) && max=${reps_of[i]}; done
    for (( r = 0; r < max; r++ )); do
        for i in "${!labels[@]}"; do
            [[ ${labels[$i]} == *uncapped* ]] && continue
            (( r < reps_of[i] )) && run_one "$i"
        done
    done
    for i in "${!labels[@]}"; do
        [[ ${labels[$i]} == *uncapped* ]] || continue
        for (( r = 0; r < reps_of[i]; r++ )); do run_one "$i"; done
    done
}
median_min_max() {  # numbers on stdin -> "median min max"
    sort -n | awk '{ a[NR] = $1 } END {
        m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
        printf "%.0f %.0f %.0f", m, a[1], a[NR] }'
}

common=(--server "$server" --count "$COUNT" --timeout-ms "$TIMEOUT_MS" --tries "$TRIES")
add_config "c-ares+poll (sort)" "$REPS" "$ref" "${common[@]}" --inflight "$INFLIGHT"
add_config "c-ares+poll (nosort)" "$REPS" "$ref" "${common[@]}" --inflight "$INFLIGHT" --nosort
add_config "c-ares+poll uncapped" "$UNCAPPED_REPS" "$ref" "${common[@]}" --inflight 0

py=/usr/bin/python3  # Debian's python: python3-aiodns is installed for it, not for pyenv
if [[ -x $py ]] && "$py" -c 'import aiodns' 2>/dev/null; then
    add_config "python asyncio+aiodns" "$REPS" "$py" "$here/ref_aiodns.py" "${common[@]}" --inflight "$INFLIGHT"
    if "$py" -c 'import uvloop' 2>/dev/null; then
        add_config "python uvloop+aiodns" "$REPS" "$py" "$here/ref_aiodns.py" "${common[@]}" --inflight "$INFLIGHT" --uvloop
    fi
else
    echo "  (python reference skipped: apt-get install python3-aiodns)"
fi

if [[ -x $coio_bench ]]; then
    add_config "coio bench_dns" "$REPS" "$coio_bench" --server "$server" --count "$COUNT"
else
    echo "  (coio bench_dns not built: $coio_bench)"
fi

run_all
declare -A results
order=()
for label in "${labels[@]}"; do
    [[ -n ${vals[$label]:-} ]] || continue
    results[$label]="$(tr ' ' '\n' <<<"${vals[$label]}" | grep . | median_min_max) ${tsum[$label]} ${fsum[$label]}"
    order+=("$label")
done

base=${results["c-ares+poll (sort)"]:-0}; base=${base%% *}
base_nosort=${results["c-ares+poll (nosort)"]:-0}; base_nosort=${base_nosort%% *}
printf '\n%-24s %12s %19s %9s %9s %10s %12s\n' "configuration" "names/s" "min..max" "timeouts" "failures" "vs sort" "vs nosort"
for label in "${order[@]}"; do
    read -r med lo hi ts fs <<<"${results[$label]}"
    printf '%-24s %12s %19s %9s %9s %10s %12s\n' "$label" "$med" "$lo..$hi" "$ts" "$fs" \
        "$(awk -v a="$med" -v b="$base" 'BEGIN { printf "%.2fx", b ? a / b : 0 }')" \
        "$(awk -v a="$med" -v b="$base_nosort" 'BEGIN { printf "%.2fx", b ? a / b : 0 }')"
done
echo
echo "# last run of each configuration:"
for label in "${order[@]}"; do echo "  $label: ${lastline[$label]}"; done
echo "# timeouts/failures are summed over all runs of a configuration; names/s counts verified answers only"

if [[ -x $coio_bench ]] && (( BURST_REPS > 0 )); then
    echo
    echo "# repeated burst: $COUNT AF_UNSPEC lookups x $BURST_REPS on one loop, default cap/timeout/tries"
    burst=$(timeout 300 "${client_cpu[@]}" "$coio_bench" --server "$server" --count "$COUNT" --family unspec \
        --reps "$BURST_REPS" --timeout-ms 0 --tries 0 2>&1 | tail -1)
    echo "  coio bench_dns: $burst"
    max_rep=$(sed -n 's/.*max_rep_s=\([0-9.]*\).*/\1/p' <<<"$burst")
    over=$(sed -n 's/.*reps_over_1s=\([0-9]*\).*/\1/p' <<<"$burst")
    drops=$(sed -n 's/.*server_drops=\([0-9a-z]*\).*/\1/p' <<<"$burst")
    ok=$(sed -n 's/.* ok=\([0-9]*\).*/\1/p' <<<"$burst")
    if [[ -n $max_rep && $over == 0 && $drops == 0 && $ok == $(( COUNT * BURST_REPS )) ]]; then
        echo "  target met: slowest repetition ${max_rep} s, none over 1 s, 0 queries dropped by the server"
    else
        echo "  TARGET MISSED: slowest repetition ${max_rep:-?} s, ${over:-?} over 1 s, server drops ${drops:-?}, ok ${ok:-?}" >&2
        exit 1
    fi
fi

#!/usr/bin/env bash
# benchmarks/tls/run.sh - TLS echo side by side: coio::tls, Asio ssl::stream, Python asyncio
# + ssl (and uvloop when installed), one common client (tls_bench_client, coio::tls), on
# 127.0.0.1 with a throw-away ECDSA P-256 certificate; every connection runs TLS 1.3 with
# TLS_AES_128_GCM_SHA256 and X25519 (the client offers nothing else).
#
# Usage: run.sh <dir with coio_tls_echo_server, tls_bench_client[, asio_tls_echo_server]>
#               [--seconds S] [--repeat N] [--quick] [--only coio,asio,asyncio,uvloop]
# Prints a markdown table: rates, server CPU per operation, and coio's ratio to each row.
# --repeat N runs every server N times, interleaved, and keeps each cell's best (highest
# rate, lowest CPU): on a machine shared with other work that is the least disturbed run.
set -euo pipefail

bin=$(cd "$1" && pwd)
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
seconds=3
repeat=1
only="coio,asio,asyncio,uvloop"
pp_conns=20 st_conns=8 hs_conns=4
while [[ $# -gt 0 ]]; do
    case $1 in
        --seconds) seconds=$2; shift 2 ;;
        --quick) seconds=0.5; shift ;;
        --repeat) repeat=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done

work=$(mktemp -d "${TMPDIR:-/tmp}/coio-tls-bench.XXXXXX")
server_pid=""
cleanup() {
    if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 2 -subj /CN=bench-CA \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1
openssl req "${ec[@]}" -keyout server.key -out server.csr -subj /CN=localhost >/dev/null 2>&1
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 \
    -extfile server.ext >/dev/null 2>&1

# Server on CPU 0, client on CPU 1 when the machine has two.
pin_server=() pin_client=()
if command -v taskset >/dev/null && [[ $(nproc) -ge 2 ]]; then
    pin_server=(taskset -c 0) pin_client=(taskset -c 1)
fi
tck=$(getconf CLK_TCK)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

declare -A rate cpu
rows=()
# keeps the better of an existing cell and a new value (higher rate, lower CPU)
better() { awk -v a="$1" -v b="$2" -v hi="$3" 'BEGIN { if (a == "" || a == "-") { print b; exit }
    if (b == "-") { print a; exit } if ((hi && b + 0 > a + 0) || (!hi && b + 0 < a + 0)) print b; else print a }'; }
run_server() {  # name, command...
    local name=$1
    shift
    [[ ",$only," == *",$name,"* ]] || return 0
    local port
    port=$(free_port)
    "${pin_server[@]}" "$@" --port "$port" --cert server.pem --key server.key >"$name.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 400); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.025
    done
    [[ " ${rows[*]} " == *" $name "* ]] || rows+=("$name")
    local mode conns out before after
    for mode in pingpong stream handshake; do
        case $mode in pingpong) conns=$pp_conns ;; stream) conns=$st_conns ;; handshake) conns=$hs_conns ;; esac
        before=$(cpu_ticks "$server_pid")
        out=$("${pin_client[@]}" "$bin/tls_bench_client" --port "$port" --cafile ca.pem --mode "$mode" \
            --conns "$conns" --seconds "$seconds" --size 64 --block 262144) || out="failed"
        after=$(cpu_ticks "$server_pid")
        local r ops
        r=$(sed -n 's/.* rate=\([0-9.]*\) .*/\1/p' <<<"$out")
        ops=$(sed -n 's/.* ops=\([0-9]*\) .*/\1/p' <<<"$out")
        rate[$name,$mode]=$(better "${rate[$name,$mode]:-}" "${r:-0}" 1)
        # server CPU per operation: us per round trip / handshake, s per GB streamed
        local c
        c=$(awk -v t=$((after - before)) -v hz="$tck" -v ops="${ops:-0}" -v m="$mode" \
            'BEGIN { s = t / hz; if (ops == 0) { print "-"; exit }
                     if (m == "stream") printf "%.2f", s / (ops / 1e9); else printf "%.1f", s / ops * 1e6 }')
        cpu[$name,$mode]=$(better "${cpu[$name,$mode]:-}" "$c" 0)
    done
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

for _ in $(seq "$repeat"); do
    run_server coio "$bin/coio_tls_echo_server"
    if [[ -x $bin/asio_tls_echo_server ]]; then run_server asio "$bin/asio_tls_echo_server"; fi
    run_server asyncio python3 "$here/asyncio_tls_echo_server.py"
    if python3 -c 'import uvloop' 2>/dev/null; then run_server uvloop python3 "$here/asyncio_tls_echo_server.py" --loop uvloop; fi
done

echo
echo "TLS 1.3 echo, TLS_AES_128_GCM_SHA256, ${seconds}s per cell, best of $repeat; pingpong: $pp_conns conns x 64 B;" \
     "stream: $st_conns conns x 256 KiB blocks (one in flight each); handshake: $hs_conns concurrent loops"
echo
echo "| server | pingpong round trips/s | stream MB/s | handshakes/s | server CPU us/round trip | server CPU s/GB | server CPU us/handshake |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for n in "${rows[@]}"; do
    echo "| $n | ${rate[$n,pingpong]} | ${rate[$n,stream]} | ${rate[$n,handshake]} | ${cpu[$n,pingpong]} | ${cpu[$n,stream]} | ${cpu[$n,handshake]} |"
done
if [[ " ${rows[*]} " == *" coio "* ]]; then
    echo
    echo "| coio / row | pingpong | stream | handshakes |"
    echo "| --- | ---: | ---: | ---: |"
    for n in "${rows[@]}"; do
        [[ $n == coio ]] && continue
        echo "| coio / $n | $(awk -v a="${rate[coio,pingpong]}" -v b="${rate[$n,pingpong]}" 'BEGIN{ if (b > 0) printf "%.2fx", a/b; else print "-" }') |" \
             "$(awk -v a="${rate[coio,stream]}" -v b="${rate[$n,stream]}" 'BEGIN{ if (b > 0) printf "%.2fx", a/b; else print "-" }') |" \
             "$(awk -v a="${rate[coio,handshake]}" -v b="${rate[$n,handshake]}" 'BEGIN{ if (b > 0) printf "%.2fx", a/b; else print "-" }') |"
    done
fi

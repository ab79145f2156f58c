#!/usr/bin/env bash
# examples/tls_examples_test.sh - runs the TLS examples the way their comments say, on
# 127.0.0.1 only, with a throw-away CA made here (ctest runs it: examples_tls).
#   tls_echo_server: a Python ssl client gets its line echoed (certificate verified).
#   https_get: against `openssl s_server -www`: status line, headers, body, exit 0; without
#              the CA: the ssl_error message on stderr and exit 1.
# Usage: tls_examples_test.sh <dir with https_get and tls_echo_server>
set -euo pipefail

bin=$(cd "$1" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/coio-tls-examples.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 2 -subj /CN=coio-example-CA \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1
openssl req "${ec[@]}" -keyout server.key -out server.csr -subj /CN=localhost >/dev/null 2>&1
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 \
    -extfile server.ext >/dev/null 2>&1

fail() { echo "FAIL: $*" >&2; exit 1; }

# Waits (bounded) until a line matching $2 appears in file $1.
wait_for_line() {
    for _ in $(seq 200); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.025
    done
    fail "no '$2' in $1: $(cat "$1" 2>/dev/null)"
}

# ---- tls_echo_server, with a Python ssl client ----
"$bin/tls_echo_server" --cert server.pem --key server.key --port 0 --seconds 20 >echo.out 2>echo.err &
pids+=($!)
wait_for_line echo.out "serving TLS on"
port=$(sed -n 's/^serving TLS on 127\.0\.0\.1:\([0-9]*\)$/\1/p' echo.out)
[[ -n $port ]] || fail "no port in: $(cat echo.out)"
got=$(timeout 20 python3 - "$port" <<'PY'
import socket, ssl, sys
ctx = ssl.create_default_context(cafile="ca.pem")
with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"hello tls\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(100)
            if not chunk:
                break
            data += chunk
        print(data.decode().strip(), s.version())
PY
)
[[ $got == "hello tls TLSv1.3" ]] || fail "tls_echo_server echoed '$got'"
echo "tls_echo_server: OK ($got)"

# ---- https_get against openssl s_server -www ----
sport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
openssl s_server -accept "127.0.0.1:$sport" -cert server.pem -key server.key -www >s_server.out 2>&1 &
pids+=($!)
wait_for_line s_server.out ACCEPT
rc=0
timeout 20 "$bin/https_get" "https://127.0.0.1:$sport/" --cafile ca.pem >get.out 2>get.err || rc=$?
[[ $rc == 0 ]] || fail "https_get exited $rc: $(cat get.err)"
head -n1 get.out | grep -qx 'HTTP/1.0 200 ok' || fail "status line: $(head -n1 get.out)"
grep -qx 'Content-type: text/html' get.out || fail "no header in: $(head -n5 get.out)"
grep -q '<pre>' get.out || fail "no body in get.out"
echo "https_get: OK ($(head -n1 get.out))"

rc=0
timeout 20 "$bin/https_get" "https://127.0.0.1:$sport/" >bad.out 2>bad.err || rc=$?
[[ $rc == 1 ]] || fail "https_get without the CA exited $rc"
grep -qx 'certificate verify failed: unable to get local issuer certificate' bad.err ||
    fail "https_get without the CA said: $(cat bad.err)"
[[ ! -s bad.out ]] || fail "https_get printed output despite the failure"
echo "https_get without the CA: OK (exit 1: $(cat bad.err))"

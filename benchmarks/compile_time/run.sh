#!/usr/bin/env bash
# Compile time of a coio translation unit, side by side with a hello world, in one run.
#
#   benchmarks/compile_time/run.sh [--cxx g++] [--opt -O2] [--repeat 3]
#
# Each row compiles one small .cpp (-std=c++20 -c, the given optimisation) --repeat times and
# keeps the fastest user+sys CPU time (CPU time, not wall time: the machines are shared).
# Rows:
#   hello                 #include <cstdio>, puts
#   std headers           the standard headers <coio/coro.hpp> + <coio/run.hpp> include
#   coro+run              #include <coio/coro.hpp>, <coio/run.hpp>; main runs a coroutine
#   coio.hpp              #include <coio/coio.hpp> (everything but TLS); the same main
#   ... separate          the same with COIO_SEPARATE_COMPILATION (the loop's bodies are
#                         compiled once, in the file that includes <coio/src.hpp>)
#   ... separate + PCH    coio.hpp as a precompiled header (what CMake's
#                         target_precompile_headers(app PRIVATE <coio/coio.hpp>) does)
#   src.hpp               the one file that compiles the bodies (separate compilation)
# Prints a markdown table: seconds, and seconds more than hello world (a ratio to a hello
# world of ~0.01 s would say nothing).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
include="$here/../../include"
cxx=g++
opt=-O2
repeat=3
while [[ $# -gt 0 ]]; do
    case $1 in
        --cxx) cxx=$2; shift 2 ;;
        --opt) opt=$2; shift 2 ;;
        --repeat) repeat=$2; shift 2 ;;
        *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
    esac
done

work=$(mktemp -d /tmp/coio-compile-time.XXXXXX)
trap 'rm -rf "$work"' EXIT

cat > "$work/hello.cpp" <<'EOF'
#include <cstdio>
int main() { std::puts("hello"); }
EOF
cat > "$work/core.cpp" <<'EOF'
#include <coio/coro.hpp>
#include <coio/run.hpp>
coio::coro<int> amain() { co_return 0; }
int main() { return coio::run(amain()); }
EOF
cat > "$work/all.cpp" <<'EOF'
#include <coio/coio.hpp>
coio::coro<int> amain() { co_return 0; }
int main() { return coio::run(amain()); }
EOF
cat > "$work/all_pch.cpp" <<'EOF'
#include "pch.hpp"
coio::coro<int> amain() { co_return 0; }
int main() { return coio::run(amain()); }
EOF
echo '#include <coio/coio.hpp>' > "$work/pch.hpp"
echo '#include <coio/src.hpp>' > "$work/src.cpp"
# The standard headers that coro.hpp + run.hpp pull in, alone.
"$cxx" -std=c++20 "$opt" -I"$include" -H -fsyntax-only "$work/core.cpp" 2>&1 |
    grep -oE '^\.+ /usr/include/c\+\+/[0-9]+/[a-z_]+$' | awk '{print $2}' | sort -u |
    sed 's|.*/||; s|.*|#include <&>|' > "$work/std.cpp"
echo 'int main() {}' >> "$work/std.cpp"

# cpu_seconds FILE FLAGS...: fastest user+sys of --repeat compilations.
cpu_seconds() {
    local file=$1 best="" t
    shift
    for _ in $(seq "$repeat"); do
        t=$( { /usr/bin/time -f '%U %S' "$cxx" -std=c++20 "$opt" -I"$include" -I"$work" "$@" -c "$file" -o /dev/null; } 2>&1 |
            tail -1 | awk '{printf "%.2f", $1 + $2}')
        if [[ -z $best ]] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$t; fi
    done
    echo "$best"
}

declare -a names times
row() { names+=("$1"); times+=("$2"); }
row "hello" "$(cpu_seconds "$work/hello.cpp")"
row "std headers of coro+run" "$(cpu_seconds "$work/std.cpp")"
row "coro.hpp + run.hpp" "$(cpu_seconds "$work/core.cpp")"
row "coro.hpp + run.hpp, separate" "$(cpu_seconds "$work/core.cpp" -DCOIO_SEPARATE_COMPILATION)"
row "coio.hpp" "$(cpu_seconds "$work/all.cpp")"
row "coio.hpp, separate" "$(cpu_seconds "$work/all.cpp" -DCOIO_SEPARATE_COMPILATION)"
"$cxx" -std=c++20 "$opt" -I"$include" -DCOIO_SEPARATE_COMPILATION -x c++-header "$work/pch.hpp" -o "$work/pch.hpp.gch"
row "coio.hpp, separate + PCH" "$(cpu_seconds "$work/all_pch.cpp" -DCOIO_SEPARATE_COMPILATION -Winvalid-pch)"
rm -f "$work/pch.hpp.gch"
row "src.hpp (once per program)" "$(cpu_seconds "$work/src.cpp" -DCOIO_SEPARATE_COMPILATION)"

echo "compile time: $cxx $("$cxx" -dumpfullversion) -std=c++20 $opt, CPU seconds (user+sys), best of $repeat"
echo
echo "| translation unit | seconds | more than hello |"
echo "|---|---:|---:|"
hello=${times[0]}
for i in "${!names[@]}"; do
    more=$(awk -v a="${times[$i]}" -v b="$hello" 'BEGIN { printf "%+.2f", a - b }')
    printf '| %s | %s | %s |\n' "${names[$i]}" "${times[$i]}" "$more"
done

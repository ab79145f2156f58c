# benchmarks/common.sh - sourced by the benchmarks' run.sh scripts: what every one of them
# does before measuring.

# coio_build_dir ARGS...: the one argument must be a build tree; sets `build` to its absolute
# path, else prints the usage line and exits 2.
coio_build_dir() {
    if [[ $# -ne 1 || ! -d $1 ]]; then
        echo "usage: $0 BUILD_DIR   (a configured and built coio build tree)" >&2
        exit 2
    fi
    build=$(cd "$1" && pwd)
}

# coio_find_program AREA NAME: prints the path of the program NAME built under
# $build/benchmarks/AREA (or $build/AREA, or $build), else says so and exits 2.
coio_find_program() {
    local dir
    for dir in "$build/benchmarks/$1" "$build/$1" "$build"; do
        if [[ -x $dir/$2 ]]; then echo "$dir/$2"; return; fi
    done
    echo "$2 not found under $build" >&2
    exit 2
}

# The Python of the asyncio references: Debian's, else the first on PATH.
python=/usr/bin/python3
[[ -x $python ]] || python=$(command -v python3)

#!/usr/bin/env bash
# bench/run.sh — what `make bench` runs: the quick set of every benchmark in BUILD_DIR.
# Usage: bash bench/run.sh BUILD_DIR
# bench_peak (the denominators) and bench_kernels --quick first, then every other bench_*
# program whose source (bench/NAME.c) takes --quick. Tables go to stdout; a program that fails
# is reported and makes the exit status 1, the others still run.
set -u
build="${1:-build}"
if [ ! -d "$build" ]; then
    echo "bench/run.sh: no build directory '$build' (run make build first)" >&2
    exit 2
fi
status=0
run() {   # run NAME ARGS...: one benchmark, timed
    local exe="$build/$1"; shift
    if [ ! -x "$exe" ]; then echo "bench/run.sh: $exe not built, skipped" >&2; return; fi
    echo "## $(basename "$exe") $*"
    local t0=$(date +%s)
    if ! "$exe" "$@"; then echo "bench/run.sh: $(basename "$exe") failed" >&2; status=1; fi
    echo "($(basename "$exe"): $(( $(date +%s) - t0 )) s)"
    echo
}
echo "# sdc benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
run bench_peak --quick
run bench_kernels --quick
for exe in "$build"/bench_*; do
    name=$(basename "$exe")
    case "$name" in bench_peak|bench_kernels) continue ;; esac
    [ -x "$exe" ] && [ -f "$exe" ] || continue
    # Only programs whose usage/source mentions --quick take part in the quick set.
    if grep -q -- "--quick" "bench/$name.c" 2>/dev/null; then run "$name" --quick; fi
done
exit $status

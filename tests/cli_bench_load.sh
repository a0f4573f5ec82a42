#!/usr/bin/env bash
# cli_bench_load.sh — `sdc bench-load` on the fixtures prints a well-formed table (a row per file,
# right format, tensor count and size, positive times, ratio 1.00 for the first file), --json and
# --cold work, bad input gets one line and exit 2. No timing is asserted.
# Usage: bash tests/cli_bench_load.sh /path/to/sdc   (from the repo root)
set -u
SDC=${1:?usage: cli_bench_load.sh /path/to/sdc}
D=tests/data
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

FILES="tiny-sd1.safetensors tiny-sd1.ckpt tiny-sd1-fp16.safetensors tiny-sd1-legacy.ckpt"
declare -A FMT=([tiny-sd1.safetensors]=safetensors [tiny-sd1.ckpt]="ckpt (zip)"
                [tiny-sd1-fp16.safetensors]=safetensors [tiny-sd1-legacy.ckpt]="ckpt (legacy)")
args=(); for f in $FILES; do args+=("$D/$f"); done

# check_table OUTFILE: one header and one row per file, with the right columns
check_table() {
  local out=$1 first=1
  grep -q '^file .*format .*tensors .*MB .*open ms .*ready ms .*cpu ms .*faults .*MB/s .*peakRSS .*disk MB .*open x .*ready x' "$out" ||
    { fail "$out: no table header"; return; }
  for f in $FILES; do
    local row; row=$(grep "^$f " "$out")
    [ -n "$row" ] || { fail "no row for $f"; continue; }
    local fmt=${FMT[$f]} rest
    rest=${row#"$f"}; rest=${rest#"${rest%%[! ]*}"}
    case "$rest" in "$fmt "*) ;; *) fail "$f: format column is not '$fmt': $row"; continue ;; esac
    rest=${rest#"$fmt"}
    # tensors MB open_med [min-max] ready_med [min-max] cpu faults MB/s peakRSS disk openx readyx
    read -r nt mb om or rm rr cpu flt mbs rss disk ox rx extra <<<"$rest"
    local size; size=$(stat -c %s "$D/$f")
    awk -v nt="$nt" -v mb="$mb" -v sz="$size" -v om="$om" -v rm="$rm" -v mbs="$mbs" -v rss="$rss" \
        -v ox="$ox" -v rx="$rx" -v cpu="$cpu" -v flt="$flt" -v first="$first" 'BEGIN{
          d = mb - sz / 1e6; if (d < 0) d = -d
          exit !(nt == 995 && d < 0.06 && om > 0 && rm >= om && cpu > 0 && flt > 0 && mbs > 0 && rss > sz / 1e6 && ox > 0 && rx > 0 &&
                 (!first || (ox == 1 && rx == 1)))}' &&
      [[ "$or" =~ ^\[[0-9.]+-[0-9.]+\]$ ]] && [[ "$rr" =~ ^\[[0-9.]+-[0-9.]+\]$ ]] && [ -z "$extra" ] &&
      ok "$f: $fmt, $nt tensors, $mb MB, open $om ms, ready $rm ms, peak RSS $rss MB" ||
      fail "$f: malformed row: $row"
    first=0
  done
}

# --- warm, 2 runs
if "$SDC" bench-load "${args[@]}" -r 2 >"$T/warm.out" 2>"$T/warm.err"; then
  check_table "$T/warm.out"
  grep -q "^bench-load: 2 runs per file, .*page cache warm" "$T/warm.out" && ok "warm: title" || fail "warm: title"
else
  fail "bench-load (warm) exited $?: $(cat "$T/warm.err")"
fi

# --- cold, 1 run: every file gets a cache check line (evicted, or a note that the kernel kept it)
if "$SDC" bench-load "${args[@]}" -r 1 --cold >"$T/cold.out" 2>"$T/cold.err"; then
  check_table "$T/cold.out"
  n=$(grep -cE "^(cold check|note): " "$T/cold.out")
  [ "$n" = 4 ] && ok "cold: a page-cache check per file" || fail "cold: $n cache check lines (expected 4)"
else
  fail "bench-load --cold exited $?: $(cat "$T/cold.err")"
fi

# --- json
if "$SDC" bench-load "$D/tiny-sd1.safetensors" "$D/tiny-sd1-fp16.safetensors" -r 3 --json >"$T/j.out" 2>"$T/j.err"; then
  c=$(grep -c '"path":' "$T/j.out")
  grep -q '"runs":[[:space:]]*3' "$T/j.out" && [ "$c" = 2 ] && grep -q '"ready_s":' "$T/j.out" &&
    grep -q '"peak_rss_mb":' "$T/j.out" && ok "json: 2 files, 3 runs" || fail "json: $(head -c 300 "$T/j.out")"
else
  fail "bench-load --json exited $?: $(cat "$T/j.err")"
fi

# --- bad input: one line on stderr, exit 2
head -c 5000 "$D/tiny-sd1.safetensors" >"$T/cut.safetensors"
for c in "missing:$T/nope.safetensors" "dir:$D" "truncated:$T/cut.safetensors" "none:" "runs0:-r 0 $D/tiny-sd1.safetensors" \
         "runsx:-r x $D/tiny-sd1.safetensors" "badopt:--bogus $D/tiny-sd1.safetensors" \
         "second_bad:$D/tiny-sd1.safetensors $T/cut.safetensors"; do
  name=${c%%:*}; a=${c#*:}
  "$SDC" bench-load $a -r 1 >"$T/e.out" 2>"$T/e.err"; rc=$?
  n=$(wc -l <"$T/e.err")
  [ "$rc" = 2 ] && [ "$n" = 1 ] && [ ! -s "$T/e.out" ] && ok "bad input ($name): $(cat "$T/e.err")" ||
    fail "bad input ($name): exit $rc, $n lines on stderr: $(head -3 "$T/e.err") $(head -3 "$T/e.out")"
done

if [ "$fails" -ne 0 ]; then echo "cli_bench_load: $fails failure(s)"; exit 1; fi
echo "cli_bench_load: all passed"

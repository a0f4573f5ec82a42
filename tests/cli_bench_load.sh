#!/usr/bin/env bash
# cli_bench_load.sh — `sdc bench-load` on the fixtures prints a well-formed table (a row per file and
# mode, right format, tensor count and size, positive times, the first UNet call no earlier than ready,
# a phase line each), the untimed warm-up rounds are reported apart (one line per file and mode, as
# many times as rounds; none with -w 0), --json and --cold work, bad input gets one line and exit 2
# (a file generation cannot use, too: a .ckpt without its config). No timing is asserted.
# Usage: bash tests/cli_bench_load.sh /path/to/sdc   (from the repo root)
set -u
SDC=${1:?usage: cli_bench_load.sh /path/to/sdc}
D=tests/data
CFG=$D/tiny-sd1.config.json   # the .ckpt twins carry no config metadata
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

FILES="tiny-sd1.safetensors tiny-sd1.ckpt tiny-sd1-fp16.safetensors tiny-sd1-legacy.ckpt"
declare -A FMT=([tiny-sd1.safetensors]=safetensors [tiny-sd1.ckpt]="ckpt (zip)"
                [tiny-sd1-fp16.safetensors]=safetensors [tiny-sd1-legacy.ckpt]="ckpt (legacy)")
args=(); for f in $FILES; do args+=("$D/$f"); done

# check_table OUTFILE: one header and a row per file and mode, with the right columns
check_table() {
  local out=$1
  grep -q '^file .*format .*mode .*tensors .*MB .*cat ms .*ready ms .*1st UNet ms .*x cat .*spread .*cpu s .*faults .*peak .*steady .*disk' "$out" ||
    { fail "$out: no table header"; return; }
  for f in $FILES; do
    for mode in default low-mem; do
      local row; row=$(grep "^$f .* $mode " "$out")
      [ -n "$row" ] || { fail "no $mode row for $f"; continue; }
      local fmt=${FMT[$f]} rest
      rest=${row#"$f"}; rest=${rest#"${rest%%[! ]*}"}
      case "$rest" in "$fmt "*) ;; *) fail "$f: format column is not '$fmt': $row"; continue ;; esac
      rest=${rest#"$fmt"}
      # mode tensors MB cat ready [min-max] first [min-max] xcat spread cpu faults peak steady disk
      read -r md nt mb cat rm rr fu fr xc sp cpu flt pk sd disk extra <<<"$rest"
      local size; size=$(stat -c %s "$D/$f")
      awk -v nt="$nt" -v mb="$mb" -v sz="$size" -v cat="$cat" -v rm="$rm" -v fu="$fu" -v xc="$xc" -v sp="$sp" \
          -v cpu="$cpu" -v flt="$flt" -v pk="$pk" -v sd="$sd" 'BEGIN{
            d = mb - sz / 1e6; if (d < 0) d = -d
            exit !(nt == 995 && d < 0.06 && cat >= 0 && rm > 0 && fu >= rm && xc > 0 && sp >= 1 && cpu >= 0 &&
                   flt > 0 && pk > 0 && sd > 0)}' &&
        [ "$md" = "$mode" ] && [[ "$rr" =~ ^\[[0-9]+-[0-9]+\]$ ]] && [[ "$fr" =~ ^\[[0-9]+-[0-9]+\]$ ]] && [ -z "$extra" ] &&
        ok "$f $mode: $fmt, $nt tensors, $mb MB, cat $cat ms, ready $rm ms, first UNet call $fu ms, peak $pk MB" ||
        fail "$f $mode: malformed row: $row"
      grep -q "^  $f $mode: start [0-9]* | open .* | unet .* | text [0-9]*$" "$out" &&
        ok "$f $mode: phase line" || fail "$f $mode: no phase line"
    done
  done
}

# --- warm, 2 runs
if "$SDC" bench-load "${args[@]}" -r 2 --config "$CFG" >"$T/warm.out" 2>"$T/warm.err"; then
  check_table "$T/warm.out"
  grep -q "^bench-load: 2 runs per file and mode (after 1 untimed round), .*page cache warm" "$T/warm.out" &&
    ok "warm: title" || fail "warm: title"
  n=$(grep -cE "^warm-up \(untimed, not in the stats\): [^ ]+ (default|low-mem): 1st UNet [0-9]+ ms$" "$T/warm.out")
  [ "$n" = 8 ] && ok "warm-up: one untimed round, a line per file and mode" || fail "warm-up: $n lines (expected 8)"
else
  fail "bench-load (warm) exited $?: $(cat "$T/warm.err")"
fi
# --- two warm-up rounds, and none
if "$SDC" bench-load "$D/tiny-sd1.safetensors" -r 1 -w 2 --mode default >"$T/w2.out" 2>"$T/w2.err" &&
   "$SDC" bench-load "$D/tiny-sd1.safetensors" -r 1 --warmup 0 --mode default >"$T/w0.out" 2>"$T/w0.err"; then
  grep -qE "^warm-up \(untimed, not in the stats\): tiny-sd1.safetensors default: 1st UNet [0-9]+ [0-9]+ ms$" "$T/w2.out" &&
    grep -q "(after 2 untimed rounds)" "$T/w2.out" && ok "-w 2: two untimed times" || fail "-w 2: $(cat "$T/w2.out")"
  ! grep -q "^warm-up" "$T/w0.out" && grep -q "(after 0 untimed rounds)" "$T/w0.out" &&
    ok "--warmup 0: no warm-up line" || fail "--warmup 0: $(cat "$T/w0.out")"
else
  fail "bench-load -w exited $?: $(cat "$T/w2.err" "$T/w0.err")"
fi

# --- cold, 1 run: every file gets a cache check line (evicted, or a note that the kernel kept it)
if "$SDC" bench-load "${args[@]}" -r 1 --cold --config "$CFG" >"$T/cold.out" 2>"$T/cold.err"; then
  check_table "$T/cold.out"
  n=$(grep -cE "^(cold check|note): " "$T/cold.out")
  [ "$n" = 4 ] && ok "cold: a page-cache check per file" || fail "cold: $n cache check lines (expected 4)"
else
  fail "bench-load --cold exited $?: $(cat "$T/cold.err")"
fi

# --- json
if "$SDC" bench-load "$D/tiny-sd1.safetensors" "$D/tiny-sd1-fp16.safetensors" -r 3 --mode default --json >"$T/j.out" 2>"$T/j.err"; then
  c=$(grep -c '"path":' "$T/j.out")
  grep -q '"runs":[[:space:]]*3' "$T/j.out" && [ "$c" = 2 ] && grep -q '"ready_s":' "$T/j.out" &&
    grep -q '"warmup_rounds":[[:space:]]*1' "$T/j.out" &&
    [ "$(grep -c '"first_unet_each_s":[[:space:]]*\[[0-9.e-]*, [0-9.e-]*, [0-9.e-]*\]' "$T/j.out")" = 2 ] &&
    [ "$(grep -c '"warmup_first_unet_s":[[:space:]]*\[[0-9.e-]*\]' "$T/j.out")" = 2 ] &&
    grep -q '"first_unet_s":' "$T/j.out" && grep -q '"cat_s":' "$T/j.out" && grep -q '"peak_rss_ready_mb":' "$T/j.out" &&
    [ "$(grep -c '"name":[[:space:]]*"unet"' "$T/j.out")" = 2 ] && ! grep -q '"low-mem"' "$T/j.out" &&
    ok "json: 2 files, 3 runs, default mode only, phases" || fail "json: $(head -c 300 "$T/j.out")"
else
  fail "bench-load --json exited $?: $(cat "$T/j.err")"
fi

# --- bad input: one line on stderr, exit 2
head -c 5000 "$D/tiny-sd1.safetensors" >"$T/cut.safetensors"
for c in "missing:$T/nope.safetensors" "dir:$D" "truncated:$T/cut.safetensors" "none:" "runs0:-r 0 $D/tiny-sd1.safetensors" \
         "runsx:-r x $D/tiny-sd1.safetensors" "badopt:--bogus $D/tiny-sd1.safetensors" \
         "badmode:--mode fast $D/tiny-sd1.safetensors" "noconfig:$D/tiny-sd1.ckpt" \
         "badprec:--precision f8 $D/tiny-sd1.safetensors" "bf16lowmem:--precision bf16 --mode low-mem $D/tiny-sd1.safetensors" \
         "second_bad:$D/tiny-sd1.safetensors $T/cut.safetensors" "warmneg:-w -1 $D/tiny-sd1.safetensors" \
         "warmbig:-w 11 $D/tiny-sd1.safetensors" "warmnone:$D/tiny-sd1.safetensors --warmup"; do
  name=${c%%:*}; a=${c#*:}
  "$SDC" bench-load $a -r 1 >"$T/e.out" 2>"$T/e.err"; rc=$?
  n=$(wc -l <"$T/e.err")
  [ "$rc" = 2 ] && [ "$n" = 1 ] && [ ! -s "$T/e.out" ] && ok "bad input ($name): $(cat "$T/e.err")" ||
    fail "bad input ($name): exit $rc, $n lines on stderr: $(head -3 "$T/e.err") $(head -3 "$T/e.out")"
done

if [ "$fails" -ne 0 ]; then echo "cli_bench_load: $fails failure(s)"; exit 1; fi
echo "cli_bench_load: all passed"

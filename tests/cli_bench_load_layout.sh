#!/usr/bin/env bash
# cli_bench_load_layout.sh — `sdc bench-load` measures the layout `sdc generate` runs: for each mode
# (default: Winograd-packed transforms made at load, the other weights the file's views; --low-mem: all
# views; --precision bf16: the bf16-packed weights), the SHA-256 of the UNet
# weights as bench-load's measuring process bound them equals the one generate --load-report prints
# after generating, for a .safetensors and a .ckpt of the same model (which must also agree with each
# other), and the two modes differ. bench-load's ready time is what generate reports as its load.
# Usage: bash tests/cli_bench_load_layout.sh /path/to/sdc   (from the repo root)
set -u
SDC=${1:?usage: cli_bench_load_layout.sh /path/to/sdc}
D=tests/data
CFG=$D/tiny-sd1.config.json
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

declare -A DIG
for f in tiny-sd1.safetensors tiny-sd1.ckpt; do
  if ! "$SDC" bench-load "$D/$f" -r 1 --digest --config "$CFG" >"$T/b.out" 2>"$T/b.err"; then
    fail "bench-load $f exited $?: $(cat "$T/b.err")"; continue
  fi
  for mode in default low-mem; do
    b=$(sed -n "s/^layout $f $mode: \([0-9a-f]\{64\}\)$/\1/p" "$T/b.out")
    [ -n "$b" ] || { fail "$f $mode: bench-load printed no layout digest: $(cat "$T/b.out")"; continue; }
    flag=; [ "$mode" = low-mem ] && flag=--low-mem
    if ! "$SDC" generate -m "$D/$f" --config "$CFG" -p "a red square" --steps 1 -W 64 -H 64 -o "$T/g.png" \
         --load-report $flag 2>"$T/g.err" >/dev/null; then
      fail "generate $f $mode exited $?: $(cat "$T/g.err")"; continue
    fi
    g=$(sed -n 's/^load: layout \([0-9a-f]\{64\}\)$/\1/p' "$T/g.err")
    [ "$b" = "$g" ] && ok "$f $mode: bench-load and generate bind the same layout ($b)" ||
      fail "$f $mode: bench-load bound $b, generate bound ${g:-nothing}"
    grep -q "model opened in [0-9.]* s" "$T/g.err" && grep -q "model ready in [0-9.]* s" "$T/g.err" && grep -q "^load: unet " "$T/g.err" &&
      ok "$f $mode: generate prints its load time and phases" || fail "$f $mode: no load time: $(cat "$T/g.err")"
    DIG[$f.$mode]=$b
  done
done
[ -n "${DIG[tiny-sd1.safetensors.default]:-}" ] && [ "${DIG[tiny-sd1.safetensors.default]}" = "${DIG[tiny-sd1.ckpt.default]:-}" ] &&
  [ "${DIG[tiny-sd1.safetensors.low-mem]:-}" = "${DIG[tiny-sd1.ckpt.low-mem]:-}" ] &&
  ok "safetensors and ckpt bind the same bytes in each mode" || fail "the two formats bound different layouts"
[ -n "${DIG[tiny-sd1.safetensors.default]:-}" ] && [ "${DIG[tiny-sd1.safetensors.default]}" != "${DIG[tiny-sd1.safetensors.low-mem]:-}" ] &&
  ok "default and low-mem layouts differ (the digest sees the mode)" || fail "default and low-mem digests are equal"

# SDC_HUGEPAGES=0 (weights on 4 KB pages instead of 2 MB ones): the same bytes bound
f=tiny-sd1.safetensors
if SDC_HUGEPAGES=0 "$SDC" generate -m "$D/$f" --config "$CFG" -p "a red square" --steps 1 -W 64 -H 64 -o "$T/g.png" \
     --load-report 2>"$T/g.err" >/dev/null; then
  g=$(sed -n 's/^load: layout \([0-9a-f]\{64\}\)$/\1/p' "$T/g.err")
  [ -n "$g" ] && [ "$g" = "${DIG[$f.default]:-}" ] && ok "SDC_HUGEPAGES=0: the same layout ($g)" ||
    fail "SDC_HUGEPAGES=0 bound ${g:-nothing}, the default ${DIG[$f.default]:-nothing}"
else
  fail "SDC_HUGEPAGES=0 generate exited $?: $(cat "$T/g.err")"
fi

# bf16: bench-load --precision bf16 measures generate --precision bf16's layout (packed at load)
f=tiny-sd1.safetensors
if "$SDC" bench-load "$D/$f" -r 1 --digest --precision bf16 --config "$CFG" >"$T/b.out" 2>"$T/b.err"; then
  b=$(sed -n "s/^layout $f default: \([0-9a-f]\{64\}\)$/\1/p" "$T/b.out")
  grep -q "precision bf16" "$T/b.out" && ok "bf16: the title names the precision" || fail "bf16: title: $(head -1 "$T/b.out")"
  if "$SDC" generate -m "$D/$f" --config "$CFG" -p "a red square" --steps 1 -W 64 -H 64 -o "$T/g.png" \
       --precision bf16 --load-report 2>"$T/g.err" >/dev/null; then
    g=$(sed -n 's/^load: layout \([0-9a-f]\{64\}\)$/\1/p' "$T/g.err")
    [ -n "$b" ] && [ "$b" = "$g" ] && ok "bf16: bench-load and generate bind the same layout ($b)" ||
      fail "bf16: bench-load bound ${b:-nothing}, generate bound ${g:-nothing}"
    [ -n "$b" ] && [ "$b" != "${DIG[$f.default]:-}" ] && ok "bf16 and f32 layouts differ" || fail "bf16 digest equals f32's"
  else
    fail "generate --precision bf16 exited $?: $(cat "$T/g.err")"
  fi
else
  fail "bench-load --precision bf16 exited $?: $(cat "$T/b.err")"
fi

if [ "$fails" -ne 0 ]; then echo "cli_bench_load_layout: $fails failure(s)"; exit 1; fi
echo "cli_bench_load_layout: all passed"

#!/bin/bash
# cli_inspect_pickle.sh SDC — hostile checkpoints written by PyTorch (tests/data/hostile, from
# scripts/make_hostile_ckpt.py): `sdc inspect` reads them without refusing, lists the globals
# outside the allowlist with the dangerous flag, exits 3 for os.system (zip and legacy), 0 for a
# harmless lightning callback; `sdc convert` refuses the dangerous one unless
# --allow-unsafe-pickle, and the unknown one under --strict.
SDC=${1:?usage: cli_inspect_pickle.sh path/to/sdc}
fail=0
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
bad() { echo "FAIL: $*"; fail=1; }
H=tests/data/hostile

for f in $H/evil-posix-system.ckpt $H/evil-posix-system-legacy.ckpt; do
  "$SDC" inspect "$f" >"$T/out" 2>"$T/err"; rc=$?
  [ $rc = 3 ] || bad "$f: inspect exit $rc, want 3"
  grep -Eq '^  posix\.system +DANGEROUS$' "$T/out" || bad "$f: posix.system not listed as dangerous"
  grep -q '^tensors: *1$' "$T/out" || bad "$f: the weights were not read"
  grep -q "sdc: $f: dangerous pickle: this file would run posix.system when loaded by PyTorch; sdc ran nothing" "$T/err" \
    || bad "$f: message: $(cat "$T/err")"
  "$SDC" inspect "$f" --json >"$T/json" 2>/dev/null; rc=$?
  [ $rc = 3 ] || bad "$f: inspect --json exit $rc, want 3"
  grep -q '"dangerous":.*true' "$T/json" || bad "$f: json dangerous flag"
  "$SDC" convert "$f" "$T/o.safetensors" 2>"$T/err"; rc=$?
  [ $rc = 2 ] || bad "$f: convert exit $rc, want 2"
  grep -q 'sdc ran nothing' "$T/err" || bad "$f: convert message: $(cat "$T/err")"
  [ -e "$T/o.safetensors" ] && bad "$f: output written for a refused file"
  "$SDC" convert "$f" "$T/o.safetensors" --allow-unsafe-pickle 2>/dev/null || bad "$f: --allow-unsafe-pickle"
  "$SDC" inspect "$T/o.safetensors" --tensors | grep -Eq '^  F32 +\[4\] +w$' || bad "$f: converted weights"
  rm -f "$T/o.safetensors"
done
echo "posix.system: inspect exit 3 (zip, legacy), convert refused, --allow-unsafe-pickle converts"

f=$H/lightning-callback.ckpt
"$SDC" inspect "$f" >"$T/out" 2>"$T/err"; rc=$?
[ $rc = 0 ] || bad "$f: inspect exit $rc, want 0: $(cat "$T/err")"
grep -Eq '^  pytorch_lightning\.callbacks\.model_checkpoint\.ModelCheckpoint$' "$T/out" || bad "$f: callback not listed"
"$SDC" convert "$f" "$T/o.safetensors" --strict 2>"$T/err"; rc=$?
[ $rc = 2 ] || bad "$f: convert --strict exit $rc, want 2"
grep -q 'ModelCheckpoint' "$T/err" || bad "$f: --strict message: $(cat "$T/err")"
"$SDC" convert "$f" "$T/o.safetensors" 2>/dev/null || bad "$f: convert without --strict"
echo "lightning callback: listed, inspect exit 0, convert ok, --strict refuses"

[ $fail = 0 ] && echo "cli_inspect_pickle: all passed"
exit $fail

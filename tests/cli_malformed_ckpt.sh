#!/bin/bash
# cli_malformed_ckpt.sh SDC — `sdc inspect` on every .ckpt of tests/data/malformed/expected_ckpt.tsv
# (LOADER-SAFETY classes 8-18, scripts/make_malformed_ckpt.py): malformed files exit 2 with one line
# "sdc: FILE: what: where"; hostile pickles are reported, not refused: exit 3, the dangerous global
# listed on stdout and named on stderr; valid controls exit 0. Then `sdc convert` (loading for
# use) refuses a hostile file unless --allow-unsafe-pickle.
SDC=${1:?usage: cli_malformed_ckpt.sh path/to/sdc}
fail=0
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
bad() { echo "FAIL: $*"; fail=1; }

n=0
while IFS=$'\t' read -r file code frag; do
  case "$file" in '#'*|'') continue;; esac
  n=$((n+1))
  "$SDC" inspect "$file" >"$T/out" 2>"$T/err"; rc=$?
  [ "$rc" = "$code" ] || { bad "$file: exit $rc, want $code: $(cat "$T/err")"; continue; }
  case "$code" in
  0) [ -s "$T/err" ] && bad "$file: stderr not empty: $(cat "$T/err")"
     grep -q '^format: *ckpt' "$T/out" || bad "$file: no format line";;
  2) [ "$(wc -l <"$T/err")" = 1 ] || bad "$file: not one line on stderr"
     grep -qF "sdc: $file: " "$T/err" || bad "$file: line does not start with sdc: FILE: ($(cat "$T/err"))"
     grep -qF -- "$frag" "$T/err" || bad "$file: message lacks '$frag': $(cat "$T/err")";;
  3) grep -qF -- "$frag" "$T/out" || bad "$file: stdout does not list $frag"
     grep -q 'DANGEROUS' "$T/out" || bad "$file: stdout does not mark it DANGEROUS"
     grep -qF "would run $frag" "$T/err" || bad "$file: stderr does not name $frag: $(cat "$T/err")";;
  esac
done < tests/data/malformed/expected_ckpt.tsv
echo "malformed ckpt fixtures checked with inspect: $n"
[ $n -ge 60 ] || bad "too few fixtures ($n)"

# --json lists the globals with their flag
"$SDC" inspect tests/data/malformed/c9_os_system.ckpt --json >"$T/json" 2>/dev/null; rc=$?
[ $rc = 3 ] || bad "--json on a hostile file: exit $rc, want 3"
grep -q '"os.system"' "$T/json" || bad "--json does not list os.system"

# loading for use refuses a hostile pickle, naming it; --allow-unsafe-pickle loads the weights
if "$SDC" convert --help >/dev/null 2>&1; then
  "$SDC" convert tests/data/malformed/c9_os_system.ckpt "$T/x.safetensors" >/dev/null 2>"$T/err"; rc=$?
  [ $rc = 2 ] || bad "convert of a hostile file: exit $rc, want 2"
  grep -qF "this file would run os.system when loaded by PyTorch; sdc ran nothing" "$T/err" \
    || bad "convert message: $(cat "$T/err")"
  [ -e "$T/x.safetensors" ] && bad "convert wrote an output for a refused file"
  "$SDC" convert tests/data/malformed/c9_os_system.ckpt "$T/y.safetensors" --allow-unsafe-pickle >/dev/null 2>"$T/err"; rc=$?
  [ $rc = 0 ] || bad "convert --allow-unsafe-pickle: exit $rc: $(cat "$T/err")"
  "$SDC" inspect "$T/y.safetensors" >"$T/out" 2>&1 || bad "converted file does not inspect"
  grep -q '^tensors: *3$' "$T/out" || bad "converted file lacks the 3 weights"
  "$SDC" convert tests/data/malformed/ok_lightning.ckpt "$T/z.safetensors" --strict >/dev/null 2>"$T/err"; rc=$?
  [ $rc = 2 ] || bad "convert --strict of a lightning file: exit $rc, want 2"
  grep -q 'strict' "$T/err" || bad "--strict message: $(cat "$T/err")"
fi

[ $fail = 0 ] && echo "cli_malformed_ckpt: all passed"
exit $fail

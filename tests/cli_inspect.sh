#!/bin/bash
# cli_inspect.sh SDC — `sdc inspect` on the fixtures (text and --json), the family of each
# tiny model, long metadata cut in text mode and whole in --json, and every malformed fixture
# of tests/data/malformed/expected.tsv: exit 2 and one line "sdc: FILE: what: where".
SDC=${1:?usage: cli_inspect.sh path/to/sdc}
fail=0
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
bad() { echo "FAIL: $*"; fail=1; }

# --- a valid fixture, text mode
"$SDC" inspect tests/data/tiny-sd1.safetensors >"$T/out" 2>"$T/err"; rc=$?
[ $rc = 0 ] || bad "tiny-sd1 rc=$rc: $(cat "$T/err")"
grep -q '^format: *safetensors$' "$T/out" || bad "format line"
grep -q '^tensors: *995$' "$T/out" || bad "tensor count"
grep -q '^family: *SD 1\.x' "$T/out" || bad "family SD 1.x"
grep -Eq '^ +F32 +5480364 in 993 tensors$' "$T/out" || bad "F32 parameter count"
grep -Eq '^ +I64 +77 in 1 tensors$' "$T/out" || bad "I64 parameter count"
grep -q 'tiny_sd_config = {"kind":"sd1".*\.\.\. (2211 bytes)$' "$T/out" || bad "long metadata not cut in text mode"
[ -s "$T/err" ] && bad "stderr not empty: $(cat "$T/err")"
sed -n 1,16p "$T/out"

# --- --json: metadata whole, counts
"$SDC" inspect tests/data/tiny-sd1-fp16.safetensors --json >"$T/json" 2>"$T/err"; rc=$?
[ $rc = 0 ] || bad "json rc=$rc"
grep -q '"name":.*"SD 1.x"' "$T/json" || bad "json family"
grep -q '"parameters_total":.*5480442' "$T/json" || bad "json total parameters"
grep -q '"pad_token_id\\":1}}}"' "$T/json" || bad "json metadata value not whole"
grep -q '"dangerous":.*false' "$T/json" || bad "json dangerous flag"
head -c 1 "$T/json" | grep -q '{' || bad "json does not start with {"

# --- families
"$SDC" inspect tests/data/tiny-sd2-fp16.safetensors | grep -q '^family: *SD 2\.x' || bad "tiny-sd2 family"
"$SDC" inspect tests/data/tiny-sd1.safetensors --tensors | grep -Eq '^  F32 +\[32, 4, 3, 3\] +model\.diffusion_model\.input_blocks\.0\.0\.weight$' \
  || bad "--tensors listing"

# --- ckpt fixtures: same family and count as the safetensors twin
for f in tests/data/tiny-sd1.ckpt tests/data/tiny-sd1-fp16.ckpt tests/data/tiny-sd1-legacy.ckpt; do
  "$SDC" inspect "$f" >"$T/out" 2>"$T/err"; rc=$?
  [ $rc = 0 ] || bad "$f rc=$rc: $(cat "$T/err")"
  grep -q '^family: *SD 1\.x' "$T/out" || bad "$f family"
  grep -q '^tensors: *995$' "$T/out" || bad "$f tensor count"
done

# --- usage errors
# each: exit 2 and exactly one line "sdc: ..." on stderr
one_line() { [ "$(wc -l <"$T/err")" = 1 ] && grep -q '^sdc: ' "$T/err"; }
"$SDC" inspect >/dev/null 2>"$T/err"; [ $? = 2 ] || bad "no FILE should exit 2"
one_line || bad "no FILE: not one 'sdc:' line: $(cat "$T/err")"
"$SDC" inspect --bogus tests/data/tiny-sd1.safetensors >/dev/null 2>"$T/err"; [ $? = 2 ] || bad "unknown option should exit 2"
one_line || bad "unknown option: not one 'sdc:' line: $(cat "$T/err")"
"$SDC" inspect tests/data/tiny-sd1.safetensors --config >/dev/null 2>"$T/err"; [ $? = 2 ] || bad "--config without a value should exit 2"
grep -q -- '--config needs a value' "$T/err" && one_line || bad "--config without a value: $(cat "$T/err")"
"$SDC" inspect tests/data/no-such-file >/dev/null 2>"$T/err"; [ $? = 2 ] || bad "missing file should exit 2"
grep -q '^sdc: tests/data/no-such-file: cannot open' "$T/err" || bad "missing file message: $(cat "$T/err")"
"$SDC" inspect tests/data >/dev/null 2>"$T/err"; [ $? = 2 ] || bad "directory should exit 2"
grep -q 'is a directory' "$T/err" || bad "directory message"
mkdir -p "$T/dif/unet"; echo '{}' >"$T/dif/model_index.json"
"$SDC" inspect "$T/dif" >/dev/null 2>"$T/err"; [ $? = 2 ] || bad "diffusers folder should exit 2"
grep -q 'diffusers folder' "$T/err" || bad "diffusers message: $(cat "$T/err")"

# --- every malformed fixture
n=0
while IFS=$'\t' read -r file code frag; do
  case "$file" in '#'*|'') continue;; esac
  n=$((n+1))
  "$SDC" inspect "$file" >/dev/null 2>"$T/err"; rc=$?
  [ "$rc" = "$code" ] || { bad "$file: exit $rc, want $code: $(cat "$T/err")"; continue; }
  [ "$code" = 0 ] && continue
  [ "$(wc -l <"$T/err")" = 1 ] || bad "$file: not one line on stderr"
  grep -qF "sdc: $file: " "$T/err" || bad "$file: line does not start with sdc: FILE: ($(cat "$T/err"))"
  grep -qF -- "$frag" "$T/err" || bad "$file: message lacks '$frag': $(cat "$T/err")"
done < tests/data/malformed/expected.tsv
echo "malformed fixtures checked: $n"
[ $n -ge 40 ] || bad "too few malformed fixtures ($n)"

[ $fail = 0 ] && echo "cli_inspect: all passed"
exit $fail

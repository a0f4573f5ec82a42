#!/bin/bash
# cli_convert.sh SDC — `sdc convert`: f32 → f16 of tiny-sd1 gives exactly tiny-sd1-fp16's bytes
# (every tensor, names, order, metadata); keep is a byte copy; f16 → f32 → f16 and
# bf16 → f32 → bf16 round-trip exactly; integer tensors keep their dtype; an existing output
# is refused without --force; nothing is left behind on failure.
SDC=${1:?usage: cli_convert.sh path/to/sdc}
fail=0
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
bad() { echo "FAIL: $*"; fail=1; }
D=tests/data

"$SDC" convert $D/tiny-sd1.safetensors "$T/a16.safetensors" --dtype f16 2>"$T/err" || bad "f32->f16: $(cat "$T/err")"
cmp -s "$T/a16.safetensors" $D/tiny-sd1-fp16.safetensors && echo "f32 -> f16: byte-identical to tiny-sd1-fp16.safetensors" \
  || bad "f32->f16 output differs from tiny-sd1-fp16.safetensors"

"$SDC" convert $D/tiny-sd1.safetensors "$T/keep.safetensors" 2>/dev/null || bad "keep"
cmp -s "$T/keep.safetensors" $D/tiny-sd1.safetensors || bad "--dtype keep is not a byte copy"

"$SDC" convert $D/tiny-sd1-fp16.safetensors "$T/b32.safetensors" --dtype f32 2>/dev/null || bad "f16->f32"
"$SDC" inspect "$T/b32.safetensors" | grep -Eq '^ +F32 +5480364 in 993 tensors$' || bad "f16->f32 dtype counts"
"$SDC" inspect "$T/b32.safetensors" | grep -Eq '^ +I64 +77 in 1 tensors$' || bad "I64 tensor did not keep its dtype"
"$SDC" inspect "$T/b32.safetensors" | grep -Eq '^ +I32 +1 in 1 tensors$' || bad "I32 tensor did not keep its dtype"
"$SDC" convert "$T/b32.safetensors" "$T/b16.safetensors" --dtype=f16 2>/dev/null || bad "f32->f16 again"
cmp -s "$T/b16.safetensors" $D/tiny-sd1-fp16.safetensors && echo "f16 -> f32 -> f16: exact round trip" \
  || bad "f16->f32->f16 not exact"

"$SDC" convert $D/tiny-sd1.safetensors "$T/c.safetensors" --dtype bf16 2>/dev/null || bad "f32->bf16"
"$SDC" inspect "$T/c.safetensors" | grep -Eq '^ +BF16 +5480364 in 993 tensors$' || bad "bf16 counts"
"$SDC" convert "$T/c.safetensors" "$T/c32.safetensors" --dtype f32 2>/dev/null || bad "bf16->f32"
"$SDC" convert "$T/c32.safetensors" "$T/c16.safetensors" --dtype bf16 2>/dev/null || bad "f32->bf16 again"
cmp -s "$T/c.safetensors" "$T/c16.safetensors" || bad "bf16->f32->bf16 not exact"
"$SDC" inspect "$T/c.safetensors" --json | grep -q '"tiny_sd_config":' || bad "metadata not kept"

# refusing to overwrite; --force replaces
cp $D/malformed/ok_small.safetensors "$T/exists.safetensors"
"$SDC" convert $D/tiny-sd1.safetensors "$T/exists.safetensors" 2>"$T/err"; rc=$?
[ $rc = 2 ] || bad "overwrite without --force: rc=$rc"
grep -q 'already exists' "$T/err" || bad "overwrite message: $(cat "$T/err")"
cmp -s "$T/exists.safetensors" $D/malformed/ok_small.safetensors || bad "existing file was touched"
"$SDC" convert $D/tiny-sd1-fp16.safetensors "$T/exists.safetensors" --force 2>/dev/null || bad "--force"
cmp -s "$T/exists.safetensors" $D/tiny-sd1-fp16.safetensors || bad "--force output wrong"

# failures leave nothing behind
"$SDC" convert $D/malformed/c6_gap.safetensors "$T/bad.safetensors" 2>"$T/err"; rc=$?
[ $rc = 2 ] || bad "malformed input: rc=$rc"
grep -q '^sdc: tests/data/malformed/c6_gap.safetensors: gap' "$T/err" || bad "malformed message: $(cat "$T/err")"
[ -e "$T/bad.safetensors" ] && bad "output created for a malformed input"
"$SDC" convert $D/tiny-sd1.safetensors "$T/nodir/x.safetensors" 2>/dev/null; [ $? = 2 ] || bad "missing dir should exit 2"
"$SDC" convert $D/tiny-sd1.safetensors "$T/x.safetensors" --dtype f8 2>/dev/null; [ $? = 2 ] || bad "bad --dtype should exit 2"
"$SDC" convert $D/tiny-sd1.safetensors 2>"$T/err"; [ $? = 2 ] || bad "missing OUT should exit 2"
[ "$(wc -l <"$T/err")" = 1 ] && grep -q '^sdc: convert: ' "$T/err" || bad "missing OUT: not one 'sdc:' line: $(cat "$T/err")"
"$SDC" convert --bogus $D/tiny-sd1.safetensors "$T/x.safetensors" 2>"$T/err"; [ $? = 2 ] || bad "unknown option should exit 2"
[ "$(wc -l <"$T/err")" = 1 ] && grep -q '^sdc: convert: ' "$T/err" || bad "unknown option: not one 'sdc:' line: $(cat "$T/err")"
ls -a "$T" | grep -q '\.sdc-convert-' && bad "temporary file left behind"

# ckpt inputs: tensor-for-tensor the safetensors twin
for pair in "tiny-sd1.ckpt tiny-sd1.safetensors" "tiny-sd1-fp16.ckpt tiny-sd1-fp16.safetensors" \
            "tiny-sd1-legacy.ckpt tiny-sd1-fp16.safetensors"; do
  set -- $pair
  "$SDC" convert $D/$1 "$T/from-ckpt.safetensors" --force 2>"$T/err"; rc=$?
  [ $rc = 0 ] || { bad "convert $1: $(cat "$T/err")"; continue; }
  "$SDC" inspect "$T/from-ckpt.safetensors" --tensors | grep -E '^  [A-Z0-9_]+ ' >"$T/l1"
  "$SDC" inspect $D/$2 --tensors | grep -E '^  [A-Z0-9_]+ ' >"$T/l2"
  sort "$T/l1" >"$T/s1"; sort "$T/l2" >"$T/s2"
  cmp -s "$T/s1" "$T/s2" || bad "$1 -> safetensors: names/dtypes/shapes differ from $2"
  # same order in both: the data sections (every tensor's bytes) must be identical
  cmp -s "$T/l1" "$T/l2" || { bad "$1: tensor order differs from $2"; continue; }
  datasec() { local h; h=$(od -An -t u8 -N 8 "$1" | tr -d ' '); tail -c +$((8 + h + 1)) "$1"; }
  datasec "$T/from-ckpt.safetensors" >"$T/d1"; datasec $D/$2 >"$T/d2"
  cmp -s "$T/d1" "$T/d2" && echo "$1 -> safetensors: every tensor bit-identical to $2" || bad "$1: tensor bytes differ from $2"
done

[ $fail = 0 ] && echo "cli_convert: all passed"
exit $fail

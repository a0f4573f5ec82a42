#!/usr/bin/env bash
# cli_malformed_args.sh — `sdc generate` arguments that used to slip through quietly (issue 12):
# --cfg-scale inf/nan (a black PNG with exit 0) and --strength without -i are refused before the
# model loads; -t above the CPU count and a prompt that --prompt-mode truncate cuts are warned
# about (the latter by the prompt code); -s 9223372036854775807 -b 2 gives seeds 2^63-1 and 2^63 without a signed overflow (this
# test also runs on the ASan/UBSan build). A LoRA, an SDXL file, a TorchScript archive and a .ckpt
# without --config are each refused with a message that says what the file is and what to do.
set -u
SDC=${1:?usage: cli_malformed_args.sh path/to/sdc}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
M=(-m tests/data/tiny-sd1-fp16.safetensors)

bad() {  # name, expected message fragment, args...
  local name=$1 frag=$2; shift 2
  "$SDC" generate "$@" -q -o "$T/bad.png" 2>"$T/e"; local rc=$?
  check "$name: exit 2" "[ $rc -eq 2 ]"
  check "$name: one line saying '$frag'" "[ \$(wc -l < '$T/e') -eq 1 ] && grep -q -- '$frag' '$T/e'"
  check "$name: no output written" "[ ! -e '$T/bad.png' ]"
  echo "     $(cat "$T/e")"
}
# (a model that does not exist: refused before it would be opened)
bad "--cfg-scale inf" "finite" -m "$T/none.safetensors" -p x --cfg-scale inf
bad "--cfg-scale -inf" "finite" -m "$T/none.safetensors" -p x --cfg-scale -inf
bad "--cfg-scale nan" "finite" -m "$T/none.safetensors" -p x --cfg-scale nan
bad "--cfg-scale 1e39 (overflows a float)" "finite" -m "$T/none.safetensors" -p x --cfg-scale 1e39
bad "--strength without -i" "needs -i" -m "$T/none.safetensors" -p x --strength 0.5
bad "--strength nan" "finite" -m "$T/none.safetensors" -p x --strength nan
bad "-W not a multiple of 8, before loading" "multiples of 8" -m "$T/none.safetensors" -p x -W 100

# warnings: the run goes on
LONG=$(for i in $(seq 1 12); do printf 'a red cat sitting on a green mat, '; done)
"$SDC" generate "${M[@]}" -p "$LONG" --prompt-mode truncate -s 1 --steps 1 -W 64 -H 64 -t 1000 -o "$T/w.png" 2>"$T/e"; rc=$?
check "truncate + -t 1000: still runs" "[ $rc -eq 0 ] && [ -s '$T/w.png' ]"
check "truncate: warns that the prompt is cut" "grep -q 'warning: the prompt is longer than 75 tokens; --prompt-mode truncate' '$T/e'"
check "-t 1000: warns and uses the CPUs there are" "grep -q 'warning: -t 1000: this machine has [0-9]* CPUs; using' '$T/e'"
"$SDC" generate "${M[@]}" -p "a red cat" --prompt-mode truncate -s 1 --steps 1 -W 64 -H 64 -o "$T/w2.png" 2>"$T/e2"
check "truncate: no warning for a short prompt" "! grep -q warning '$T/e2'"
"$SDC" generate "${M[@]}" -p "$LONG" -s 1 --steps 1 -W 64 -H 64 -o "$T/w3.png" -q 2>"$T/e3"
check "chunk mode (default): no truncation warning" "! grep -q warning '$T/e3'"
sed 's/^/     /' "$T/e"

# the largest seed and one more: no signed overflow, both written in the PNGs
"$SDC" generate "${M[@]}" -p "a red cat" -s 9223372036854775807 -b 2 --steps 1 -W 64 -H 64 -o "$T/s.png" -q 2>"$T/e"; rc=$?
check "-s 9223372036854775807 -b 2: exit 0, no sanitizer report" "[ $rc -eq 0 ] && ! grep -q 'runtime error' '$T/e'"
check "seeds 2^63-1 and 2^63 in the PNGs" "grep -aq 'Seed: 9223372036854775807,' '$T/s_1.png' && grep -aq 'Seed: 9223372036854775808,' '$T/s_2.png'"

# files that are not a checkpoint sdc generates with are named for what they are (issue 12)
bad "tiny SDXL .ckpt without --config" "head count is unknown.*give --config FILE" -m tests/data/tiny-sdxl.ckpt -p x
bad "LoRA as -m (.safetensors)" "is a LoRA.*--lora" -m tests/data/tiny-sd1-lora.safetensors -p x
bad "LoRA as -m (.ckpt)" "is a LoRA.*--lora" -m tests/data/tiny-sd1-lora.ckpt -p x
bad "TorchScript archive, deflated code" "TorchScript archive" -m tests/data/malformed/c17_torchscript_deflated.ckpt -p x
bad "tiny .ckpt without --config" "head count is unknown.*give --config FILE" -m tests/data/tiny-sd1.ckpt -p x
exit $fail

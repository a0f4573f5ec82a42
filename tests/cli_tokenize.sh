#!/bin/bash
# cli_tokenize.sh SDC — `sdc tokenize` against tests/data/tokenizer_cases.json: --json input_ids
# equal to the case's input_ids (no -m, and -m an SD 1.x model) and input_ids_sd2 (-m the SD 2.x
# model), tokens and truncated equal; the text mode says when a prompt is longer than one
# window; invalid UTF-8 is read (with a note), bad usage and a model without a text encoder
# give exit 2 and one line "sdc: ...".
SDC=${1:?usage: cli_tokenize.sh path/to/sdc}
CASES=tests/data/tokenizer_cases.json
fail=0
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
bad() { echo "FAIL: $*"; fail=1; }

# The fixture flattened (spaces and newlines dropped), one case per line, starting at "prompt".
tr -d ' \n' <"$CASES" | sed 's/{"prompt":/\n"prompt":/g' >"$T/cases"
# field KEY of the case whose flattened prompt is P: the JSON value as written in the fixture
field() { grep -F "\"prompt\":\"$1\"," "$T/cases" | grep -o "\"$2\":\(\[[^]]*\]\|true\|false\)" | head -1; }
# the prompt of the case that starts with PREFIX, as written in the fixture (no escapes in these)
prompt_of() { sed -n "s/^ *\"prompt\": \"\($1[^\"]*\)\",\$/\1/p" "$CASES" | head -1; }

n_checked=0
for pre in 'a photo of a cat' 'a breathtaking' '((masterpiece))' 'a (red:1.3)' '東京タワー' 'a a a a'; do
  p=$(prompt_of "$pre")
  [ -n "$p" ] || { bad "no fixture case starting with '$pre'"; continue; }
  flat=$(printf %s "$p" | tr -d ' \n')
  for m in "" tests/data/tiny-sd1.safetensors tests/data/tiny-sd2-fp16.safetensors; do
    key=input_ids; [ "$m" = tests/data/tiny-sd2-fp16.safetensors ] && key=input_ids_sd2
    "$SDC" tokenize ${m:+-m "$m"} -p "$p" --json >"$T/out" 2>"$T/err"; rc=$?
    [ $rc = 0 ] || { bad "'$pre' -m '$m': rc=$rc $(cat "$T/err")"; continue; }
    want=$(field "$flat" "$key" | sed "s/^\"$key\"/\"input_ids\"/")
    got=$(grep -o '"input_ids":\[[^]]*\]' "$T/out")
    [ -n "$want" ] && [ "$want" = "$got" ] || bad "'$pre' -m '$m': $key differs: got $got want $want"
    for k in tokens truncated; do
      want=$(field "$flat" $k)
      got=$(grep -o "\"$k\":\(\[[^]]*\]\|true\|false\)" "$T/out")
      [ -n "$want" ] && [ "$want" = "$got" ] || bad "'$pre' -m '$m': $k differs: got $got want $want"
    done
    n_checked=$((n_checked + 1))
  done
done
echo "json checked against the fixture: $n_checked prompt/model pairs"

# --- text mode: ids with their strings; the long prompt is said to be longer than one window
"$SDC" tokenize -p "a photo of a cat" >"$T/out" 2>"$T/err" || bad "text mode rc"
grep -Eq '^ +4 +2368  cat</w>$' "$T/out" || bad "text mode: token line"
grep -q 'longer than one window' "$T/out" && bad "short prompt said to be long"
"$SDC" tokenize -p "$(prompt_of 'a breathtaking')" >"$T/out" 2>&1 || bad "long text mode rc"
grep -q 'longer than one window: 80 tokens > 75.*2 windows' "$T/out" || bad "long prompt not reported"
head -3 "$T/out"

# --- invalid UTF-8: read as U+FFFD per bad byte, with a note on stderr
"$SDC" tokenize -p $'caf\xc3 \xff' --json >"$T/out" 2>"$T/err"; rc=$?
[ $rc = 0 ] || bad "invalid utf-8 rc=$rc"
grep -q 'not valid UTF-8' "$T/err" || bad "invalid utf-8: no note"
grep -q '"invalid_utf8_bytes":2' "$T/out" || bad "invalid utf-8: count"
cat "$T/err"

# --- bad usage and bad models: exit 2, one line starting "sdc: "
check_err() {  # DESC ARGS...
  local desc=$1; shift
  "$SDC" tokenize "$@" >"$T/out" 2>"$T/err"; rc=$?
  [ $rc = 2 ] || bad "$desc: rc=$rc"
  [ "$(wc -l <"$T/err")" = 1 ] && grep -q '^sdc: ' "$T/err" || bad "$desc: stderr: $(cat "$T/err")"
  echo "$desc: $(cat "$T/err")"
}
check_err "no prompt"
check_err "-p without value" -p
check_err "unknown option" -p x --bogus
check_err "missing model" -m "$T/nonexistent.safetensors" -p x
check_err "model without text encoder" -m tests/data/tiny-sd1-unet-diffusers-fp16.safetensors -p x
printf 'not a model' >"$T/junk.safetensors"
check_err "junk model" -m "$T/junk.safetensors" -p x
head -c 80000 /dev/zero | tr '\0' 'a' >"$T/big"
check_err "prompt over the size limit" -p "$(cat "$T/big")"

[ $fail = 0 ] && echo "cli_tokenize: all passed"
exit $fail

#!/usr/bin/env bash
# cli_prompts_shard.sh — `sdc generate --prompts FILE.jsonl -o DIR [--shard K/N]`: shards 0/3, 1/3,
# 2/3 run one after another write exactly the files of one unsharded run (names by line number,
# blank lines keep their number); a line gives the CLI's image for the same flags; a run killed
# halfway and rerun completes the set without rewriting what was finished; bad files and flags
# are refused before the model loads (exit 2, one line, nothing written). Also run under ASan.
set -u
SDC=${1:?usage: cli_prompts_shard.sh path/to/sdc}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
M=tests/data/tiny-sd1.safetensors
G=("$SDC" generate -m "$M" -W 64 -H 64 --steps 3 -q)

cat > "$T/p.jsonl" <<'J'
{"prompt": "a red circle on a blue background", "seed": 42}
{"prompt": "a yellow star", "negative_prompt": "blurry", "steps": 2, "cfg_scale": 5.5}

{"prompt": "a green square", "sampler": "DDIM", "seed": 7}
{"prompt": "a cat", "sampler_name": "DPM++ 2M", "scheduler": "Karras", "width": 32, "height": 48}
{"prompt": "a dog", "clip_skip": 2, "unknown_field": [1, 2]}
  {"prompt": "a boat", "seed": 3}
{"prompt": "a house"}
J
mkdir -p "$T/all" "$T/sh"
"${G[@]}" --prompts "$T/p.jsonl" -o "$T/all"; rc=$?
check "unsharded run exits 0" "[ $rc -eq 0 ]"
check "one PNG per non-blank line, named by line number" \
  "[ \"\$(cd '$T/all' && ls | tr '\n' ' ')\" = '000001.png 000002.png 000004.png 000005.png 000006.png 000007.png 000008.png ' ]"
for k in 0 1 2; do "${G[@]}" --prompts "$T/p.jsonl" -o "$T/sh" --shard $k/3 || fail=1; done
check "shards 0/3 1/3 2/3 give exactly the unsharded files" "diff -r '$T/all' '$T/sh' >/dev/null"
mkdir -p "$T/one"
"${G[@]}" --prompts "$T/p.jsonl" -o "$T/one" --shard 1/3
check "shard 1/3 writes lines 2, 5, 8 only" "[ \"\$(cd '$T/one' && ls | tr '\n' ' ')\" = '000002.png 000005.png 000008.png ' ]"

# A line is the CLI's image: same flags, same bytes (a line without seed gets -s + L - 1).
"${G[@]}" -p "a red circle on a blue background" -s 42 -o "$T/cli1.png"
check "line 1 = sdc generate -p ... -s 42" "cmp -s '$T/cli1.png' '$T/all/000001.png'"
"${G[@]}" -p "a yellow star" -n blurry --steps 2 --cfg-scale 5.5 -s 43 -o "$T/cli2.png"
check "line 2 (no seed: 42 + 1) = the CLI's" "cmp -s '$T/cli2.png' '$T/all/000002.png'"
"${G[@]}" -p "a cat" --sampling-method dpm++2m --scheduler karras -W 32 -H 48 -s 46 -o "$T/cli5.png"
check "line 5 (DPM++ 2M Karras, 32x48) = the CLI's" "cmp -s '$T/cli5.png' '$T/all/000005.png'"
"$SDC" generate -m "$M" -W 64 -H 64 --steps 3 --prompts "$T/p.jsonl" -o "$T/all" 2>"$T/e"
check "a complete set: 0 to generate" "grep -q '0 to generate, 7 already written' '$T/e'"
check "... and nothing rewritten" "[ -z \"\$(find '$T/all' -newer '$T/e')\" ]"

# A line's <lora:...> tag: the model with that LoRA, the CLI's image (Lora hashes and all).
printf '{"prompt": "a cat", "seed": 5}\n{"prompt": "a cat <lora:tiny-sd1-lora:0.8>", "seed": 5}\n{"prompt": "a cat", "seed": 5}\n' > "$T/l.jsonl"
mkdir -p "$T/l"
"${G[@]}" --lora-model-dir tests/data --prompts "$T/l.jsonl" -o "$T/l"
"${G[@]}" --lora-model-dir tests/data -p "a cat <lora:tiny-sd1-lora:0.8>" -s 5 -o "$T/cli_l.png"
"${G[@]}" -p "a cat" -s 5 -o "$T/cli_nl.png"
check "a line with a LoRA tag = the CLI's" "cmp -s '$T/cli_l.png' '$T/l/000002.png'"
check "lines around it without the LoRA" "cmp -s '$T/cli_nl.png' '$T/l/000001.png' && cmp -s '$T/cli_nl.png' '$T/l/000003.png'"

# Killed halfway, rerun: finished images are not redone, the set completes.
for i in $(seq 1 12); do echo "{\"prompt\": \"a lighthouse number $i\", \"steps\": 12}"; done > "$T/k.jsonl"
mkdir -p "$T/ref" "$T/k"
"${G[@]}" --prompts "$T/k.jsonl" -o "$T/ref"
"${G[@]}" --prompts "$T/k.jsonl" -o "$T/k" & pid=$!
for _ in $(seq 6000); do [ "$(ls "$T/k" | grep -c 'png$')" -ge 3 ] && break; kill -0 $pid 2>/dev/null || break; sleep 0.01; done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
n_before=$(ls "$T/k" | grep -c '\.png$')
check "killed halfway ($n_before of 12 written)" "[ $n_before -ge 3 ] && [ $n_before -lt 12 ]"
rm -f "$T"/k/*.tmp*   # a write cut by kill -9 (temp + rename: never a half PNG under the real name)
stat -c '%n %i %Y.%y' "$T"/k/*.png > "$T/before"
"${G[@]}" --prompts "$T/k.jsonl" -o "$T/k" 2>"$T/e2"
check "the rerun completes the set: the same files as an uninterrupted run" "diff -r '$T/ref' '$T/k' >/dev/null"
stat -c '%n %i %Y.%y' $(cut -d' ' -f1 "$T/before") > "$T/after"
check "finished images were not rewritten" "cmp -s '$T/before' '$T/after'"

# Refused before the model loads: one line, exit 2, nothing written.
bad() {  # name, fragment, file content | flags...
  local name=$1 frag=$2; shift 2
  rm -rf "$T/b"; mkdir -p "$T/b"
  "$SDC" generate -m "$M" -q "$@" 2>"$T/e"; local rc=$?
  check "$name: exit 2" "[ $rc -eq 2 ]"
  check "$name: one line saying '$frag'" "[ \$(wc -l < '$T/e') -eq 1 ] && grep -q -- '$frag' '$T/e'"
  check "$name: nothing written" "[ -z \"\$(ls '$T/b')\" ]"
}
printf '{"prompt": "ok"}\n{"prompt": "a", "steps": 0}\n' > "$T/bad1.jsonl"
bad "steps 0 on line 2" "bad1.jsonl:2: steps" --prompts "$T/bad1.jsonl" -o "$T/b"
printf '{"prompt": "ok"}\n{prompt: x\n' > "$T/bad2.jsonl"
bad "not JSON on line 2" "bad2.jsonl:2: not valid JSON" --prompts "$T/bad2.jsonl" -o "$T/b"
printf '{"prompt": "ok", "sampler": "Euler z"}\n' > "$T/bad3.jsonl"
bad "unknown sampler" "Sampler not found" --prompts "$T/bad3.jsonl" -o "$T/b"
printf '{"negative_prompt": "x"}\n' > "$T/bad4.jsonl"
bad "no prompt" "prompt: required" --prompts "$T/bad4.jsonl" -o "$T/b"
printf '[1]\n' > "$T/bad5.jsonl"
bad "an array, not an object" "expected a JSON object" --prompts "$T/bad5.jsonl" -o "$T/b"
printf '{"prompt": "a", "seed": "x"}\n' > "$T/bad6.jsonl"
bad "seed as a string" "seed" --prompts "$T/bad6.jsonl" -o "$T/b"
bad "--shard 3/3" "--shard" --prompts "$T/p.jsonl" -o "$T/b" --shard 3/3
bad "--shard 1/0" "--shard" --prompts "$T/p.jsonl" -o "$T/b" --shard 1/0
bad "--shard without --prompts" "--prompts" -p x -o "$T/b/x.png" --shard 0/2
bad "--prompts with -p" "no -p" --prompts "$T/p.jsonl" -p x -o "$T/b"
bad "--prompts without -o" "-o DIR" --prompts "$T/p.jsonl"
bad "-o is not a folder" "not a folder" --prompts "$T/p.jsonl" -o "$T/p.jsonl"
bad "missing prompts file" "cannot open" --prompts "$T/none.jsonl" -o "$T/b"
exit $fail

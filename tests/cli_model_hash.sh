#!/usr/bin/env bash
# cli_model_hash.sh — the "Model hash" `sdc generate` writes into the PNG is the first 10 hex
# digits of the model's SHA-256 (as sha256sum prints it), the same from the hash cache on the
# second run, and the cache file under $XDG_CACHE_HOME holds the model's entry.
set -u
SDC=${1:?usage: cli_model_hash.sh path/to/sdc}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }

cp tests/data/tiny-sd1-fp16.safetensors "$T/model.safetensors"
want=$(sha256sum "$T/model.safetensors" | cut -c1-64)
export XDG_CACHE_HOME="$T/cache"
for run in 1 2; do
  "$SDC" generate -m "$T/model.safetensors" -p "a red circle" -s 1 --steps 1 -W 64 -H 64 -o "$T/$run.png" -q
  check "run $run: PNG says Model hash: ${want:0:10}" "grep -a -q 'Model hash: ${want:0:10}, Model: model' '$T/$run.png'"
done
check "the cache holds the model's full hash" "grep -q \"^$want\"\$'\\t'.*$T/model.safetensors\\\$ '$T/cache/sdc/model-hashes.tsv'"

# An unusable cache location does not stop the generation, and the hash is still right.
XDG_CACHE_HOME="$T/model.safetensors/not-a-dir" "$SDC" generate -m "$T/model.safetensors" -p "a red circle" -s 1 \
  --steps 1 -W 64 -H 64 -o "$T/3.png" -q; rc=$?
check "unusable cache dir: exit 0 and the right hash" "[ $rc -eq 0 ] && grep -a -q 'Model hash: ${want:0:10},' '$T/3.png'"
exit $fail

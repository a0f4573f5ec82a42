#!/usr/bin/env bash
# cli_inspect_config.sh — `sdc inspect` says where the hyper-parameters the tensors cannot tell
# (heads, text activation, prediction) come from: --config, the file's metadata, or SD's conventions.
set -u
SDC=${1:?usage: cli_inspect_config.sh path/to/sdc}
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
out=$("$SDC" inspect assets/toy-sd1/toy-sd1.safetensors)
check "demo model: heads from its metadata" "grep -q 'unet attention: 8 heads (metadata unet_num_heads)' <<<\"\$out\" && grep -q 'text encoder: 4 heads, quick_gelu (metadata text_num_heads)' <<<\"\$out\""
out=$("$SDC" inspect tests/data/tiny-sd2-fp16.safetensors)
check "tiny SD 2.x: head width and v-prediction from tiny_sd_config" "grep -q 'head width 8 (metadata tiny_sd_config)' <<<\"\$out\" && grep -q 'prediction: v_prediction (metadata tiny_sd_config)' <<<\"\$out\""
out=$("$SDC" inspect tests/data/tiny-sd1-fp16.ckpt)
check "ckpt without metadata: SD 1.x conventions" "grep -q 'unet attention: 8 heads (SD 1.x convention)' <<<\"\$out\" && grep -q 'epsilon (SD 1.x convention)' <<<\"\$out\""
out=$("$SDC" inspect tests/data/tiny-sd1-fp16.ckpt --config tests/data/tiny-sd1.config.json)
check "--config wins" "grep -q 'text encoder: 4 heads, quick_gelu (--config tests/data/tiny-sd1.config.json)' <<<\"\$out\""
out=$("$SDC" inspect tests/data/tiny-sd1-fp16.ckpt --json --config tests/data/tiny-sd1.config.json)
check "--json carries the config" "grep -q '\"prediction\":.*epsilon (--config' <<<\"\$out\""
"$SDC" inspect tests/data/tiny-sd1-fp16.ckpt --config tests/data/tokenizer_cases.json >/dev/null 2>&1
check "a config that is JSON but not a model config changes nothing and exits 0" "[ $? -eq 0 ]"
"$SDC" inspect tests/data/tiny-sd1-fp16.ckpt --config /nonexistent.json 2>/tmp/icfg.$$; rc=$?
check "missing --config: exit 2, one line" "[ $rc -eq 2 ] && [ \$(wc -l < /tmp/icfg.$$) -eq 1 ] && grep -q 'cannot open config' /tmp/icfg.$$"
rm -f /tmp/icfg.$$
exit $fail

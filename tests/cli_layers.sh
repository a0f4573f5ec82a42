#!/usr/bin/env bash
# cli_layers.sh — the layers point one way (DESIGN.md): a file never includes a header of a folder
# above its own, and no object file of a folder references a symbol defined in a folder above it.
# Order, bottom → top:  kernels < runtime < tokenizer < models < pipeline < include = api < cli
# (api/ implements include/sdc.h; tests/, bench/, fuzz/, examples/ may use anything and are not
# checked). The symbol check reads the build's object files with nm (the build tree is the
# directory of $1, the sdc binary). First the checker is tried on a small tree with one upward
# include and one upward call, which it must find, so a checker that finds nothing fails here.
# Usage: bash tests/cli_layers.sh BUILD/sdc   (from the repository root)
set -u
sdc="${1:?usage: cli_layers.sh PATH/TO/sdc}"
build=$(cd "$(dirname "$sdc")" && pwd)
root=$(pwd)
LAYERS="kernels runtime tokenizer models pipeline include:api cli"

# rank FOLDER: its place in LAYERS (0 = bottom); empty when it has none
rank() {
    local i=0 l
    for l in $LAYERS; do
        case ":$l:" in *":$1:"*) echo $i; return ;; esac
        i=$((i + 1))
    done
}

# check_includes ROOT: prints one line per upward include in ROOT's layer folders
check_includes() {
    local top="$1" f dir r inc target tdir tr
    for dir in $(echo "$LAYERS" | tr ' :' '\n\n'); do
        [ -d "$top/$dir" ] || continue
        r=$(rank "$dir")
        while IFS= read -r f; do
            while IFS= read -r inc; do
                # "folder/file.h" → folder; "file.h" → its own folder, else include/ (sdc.h), else outside
                case "$inc" in
                    */*) tdir=${inc%%/*} ;;
                    *) if [ -e "$(dirname "$f")/$inc" ]; then tdir=$dir
                       elif [ -e "$top/include/$inc" ]; then tdir=include
                       else continue; fi ;;
                esac
                tr=$(rank "$tdir")
                [ -n "$tr" ] || continue   # not one of ours (system or third-party header)
                if [ "$tr" -gt "$r" ]; then echo "${f#$top/}: includes \"$inc\" ($tdir/ is above $dir/)"; fi
            done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
        done < <(find "$top/$dir" -name '*.[ch]' | sort)
    done
}

# check_symbols OBJ...: each OBJ is FOLDER=PATH; prints one line per reference from an object to a
# symbol defined in an object of a higher folder
check_symbols() {
    local defs=$(mktemp) refs=$(mktemp) o folder path
    for o in "$@"; do
        folder=${o%%=*}; path=${o#*=}
        nm -g --defined-only "$path" 2>/dev/null | awk -v f="$folder" 'NF >= 3 { print $3, f }' >> "$defs"
        nm -u "$path" 2>/dev/null | awk -v f="$folder" -v p="${path##*/}" '{ print $NF, f, p }' >> "$refs"
    done
    local ranks="" l i=0
    for l in $LAYERS; do ranks="$ranks $l=$i"; i=$((i + 1)); done
    awk -v ranks="$ranks" '
        BEGIN { n = split(ranks, r, " "); for (i = 1; i <= n; i++) { split(r[i], kv, "="); m = split(kv[1], names, ":");
                for (j = 1; j <= m; j++) rk[names[j]] = kv[2] } }
        FNR == NR { def[$1] = $2; next }
        ($1 in def) && rk[def[$1]] > rk[$2] { print $2 "/" $3 ": uses " $1 " (defined in " def[$1] "/, above " $2 "/)" }
    ' "$defs" "$refs" | sort -u
    rm -f "$defs" "$refs"
}

fail=0

# ---- the checker on a tree with known faults
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/kernels" "$tmp/cli" "$tmp/models"
printf '#include "cli/cli.h"\n#include "kernels/k.h"\n#include <stdio.h>\nint cli_fn(void);\nint k_fn(void) { return cli_fn(); }\n' > "$tmp/kernels/k.c"
printf 'int k_fn(void);\n' > "$tmp/kernels/k.h"
printf '#include "kernels/k.h"\nint cli_fn(void) { return 1; }\nint main(void) { return k_fn(); }\n' > "$tmp/cli/cli.c"
printf '#include "../cli/cli.h"\n' > "$tmp/models/m.h"
touch "$tmp/cli/cli.h"
got=$(check_includes "$tmp" | wc -l)
if [ "$got" != 1 ]; then echo "FAIL: self-check: $got upward includes found in the test tree, expected 1"; fail=1; fi
if cc -c "$tmp/kernels/k.c" -I "$tmp" -o "$tmp/k.o" && cc -c "$tmp/cli/cli.c" -I "$tmp" -o "$tmp/c.o"; then
    got=$(check_symbols kernels="$tmp/k.o" cli="$tmp/c.o")
    if [ "$got" != "kernels/k.o: uses cli_fn (defined in cli/, above kernels/)" ]; then
        echo "FAIL: self-check: symbol check on the test objects said '$got'"; fail=1
    fi
else
    echo "FAIL: self-check: cannot compile the test objects"; fail=1
fi
# ("../cli/cli.h" from models/ is a relative path the checker does not follow: sources use folder/file.h)

# ---- includes in the source tree
out=$(check_includes "$root")
if [ -n "$out" ]; then echo "$out" | sed 's/^/FAIL: /'; fail=1; fi
echo "includes: $(find $(for l in $(echo "$LAYERS" | tr ' :' '\n\n'); do [ -d "$root/$l" ] && echo "$root/$l"; done) -name '*.[ch]' | wc -l) files checked"

# ---- symbols in the build's objects: CMake keeps them under <target>.dir/<folder>/<file>.o
objs=()
unplaced=""
while IFS= read -r o; do
    rel=${o#*.dir/}
    folder=${rel%%/*}
    if [ -z "$(rank "$folder")" ]; then unplaced="$unplaced $folder"; continue; fi
    objs+=("$folder=$o")
done < <(find "$build/CMakeFiles" -name '*.o' \( -path '*/sdc_objs*.dir/*' -o -path '*/sdccli.dir/*' -o -path '*/sdc_exe.dir/*' \) | sort)
if [ -n "$unplaced" ]; then
    echo "FAIL: objects of folders with no place in the layer order:$(echo $unplaced | tr ' ' '\n' | sort -u | tr '\n' ' ')(add them to LAYERS)"
    fail=1
fi
if [ "${#objs[@]}" -lt 20 ]; then echo "FAIL: only ${#objs[@]} library objects under $build/CMakeFiles"; fail=1; fi
out=$(check_symbols "${objs[@]}")
if [ -n "$out" ]; then echo "$out" | sed 's/^/FAIL: /'; fail=1; fi
echo "symbols: ${#objs[@]} objects checked"
[ $fail = 0 ] && echo "ok: layers $LAYERS"
exit $fail

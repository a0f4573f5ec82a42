#!/usr/bin/env bash
# cli_install.sh — an installed sdc works on its own: `cmake --install` of the build tree into a
# temporary prefix gives libsdc (static and shared), sdc.h, sdc.pc, the sdc binary and the demo
# model; the tree is copied elsewhere (a relocated install), then, with the source tree hidden
# (an empty tmpfs over it in a private mount namespace, where `unshare -rm` is allowed):
# examples/generate.c builds with `pkg-config --cflags --libs sdc` alone and writes an image,
# and the copied `sdc generate -p ...` finds its demo model beside itself and writes a PNG.
# Without unshare the same runs with the source in place, and the paths sdc reports must lie in
# the copied tree. Usage: bash tests/cli_install.sh BUILD/sdc (from the repository root).
set -u
sdc="${1:?usage: cli_install.sh PATH/TO/sdc}"
build=$(cd "$(dirname "$sdc")" && pwd)
root=$(pwd)
tmp=$(mktemp -d /tmp/sdc-install-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; bad "cmake --install"; exit 1; }
libdir=$(cd "$tmp/prefix" && dirname "$(find . -name sdc.pc | head -1)")   # ./lib/pkgconfig
libdir=${libdir%/pkgconfig}; libdir=${libdir#./}
for f in bin/sdc include/sdc.h "$libdir/libsdc.a" "$libdir/libsdc.so" "$libdir/pkgconfig/sdc.pc" \
         share/sdc/toy-sd1/toy-sd1.safetensors; do
    [ -e "$tmp/prefix/$f" ] || bad "install has no $f"
done
[ $fail = 0 ] || { find "$tmp/prefix" | sed "s|$tmp/prefix|  |"; exit 1; }
# the installed header stands alone: it compiles with nothing but itself on the include path
printf '#include <sdc.h>\nint main(void) { return sdc_version() == 0; }\n' > "$tmp/h.c"
cc -std=c11 -Wall -Werror -fsyntax-only -I"$tmp/prefix/include" "$tmp/h.c" || bad "installed sdc.h does not compile on its own"

cp -a "$tmp/prefix" "$tmp/moved"          # a copied install tree: nothing may point back at prefix/
rm -rf "$tmp/prefix"
cp examples/generate.c "$tmp/generate.c"
cat > "$tmp/run.sh" <<RUN
set -u
cd "$tmp"
export XDG_CACHE_HOME="$tmp/cache"
export PKG_CONFIG_PATH="$tmp/moved/$libdir/pkgconfig"
flags=\$(pkg-config --cflags --libs sdc) || { echo "FAIL: pkg-config --cflags --libs sdc"; exit 1; }
echo "pkg-config: \$flags"
cc -std=c11 -O1 generate.c \$flags -o generate || { echo "FAIL: the example does not build"; exit 1; }
LD_LIBRARY_PATH="$tmp/moved/$libdir" ./generate "$tmp/moved/share/sdc/toy-sd1/toy-sd1.safetensors" \
    "a red circle on a blue background" example.ppm 7 || { echo "FAIL: the example failed"; exit 1; }
"$tmp/moved/bin/sdc" generate -p "a red circle on a blue background" -o installed.png 2> sdc.err
rc=\$?
cat sdc.err
[ \$rc = 0 ] || { echo "FAIL: installed sdc generate exited \$rc"; exit 1; }
RUN
if unshare -rm true 2>/dev/null; then
    echo "source tree hidden: an empty tmpfs over $root"
    unshare -rm bash -c "mount -t tmpfs none '$root' && bash '$tmp/run.sh'" || fail=1
    hidden=1
else
    echo "source tree not hidden (unshare -rm not allowed here): checking the paths sdc reports instead"
    bash "$tmp/run.sh" || fail=1
    hidden=0
fi
[ -f "$tmp/example.ppm" ] && [ "$(head -c 2 "$tmp/example.ppm")" = P6 ] || bad "the example wrote no PPM image"
sz=$(head -2 "$tmp/example.ppm" 2>/dev/null | tail -1)
[ -n "$sz" ] && [ "$(stat -c %s "$tmp/example.ppm")" -eq $(( $(echo $sz | tr ' ' '*') * 3 + $(head -3 "$tmp/example.ppm" | wc -c) )) ] || bad "example.ppm has the wrong size for '$sz'"
[ "$(head -c 8 "$tmp/installed.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || bad "installed sdc wrote no PNG"
grep -q "demo model toy-sd1 ($tmp/moved/" "$tmp/sdc.err" 2>/dev/null || bad "installed sdc did not take the demo model from its own tree"
[ $fail = 0 ] && echo "ok: installed, relocated, example and sdc generate without the source tree (hidden=$hidden)"
exit $fail

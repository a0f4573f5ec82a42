#!/usr/bin/env bash
# Install the Debian packages sdc needs to build and test, only those missing.
# Uses sudo when not root. Set SDC_DEPS_EXTRA to add packages (e.g. clang for fuzzing).
set -euo pipefail
pkgs=(build-essential cmake pkg-config libopenblas-openmp-dev libcjson-dev libstb-dev libmicrohttpd-dev curl python3 ${SDC_DEPS_EXTRA:-})
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || true
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

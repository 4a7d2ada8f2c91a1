#!/usr/bin/env bash
# Prepare a fresh Debian 12 machine for kameleon_nb: the Debian packages its builds and
# tests use (when root), then a virtual environment in .venv with the package installed
# in editable mode with its Jupyter and test extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(bash busybox-static debootstrap rsync btrfs-progs qemu-utils zstd util-linux proot chromium shellcheck curl wget iproute2 git graphviz)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "note: not root; Debian packages not installed: ${missing[*]} (root-only tests will be skipped)" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv (the first time takes a few minutes)" >&2
  python3 -m venv .venv
fi
echo "setup: installing kameleon_nb and its Jupyter and test extras in .venv" >&2
log=$(mktemp)
if ! .venv/bin/python -m pip install -q -e '.[jupyter,test]' >"$log" 2>&1; then
  cat "$log" >&2
  echo "setup: pip install failed" >&2
  exit 1
fi
rm -f "$log"
.venv/bin/python -c 'import kameleon_nb, pexpect, yaml'

# The cache proxy's mitmproxy (the [cache] extra's pin) gets an environment of its own,
# inside .venv: its exact pins clash with the Jupyter and test stack. kameleon_nb finds
# it there (engine/cache/proxy.py, find_proxy_python) and runs the package from here.
if ! .venv/mitmproxy/bin/python -c 'import mitmproxy' 2>/dev/null; then
  echo "setup: installing mitmproxy for the persistent cache in .venv/mitmproxy" >&2
  mitmproxy_spec=$(.venv/bin/python -c 'import tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["cache"]
print(next(d for d in deps if d.startswith("mitmproxy")))')
  log=$(mktemp)
  if ! { .venv/bin/python -m venv .venv/mitmproxy &&
         .venv/mitmproxy/bin/python -m pip install -q "$mitmproxy_spec"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup: installing $mitmproxy_spec for the cache proxy failed" >&2
    exit 1
  fi
  rm -f "$log"
fi

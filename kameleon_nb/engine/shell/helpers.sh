# shellcheck shell=bash
# Kameleon's helpers for the commands of every context (kameleon_nb.engine.shell):
# fail prints its arguments on stderr and fails; __download fetches a URL with curl,
# wget or python3, whichever the context has. Exported, so that subshells and scripts
# see them. Evaluated at the start of each context shell and each end of a pipe, before
# the recipe's env script.
__download() {
  builtin echo "Downloading: $1..."
  if command -v curl >/dev/null 2>&1; then
    curl -# -L --fail --retry 3 -o "$2" "$1" 2>&1
  elif command -v wget >/dev/null 2>&1; then
    wget --progress=bar:force -O "$2" "$1" 2>&1
  elif command -v python3 >/dev/null 2>&1; then
    python3 -c 'import sys, urllib.request as u; u.urlretrieve(sys.argv[1], sys.argv[2])' \
      "$1" "$2"
  else
    fail "Cannot download $1: neither curl, wget nor python3 is available"
  fi
}
fail() {
  builtin echo "$@" 1>&2
  return 1
}
builtin export -f fail __download

#!/usr/bin/env bash
# Run a command as an unprivileged user against this checkout (for root, e.g. CI), to
# prove the rootless path (Binder has no root):
#
#   bash scripts/as-user.sh [-C DIR] [--keep] USER -- COMMAND [ARG...]
#   bash scripts/as-user.sh kameleon -- python -m pytest -q -m "not root" tests/engine
#
# * USER is created (useradd -m) if missing; root is refused.
# * The user gets a work dir W (KNB_AS_USER_DIR, default: a new /tmp/kameleon_nb-as-USER.*
#   removed at the end unless --keep) holding, owned by the user:
#     W/src   a copy of this checkout (without .venv, .git and caches): the cwd (unless
#             -C DIR), first on PYTHONPATH, so the code under test is this checkout's;
#     W/venv  a venv of the user's own made from the same Python version, seeing the
#             checkout's venv's packages (read in place, or copied if the user cannot
#             read them), with its console scripts (kameleon, pytest, ...) on PATH;
#     W/home  HOME;  W/tmp  TMPDIR.
#   A given W is reused: W/src is refreshed (files copied over, build dirs kept), the
#   venv is kept.
# * The checkout's venv: KNB_VENV, else VIRTUAL_ENV, else <checkout>/.venv.
# * Only a small environment is passed on: PATH, HOME, USER, LOGNAME, LANG, TERM, TMPDIR,
#   VIRTUAL_ENV, PYTHONPATH, PYTHONDONTWRITEBYTECODE, KNB_AS_USER_DIR, KNB_CHECKOUT, CI,
#   PYTEST_ADDOPTS, and the variables named in KNB_AS_USER_ENV (space-separated).
# Run as USER already, it runs COMMAND directly (in -C DIR if given). Exits with
# COMMAND's status; 125 for a usage or setup error.
set -euo pipefail

die() { echo "as-user.sh: $*" >&2; exit 125; }
usage() { die "usage: as-user.sh [-C DIR] [--keep] USER -- COMMAND [ARG...]"; }

cd_dir="" keep=0
while [ $# -gt 0 ]; do
  case $1 in
    -C) [ $# -ge 2 ] || usage; cd_dir=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) usage ;;
    -*) usage ;;
    *) break ;;
  esac
done
[ $# -ge 3 ] && [ "$2" = "--" ] || usage
user=$1
shift 2

checkout=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [ "$(id -u)" -ne 0 ]; then
  [ "$(id -un)" = "$user" ] || die "run it as root, or as $user itself"
  [ -z "$cd_dir" ] || cd "$cd_dir"
  exec "$@"
fi

if ! id -u "$user" >/dev/null 2>&1; then
  useradd -m -s /bin/bash "$user" || die "cannot create the user $user"
  echo "as-user.sh: created the user $user" >&2
fi
uid=$(id -u "$user")
gid=$(id -g "$user")
[ "$uid" -ne 0 ] || die "$user is root: pick an unprivileged user"
as_user() { setpriv --reuid="$uid" --regid="$gid" --init-groups -- "$@"; }

venv=${KNB_VENV:-${VIRTUAL_ENV:-$checkout/.venv}}
[ -x "$venv/bin/python" ] || die "no venv at $venv (run scripts/setup.sh, or set KNB_VENV)"
pyver=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
site_packages=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')

# ---------------------------------------------------------------- the work dir
if [ -n "${KNB_AS_USER_DIR:-}" ]; then
  work=$KNB_AS_USER_DIR
  mkdir -p "$work"
  keep=1
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/kameleon_nb-as-$user.XXXXXX")
fi
work=$(cd "$work" && pwd)
cleanup() { [ "$keep" -eq 1 ] || rm -rf -- "$work"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
chown "$uid:$gid" "$work"
as_user test -x "$work" || die "$user cannot reach $work (a parent directory is closed to it)"

# ---------------------------------------------------------------- a copy of the checkout
# (extracted over an earlier copy: build dirs and caches made in it are kept)
mkdir -p "$work/src" "$work/home" "$work/tmp"
tar -C "$checkout" -cf - \
  --exclude=./.venv --exclude=./.git --exclude=build --exclude=__pycache__ \
  --exclude='*.egg-info' --exclude=.mypy_cache --exclude=.ruff_cache \
  --exclude=.pytest_cache --exclude=.hypothesis --exclude=.import_linter_cache \
  --exclude=.ipynb_checkpoints --exclude=./tests/artifacts . | tar -C "$work/src" -xf -
chown -R "$uid:$gid" "$work/src" "$work/home" "$work/tmp"
chmod -R u+w "$work/src"  # the user's own checkout is writable, even if ours is read-only

# ---------------------------------------------------------------- the user's venv
if [ ! -x "$work/venv/bin/python" ]; then
  base=""
  for candidate in "$(readlink -f "$venv/bin/python")" "/usr/local/bin/python$pyver" \
    "/usr/bin/python$pyver" "$(command -v "python$pyver" || true)"; do
    if [ -n "$candidate" ] && as_user test -x "$candidate" \
      && as_user "$candidate" -c 'import venv' 2>/dev/null; then
      base=$candidate
      break
    fi
  done
  [ -n "$base" ] || die "no Python $pyver that $user can run (the venv's is $(readlink -f "$venv/bin/python"))"
  packages=$site_packages
  if ! as_user test -r "$packages" -a -x "$packages"; then
    # hard links when possible (fast); the files stay root's, readable, never chowned
    echo "as-user.sh: $user cannot read $packages: copying it to $work/site-packages" >&2
    rm -rf -- "$work/site-packages"
    cp -al "$packages" "$work/site-packages" 2>/dev/null || cp -a "$packages" "$work/site-packages"
    chmod 755 "$work/site-packages"
    packages=$work/site-packages
  fi
  as_user "$base" -m venv --without-pip "$work/venv" || die "cannot create a venv with $base"
  user_site=$(as_user "$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
  printf 'import site; site.addsitedir(%s)\n' "'$packages'" >"$user_site/kameleon_nb_as_user.pth"
  # the checkout venv's console scripts, pointed at this venv's python
  for script in "$venv"/bin/*; do
    name=${script##*/}
    [ -f "$script" ] && [ ! -e "$work/venv/bin/$name" ] || continue
    head -n1 "$script" | grep -q '^#!.*python' || continue
    { echo "#!$work/venv/bin/python"; tail -n +2 "$script"; } >"$work/venv/bin/$name"
    chmod 755 "$work/venv/bin/$name"
  done
  chown -R "$uid:$gid" "$work/venv"
fi

# ---------------------------------------------------------------- run
run_dir=${cd_dir:-$work/src}
env_args=(
  "PATH=$work/venv/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
  "HOME=$work/home" "USER=$user" "LOGNAME=$user" "LANG=${LANG:-C.UTF-8}"
  "TERM=${TERM:-dumb}" "TMPDIR=$work/tmp" "VIRTUAL_ENV=$work/venv"
  "PYTHONPATH=$work/src" "PYTHONDONTWRITEBYTECODE=1"
  "KNB_AS_USER_DIR=$work" "KNB_CHECKOUT=$work/src"
)
for name in CI PYTEST_ADDOPTS ${KNB_AS_USER_ENV:-}; do
  if [ -n "${!name+set}" ]; then env_args+=("$name=${!name}"); fi
done
status=0
as_user env -i "${env_args[@]}" bash -c 'cd -- "$1" && shift && exec "$@"' as-user "$run_dir" "$@" \
  || status=$?
exit "$status"

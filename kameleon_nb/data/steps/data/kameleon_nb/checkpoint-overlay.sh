#!/bin/bash
# kameleon_nb's overlay checkpoint mechanism: the rootfs is an overlayfs mount whose
# lower layers are the sealed checkpoints, one per checkpoint, and whose upper layer
# holds the changes since the last one.
#
#   checkpoint-overlay.sh ROOTFS STORE (mount|create ID|apply ID|list|size ID|delete ID|clear)
#
# STORE layout: l/N (layers, N a small number: mount options stay under 4 KiB),
# l/N.parent (the layer below, or "base"), ids/ID (the layer N of checkpoint ID,
# written last, so an interrupted create is never listed), base/ (empty bottom
# layer), upper/, work/, head (the layer under upper/), next (the next N).
# Past MAX_DEPTH stacked layers, a checkpoint's tree is flattened into one layer.
set -euo pipefail
rootfs=$1 store=$2 action=$3 id=${4:-}
MAX_DEPTH=${KAMELEON_OVERLAY_MAX_DEPTH:-400}

die() { echo "overlay checkpoint: $*" >&2; exit 1; }

init_store() {
  mkdir -p "$store"/{l,ids,base,upper,work} "$rootfs"
  [ -f "$store/head" ] || echo base > "$store/head"
  [ -f "$store/next" ] || echo 1 > "$store/next"
}

# Builtins only below (read, not cat): a create must stay in the milliseconds even
# with hundreds of layers.
get() { local value; IFS= read -r value < "$1"; printf '%s' "$value"; }

# The lowerdir option for layer $1 (l/N:l/parent:...:base, relative to $store), in
# $lowerdir, and the number of layers in $depth.
stack() {
  local layer=$1
  lowerdir="" depth=0
  while [ "$layer" != base ]; do
    lowerdir+="l/$layer:"
    depth=$((depth + 1))
    IFS= read -r layer < "$store/l/$layer.parent"
  done
  lowerdir+="base"
}

unmount() {
  if mountpoint -q "$rootfs"; then umount "$rootfs" || umount -l "$rootfs"; fi
}

mount_stack() {
  stack "$1"
  unmount
  rm -rf "$store/work" && mkdir -p "$store/work"
  # relative paths keep the option string short; mount resolves them from $store
  (cd "$store" && mount -t overlay overlay \
     -o "lowerdir=$lowerdir,upperdir=upper,workdir=work" "$rootfs")
}

write() { echo "$2" > "$1.tmp" && mv -f "$1.tmp" "$1"; }

case $action in
  mount)   # make sure the rootfs is mounted (a new build runs in a new namespace)
    init_store
    mountpoint -q "$rootfs" || mount_stack "$(get "$store/head")"
    ;;
  enabled)
    mountpoint -q "$rootfs"
    ;;
  create)
    [ -n "$id" ] || die "create needs an id"
    init_store
    head=$(get "$store/head")
    n=$(get "$store/next")
    write "$store/next" $((n + 1))
    unmount
    mv "$store/upper" "$store/l/$n"
    echo "$head" > "$store/l/$n.parent"
    mkdir -p "$store/upper"
    stack "$n"
    if [ "$depth" -gt "$MAX_DEPTH" ]; then
      # flatten: one layer with the whole tree of this checkpoint
      m=$(get "$store/next"); write "$store/next" $((m + 1))
      tmp=$store/flatten.$$; mkdir -p "$tmp" "$store/l/$m"
      (cd "$store" && mount -t overlay overlay -o "lowerdir=$lowerdir" "$tmp")
      cp -a "$tmp/." "$store/l/$m/"
      umount "$tmp"; rmdir "$tmp"
      echo base > "$store/l/$m.parent"
      n=$m
    fi
    write "$store/ids/$id" "$n"
    write "$store/head" "$n"
    mount_stack "$n"
    ;;
  apply)
    [ -f "$store/ids/$id" ] || die "no checkpoint $id in $store"
    init_store
    n=$(get "$store/ids/$id")
    unmount
    rm -rf "$store/upper" && mkdir -p "$store/upper"
    write "$store/head" "$n"
    mount_stack "$n"
    ;;
  list)
    [ -d "$store/ids" ] || exit 0
    for f in "$store"/ids/*; do
      [ -e "$f" ] || continue
      case $f in *.tmp) continue ;; esac
      [ -d "$store/l/$(get "$f")" ] && echo "${f##*/}"
    done
    ;;
  size)     # bytes on disk of the layer of ID (the files changed since the one below)
    [ -f "$store/ids/$id" ] || die "no checkpoint $id in $store"
    du -s -B1 "$store/l/$(get "$store/ids/$id")" | cut -f1
    ;;
  delete)   # forget ID; its layer goes too unless other layers stack on it
    [ -f "$store/ids/$id" ] || exit 0
    n=$(get "$store/ids/$id")
    rm -f "$store/ids/$id"
    used=$(get "$store/head")
    for f in "$store"/l/*.parent "$store"/ids/*; do
      [ -e "$f" ] && [ "$(get "$f")" = "$n" ] && used=$n
    done
    if [ "$used" != "$n" ]; then rm -rf "$store/l/$n" "$store/l/$n.parent"; fi
    ;;
  clear)
    unmount
    rm -rf "$store"
    ;;
  *) die "unknown action $action" ;;
esac

#!/bin/bash
# kameleon_nb's overlay checkpoint mechanism: the rootfs is an overlayfs mount whose
# lower layers are the sealed checkpoints, one per checkpoint, and whose upper layer
# holds the changes since the last one.
#
#   checkpoint-overlay.sh ROOTFS STORE (mount|create ID|apply ID|list|size ID|delete ID|clear
#                                       |tree ID|changes ID)
#
# STORE layout: l/N (layers, N a small number: mount options stay under 4 KiB),
# l/N.parent (the layer below, or "base"), l/N.mounts (the mounts the recipe had made
# inside the tree when N was sealed), ids/ID (the layer N of checkpoint ID, written
# last, so an interrupted create is never listed), base/ (empty bottom layer),
# upper/, work/, head (the layer under upper/), next (the next N), hold/ (mounts moved
# aside while the overlay is remounted), views/ID (read-only mounts of checkpoints'
# trees made by "tree" for kameleon diff; mount, create, apply, delete and clear drop
# them, before any layer can change or go).
# Past MAX_DEPTH stacked layers, a checkpoint's tree is flattened into one layer.
#
# Mounts inside the tree (a chroot backend's /proc, /sys, /dev, /dev/pts) belong to
# the state a checkpoint stands for: "create" moves them aside while it remounts the
# overlay and puts them back (a tmpfs keeps its files), "apply" mounts again those of
# the checkpoint it restores, from l/N.mounts: a bind mount from the same place
# outside the tree, any other file system anew with the same type, source and options.
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

# Drop the overlay, and with it (lazily) whatever is still mounted inside it.
unmount() {
  if mountpoint -q "$rootfs"; then umount "$rootfs" 2>/dev/null || umount -l "$rootfs"; fi
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

# Unmount and remove the views "tree" made (before their layers can change or go).
drop_views() {
  local view
  [ -d "$store/views" ] || return 0
  for view in "$store"/views/*; do
    [ -e "$view" ] || continue
    if mountpoint -q "$view"; then umount "$view" 2>/dev/null || umount -l "$view"; fi
    rmdir "$view" 2>/dev/null || true
  done
}

# Remove the layers that no checkpoint needs: a layer stays while an id (or the head,
# the layer the mounted tree stands on) points at it or at a layer stacked on it.
# Creating an id again (a rebuild after -F, or after a restore) leaves the old layer
# to this; so does a create killed half-way. Builtins only, as in stack().
collect() {
  local -A live=()
  local f layer name
  for f in "$store"/ids/* "$store/head"; do
    [ -f "$f" ] || continue
    case $f in *.tmp) continue ;; esac
    IFS= read -r layer < "$f" || continue
    while [ -n "$layer" ] && [ "$layer" != base ] && [ -z "${live[$layer]-}" ]; do
      live[$layer]=1
      [ -f "$store/l/$layer.parent" ] || break
      IFS= read -r layer < "$store/l/$layer.parent" || break
    done
  done
  for f in "$store"/l/*; do
    [ -e "$f" ] || continue
    name=${f##*/}
    [ -n "${live[${name%%.*}]-}" ] || rm -rf -- "$f"
  done
}

# --------------------------------------------------------- mounts inside the tree

# The mount table as "ID PARENT MAJ:MIN FSROOT FSTYPE SOURCE VFS-OPTIONS OPTIONS TARGET"
# lines (findmnt's raw output escapes blanks as \x20, so fields split on spaces).
table() { findmnt -rn -o ID,PARENT,MAJ:MIN,FSROOT,FSTYPE,SOURCE,VFS-OPTIONS,OPTIONS,TARGET; }

unescape() { printf '%b' "$1"; }

# The mounts strictly inside the tree, in mount order, as records for l/N.mounts:
#   PATH <tab> bind <tab> SOURCE-PATH <tab> VFS-OPTIONS
#   PATH <tab> new <tab> FSTYPE <tab> SOURCE <tab> OPTIONS
# where PATH is relative to the tree. A mount is a bind when the same file system
# (device and directory) is also mounted outside the tree.
record_mounts() {
  local all mid parent dev root type source vfs opts target path
  local omid oparent odev oroot otype osource ovfs oopts otarget found
  all=$(table)
  while read -r mid parent dev root type source vfs opts target; do
    target=$(unescape "$target")
    case $target in "$rootfs"/*) ;; *) continue ;; esac
    path=${target#"$rootfs"/}
    found=""
    while read -r omid oparent odev oroot otype osource ovfs oopts otarget; do
      [ "$odev" = "$dev" ] || continue
      otarget=$(unescape "$otarget")
      case $otarget in "$rootfs" | "$rootfs"/*) continue ;; esac
      oroot=$(unescape "$oroot") root=$(unescape "$root")
      case $root in
        "$oroot") found=$otarget ;;
        "${oroot%/}"/*) found=${otarget%/}/${root#"${oroot%/}"/} ;;
        *) continue ;;
      esac
      break
    done <<< "$all"
    if [ -n "$found" ]; then
      printf '%s\tbind\t%s\t%s\n' "$path" "$found" "$vfs"
    else
      printf '%s\tnew\t%s\t%s\t%s\n' "$path" "$type" "$(unescape "$source")" "$opts"
    fi
  done <<< "$all"
}

# Mount again the records of $1 (a file of record_mounts lines) in the tree, except
# those under the paths of the following arguments (already there).
remount_records() {
  local records=$1 path kind a b c skip done_path target
  shift
  [ -s "$records" ] || return 0
  while IFS=$'\t' read -r path kind a b c; do
    skip=""
    for done_path in "$@"; do
      case $path in "$done_path" | "$done_path"/*) skip=1 ;; esac
    done
    [ -z "$skip" ] || continue
    target=$rootfs/$path
    mkdir -p "$target"
    if [ "$kind" = bind ]; then
      mount --bind "$a" "$target" \
        || { echo "overlay checkpoint: cannot bind $a on $target again" >&2; continue; }
      case ,$b, in *,ro,*) mount -o remount,bind,ro "$target" || true ;; esac
    else
      mount -t "$a" -o "$c" "$b" "$target" \
        || echo "overlay checkpoint: cannot mount $a ($b) on $target again" >&2
    fi
  done < "$records"
}

# Move the tree's top-level mounts (with what is mounted in them) to $store/hold;
# the relative paths moved go to the array "held".
hold_mounts() {
  local top mid parent rest target i=0
  held=()
  top=$(findmnt -rn -o ID -M "$rootfs" | tail -n 1)
  [ -n "$top" ] || return 0
  rm -rf "$store/hold" && mkdir -p "$store/hold"
  while read -r mid parent rest; do
    [ "$parent" = "$top" ] || continue
    target=$(unescape "${rest##* }")
    case $target in "$rootfs"/*) ;; *) continue ;; esac
    mkdir -p "$store/hold/$i"
    # a shared mount cannot move: it is mounted again from the record instead
    if mount --move "$target" "$store/hold/$i" 2>/dev/null; then
      held+=("${target#"$rootfs"/}")
      echo "$i" >> "$store/hold/order"
      i=$((i + 1))
    fi
  done <<< "$(table)"
}

# Put the held mounts back where they were in the (remounted) tree.
return_mounts() {
  local i=0 path
  for path in "${held[@]}"; do
    mkdir -p "$rootfs/$path"
    mount --move "$store/hold/$i" "$rootfs/$path" \
      || echo "overlay checkpoint: cannot move $path back into the tree" >&2
    i=$((i + 1))
  done
  rm -rf "$store/hold"
}

case $action in
  mount)   # make sure the rootfs is mounted (a new build runs in a new namespace)
    init_store
    drop_views
    mountpoint -q "$rootfs" || mount_stack "$(get "$store/head")"
    collect   # what a create killed half-way left
    ;;
  enabled)
    mountpoint -q "$rootfs"
    ;;
  create)
    [ -n "$id" ] || die "create needs an id"
    init_store
    drop_views
    head=$(get "$store/head")
    n=$(get "$store/next")
    write "$store/next" $((n + 1))
    record_mounts > "$store/l/$n.mounts"
    hold_mounts
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
      cp "$store/l/$n.mounts" "$store/l/$m.mounts"
      n=$m
    fi
    write "$store/ids/$id" "$n"
    write "$store/head" "$n"
    mount_stack "$n"
    return_mounts
    remount_records "$store/l/$n.mounts" ${held[@]+"${held[@]}"}
    collect
    ;;
  apply)
    [ -f "$store/ids/$id" ] || die "no checkpoint $id in $store"
    init_store
    drop_views
    n=$(get "$store/ids/$id")
    unmount
    rm -rf "$store/upper" && mkdir -p "$store/upper"
    write "$store/head" "$n"
    mount_stack "$n"
    remount_records "$store/l/$n.mounts"
    collect
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
    drop_views
    rm -f "$store/ids/$id"
    collect
    ;;
  clear)
    drop_views
    unmount
    rm -rf "$store"
    ;;
  tree)     # print a directory showing ID's tree, read-only: its layers mounted (with
            # no upper layer) at views/ID in the build's namespace, made again each time
    [ -f "$store/ids/$id" ] || die "no checkpoint $id in $store"
    n=$(get "$store/ids/$id")
    view=$store/views/$id
    mkdir -p "$view"
    if mountpoint -q "$view"; then umount "$view" 2>/dev/null || umount -l "$view"; fi
    stack "$n"
    (cd "$store" && mount -t overlay overlay -o "ro,lowerdir=$lowerdir" "$view")
    printf '%s\n' "$view"
    ;;
  changes)  # ID's layer is exactly what changed since the tree of the layer below it:
            # print both (a layer on the empty base layer stacks on "-") and its directory
    [ -f "$store/ids/$id" ] || die "no checkpoint $id in $store"
    n=$(get "$store/ids/$id")
    parent=$(get "$store/l/$n.parent")
    [ "$parent" != base ] || parent=-
    printf 'layer %s\nparent %s\noverlay %s\n' "$n" "$parent" "$store/l/$n"
    ;;
  *) die "unknown action $action" ;;
esac

#!/bin/bash
# kameleon_nb's rsync checkpoint mechanism: each checkpoint is a hard-linked
# incremental copy of the rootfs (rsync --link-dest on the previous one). Needs no
# root and no mount.
#
#   checkpoint-rsync.sh ROOTFS STORE (enabled|create ID|apply ID|list|size ID|delete ID|clear|tree ID)
#
# STORE layout: ID/ (a complete copy; written as .partial-ID/ and renamed, so an
# interrupted create is never listed), .parent-ID (the checkpoint it was linked to),
# .head (the last checkpoint created or applied).
# Files are compared by content (--checksum), not by size and time: a rewrite that
# keeps both (tar, cp -p, dpkg) must still be saved and restored.
set -euo pipefail
rootfs=$1 store=$2 action=$3 id=${4:-}

die() { echo "rsync checkpoint: $*" >&2; exit 1; }
need_rsync() { command -V rsync >/dev/null || die "rsync not found: apt-get install rsync"; }
set_head() { echo "$1" > "$store/.head.tmp" && mv -f "$store/.head.tmp" "$store/.head"; }
exists() { [ -d "$store/$id" ] || die "checkpoint $id is missing from $store"; }

case $action in
  enabled)
    [ -d "$rootfs" ]
    ;;
  create)
    [ -n "$id" ] || die "create needs an id"
    need_rsync
    mkdir -p -- "$store"
    previous=$(cat "$store/.head" 2>/dev/null || true)
    link=()
    if [ -n "$previous" ] && [ -d "$store/$previous" ]; then link=(--link-dest="$store/$previous"); fi
    rm -rf -- "$store/.partial-$id"
    rsync -aHX --numeric-ids --delete --checksum ${link[@]+"${link[@]}"} -- "$rootfs/" "$store/.partial-$id/"
    rm -rf -- "${store:?}/$id"
    mv -T -- "$store/.partial-$id" "$store/$id"
    echo "$previous" > "$store/.parent-$id"
    set_head "$id"
    ;;
  apply)
    exists
    need_rsync
    mkdir -p -- "$rootfs"
    # copy back (never hard-link back: the copies share their inodes)
    rsync -aHX --numeric-ids --delete --checksum -- "$store/$id/" "$rootfs/"
    set_head "$id"
    echo "restored $rootfs to checkpoint $id"
    ;;
  list)
    [ -d "$store" ] || exit 0
    for d in "$store"/*; do
      [ -d "$d" ] && printf '%s\n' "${d##*/}"
    done
    ;;
  size)   # the bytes this copy adds to the one it was linked to (du counts a
          # hard-linked file once per run, so the second total is what is not shared)
    exists
    parent=$(cat "$store/.parent-$id" 2>/dev/null || true)
    if [ -n "$parent" ] && [ -d "$store/$parent" ]; then
      du -s -B1 -- "$store/$parent" "$store/$id" | tail -n 1 | cut -f1
    else
      du -s -B1 -- "$store/$id" | cut -f1
    fi
    ;;
  tree)   # print the directory holding ID's tree (kameleon diff reads it, never writes);
          # unchanged files are hard links shared with the copy before, one inode
    exists
    printf '%s\n' "$store/$id"
    ;;
  delete)
    rm -rf -- "${store:?}/$id" "$store/.parent-$id"
    ;;
  clear)
    rm -rf -- "$store"
    ;;
  *) die "unknown action $action" ;;
esac

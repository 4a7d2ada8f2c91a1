#!/bin/bash
# kameleon_nb's btrfs checkpoint mechanism: the rootfs is a bind mount of a btrfs
# subvolume, and every checkpoint is a read-only snapshot of it.
#
#   checkpoint-btrfs.sh ROOTFS STORE (mount|enabled|create ID|apply ID|list|clear|tree ID)
#
# STORE layout: image (a sparse btrfs image, size $KAMELEON_BTRFS_SIZE, default 20G;
# only when the filesystem holding STORE is not btrfs), mnt/ (the image's loop mount,
# or a plain directory when STORE is on btrfs already), mnt/rootfs (the working
# subvolume, bind-mounted onto ROOTFS), mnt/snapshots/ID (one read-only snapshot per
# checkpoint). A snapshot is taken under a temporary name (.tmp-ID) and renamed, so a
# listed checkpoint is always complete; names starting with a dot are never listed.
# Apply takes a writable snapshot of ID as mnt/.rootfs.new, then swaps it with the
# working subvolume (mount repairs a swap interrupted half-way).
# Mounts live in the build's mount namespace: the loop device (mount -o loop, auto
# clear) goes away with it. When STORE is first created, the content already in
# ROOTFS is copied into the working subvolume (one filesystem only: no submounts).
set -euo pipefail
rootfs=$1 store=$2 action=$3 id=${4:-}
SIZE=${KAMELEON_BTRFS_SIZE:-20G}
mnt=$store/mnt snaps=$store/mnt/snapshots

die() { echo "btrfs checkpoint: $*" >&2; exit 1; }

need_tools() {
  command -V btrfs >/dev/null 2>&1 || die "btrfs not found: apt-get install btrfs-progs"
}

quiet() {  # run "$@", showing its output only when it fails
  local out
  out=$("$@" 2>&1) || { echo "$out" >&2; return 1; }
}

unmount() {  # unmount $1 if it is a mount point (lazily when busy)
  if mountpoint -q "$1"; then umount "$1" 2>/dev/null || umount -l "$1"; fi
}

delete_subvolume() {  # delete the subvolume $1 if it exists
  if [ -d "$1" ]; then quiet btrfs subvolume delete "$1"; fi
}

init_store() {  # create the store (once), mount the image if any, set up subvolumes
  need_tools
  mkdir -p "$store" "$rootfs"
  if [ ! -e "$store/image" ] && [ ! -e "$mnt/rootfs" ] && [ ! -e "$mnt/.rootfs.new" ]; then
    if [ "$(stat -f -c %T "$store")" != btrfs ]; then
      command -V mkfs.btrfs >/dev/null 2>&1 || die "mkfs.btrfs not found: apt-get install btrfs-progs"
      rm -f "$store/image.tmp"
      truncate -s "$SIZE" "$store/image.tmp"
      quiet mkfs.btrfs -q -K "$store/image.tmp"
      mv "$store/image.tmp" "$store/image"
    fi
  fi
  mkdir -p "$mnt"
  if [ -e "$store/image" ] && ! mountpoint -q "$mnt"; then
    mount -o loop "$store/image" "$mnt"
  fi
  mkdir -p "$snaps"
  if [ ! -d "$mnt/rootfs" ]; then
    if [ -d "$mnt/.rootfs.new" ]; then  # an apply stopped between delete and rename
      mv -T "$mnt/.rootfs.new" "$mnt/rootfs"
    else
      delete_subvolume "$mnt/.rootfs.tmp"
      quiet btrfs subvolume create "$mnt/.rootfs.tmp"
      if ! mountpoint -q "$rootfs"; then  # first use: keep what the rootfs holds already
        cp -ax "$rootfs/." "$mnt/.rootfs.tmp/"
        chmod --reference="$rootfs" "$mnt/.rootfs.tmp"
        chown --reference="$rootfs" "$mnt/.rootfs.tmp"
      fi
      mv -T "$mnt/.rootfs.tmp" "$mnt/rootfs"
    fi
  fi
}

bind() { mountpoint -q "$rootfs" || mount --bind "$mnt/rootfs" "$rootfs"; }

case $action in
  mount)   # make sure the rootfs is mounted (a new build runs in a new namespace)
    init_store
    bind
    for s in "$snaps"/.tmp-*; do  # left by killed creates: never listed, now removed
      delete_subvolume "$s"
    done
    ;;
  enabled)
    mountpoint -q "$rootfs"
    ;;
  create)
    [ -n "$id" ] || die "create needs an id"
    init_store
    bind
    tmp=$snaps/.tmp-$id
    delete_subvolume "$tmp"
    quiet btrfs subvolume snapshot -r "$mnt/rootfs" "$tmp"
    delete_subvolume "$snaps/$id"
    mv -T "$tmp" "$snaps/$id"
    ;;
  apply)
    [ -n "$id" ] || die "apply needs an id"
    init_store
    [ -d "$snaps/$id" ] || die "no checkpoint $id in $snaps"
    delete_subvolume "$mnt/.rootfs.new"
    quiet btrfs subvolume snapshot "$snaps/$id" "$mnt/.rootfs.new"
    unmount "$rootfs"
    delete_subvolume "$mnt/rootfs"
    mv -T "$mnt/.rootfs.new" "$mnt/rootfs"
    bind
    ;;
  list)
    [ -d "$snaps" ] || exit 0
    for s in "$snaps"/*; do
      [ -d "$s" ] && basename "$s"
    done
    true
    ;;
  tree)   # print the read-only snapshot of ID (kameleon diff reads it in the namespace)
    [ -n "$id" ] || die "tree needs an id"
    init_store
    [ -d "$snaps/$id" ] || die "no checkpoint $id in $snaps"
    printf '%s\n' "$snaps/$id"
    ;;
  clear)
    unmount "$rootfs"
    if [ -e "$store/image" ]; then
      unmount "$mnt"
    elif [ -d "$mnt" ]; then  # STORE on btrfs: subvolumes cannot be removed with rm
      for s in "$snaps"/* "$snaps"/.tmp-* "$mnt/rootfs" "$mnt/.rootfs.new" "$mnt/.rootfs.tmp"; do
        delete_subvolume "$s"
      done
    fi
    rm -rf "$store"
    ;;
  *) die "unknown action $action" ;;
esac

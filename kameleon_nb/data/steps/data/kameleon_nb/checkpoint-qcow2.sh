#!/bin/bash
# kameleon_nb's qcow2 checkpoint mechanism: every checkpoint is an internal snapshot
# of the appliance's qcow2 image, named by the checkpoint id.
#
#   checkpoint-qcow2.sh IMAGE (enabled|create ID|apply ID|list|clear)
#
# qemu-img snapshot -c is atomic with respect to listing: it copies the L1 table and
# raises refcounts first, then commits the snapshot with one write of the header's
# (nb_snapshots, snapshots_offset): a killed create never leaves a listed snapshot
# that cannot be applied. It may leave refcounts too high (leaked clusters) and stale
# OFLAG_COPIED flags, which `qemu-img check` reports as errors although no data is at
# risk; so every change (create, apply, clear) is bracketed by a marker file,
# IMAGE.checkpoint-pending, and the next change first repairs an image whose marker
# was left behind (`qemu-img check -r all`, milliseconds). list only reads.
# qcow2 allows several snapshots with one name: create makes
# the new one before it deletes the older ones of that name (an id never disappears),
# and apply uses the newest one. qemu-img snapshot -a takes a numeric qcow2 ID or a
# name (ID first): apply passes the ID. -d takes a name only and deletes the oldest
# snapshot of that name.
set -euo pipefail
image=$1 action=$2 id=${3:-}

die() { echo "qcow2 checkpoint: $*" >&2; exit 1; }

command -V qemu-img >/dev/null 2>&1 || die "qemu-img not found: apt-get install qemu-utils"

# "ID<TAB>NAME" for each snapshot of the image, oldest first. qemu-img snapshot -l
# prints "ID TAG VM-SIZE DATE VM-CLOCK ICOUNT", with TAG padded (and possibly holding
# spaces): the name is what lies between the ID and the last five columns.
snapshots() {
  [ -f "$image" ] || return 0
  local text
  text=$(qemu-img snapshot -l "$image") || die "cannot read the snapshots of $image"
  sed -nE 's/^([0-9]+) +(.*[^ ]) +[0-9.]+ [KMGTPE]?i?B +[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} +[^ ]+ +[^ ]+$/\1\t\2/p' <<<"$text"
}

pending=$image.checkpoint-pending

begin_change() {  # repair what an interrupted change left, then mark this one
  [ -f "$image" ] || die "no image $image"
  if [ -e "$pending" ]; then
    qemu-img check -q -r all "$image" >/dev/null \
      || die "cannot repair $image after an interrupted change (in use?): qemu-img check -r all $image"
  fi
  touch "$pending"
}

end_change() { rm -f "$pending"; }

ids_named() {  # the numeric IDs of the snapshots named $1, oldest first
  snapshots | awk -F '\t' -v name="$1" '$2 == name { print $1 }'
}

case $action in
  enabled)   # the image exists and nobody has it open for writing
    [ -f "$image" ] && qemu-img info "$image" >/dev/null 2>&1
    ;;
  create)
    [ -n "$id" ] || die "create needs an id"
    begin_change
    older=$(ids_named "$id" | wc -l)
    qemu-img snapshot -c "$id" "$image"
    for _ in $(seq "$older"); do qemu-img snapshot -d "$id" "$image"; done  # the oldest first
    end_change
    ;;
  apply)
    [ -n "$id" ] || die "apply needs an id"
    [ -f "$image" ] || die "no image $image"
    newest=$(ids_named "$id" | tail -n 1)
    [ -n "$newest" ] || die "no checkpoint $id in $image"
    begin_change
    qemu-img snapshot -a "$newest" "$image"
    end_change
    ;;
  list)
    snapshots | cut -f 2 | sort -u
    ;;
  clear)
    [ -f "$image" ] || { rm -f "$pending"; exit 0; }
    begin_change
    snapshots | cut -f 2 | while IFS= read -r name; do qemu-img snapshot -d "$name" "$image"; done
    end_change
    ;;
  *) die "unknown action $action" ;;
esac

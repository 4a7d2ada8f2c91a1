"""Compare two directory trees exactly: what changed between two checkpoints.

A checkpoint mechanism may show a checkpoint's tree only inside the build's private
mount namespace (an overlay of its layers, a btrfs snapshot on a loop image), so this
module runs there, as a small program of its own (standard library only, started with
``python -I -S``; see :mod:`kameleon_nb.engine.checkpoint_diff`)::

    treediff.py walk OLD|- NEW        # every path of both trees
    treediff.py overlay LAYER OLD|-   # NEW is OLD plus the overlayfs layer LAYER

It prints one JSON object per change (sorted by path), then ``{"done": true}``. Exit
status 3: the layer uses an overlayfs feature the fast path does not read (redirected
directories, metacopy, xattr whiteouts), walk the trees instead; 2: a tree cannot be
read (the message is on stderr).

What is compared, per path: the type, the permission bits (with setuid, setgid,
sticky), the owner (uid:gid), for a regular file its size and content, for a symbolic
link its target, for a device its major:minor. Contents are read and compared byte
for byte, unless both sides are one inode (a hard link shared by two rsync copies)
or made of the very same data extents (FIEMAP: a btrfs snapshot's unchanged file, a
reflink, an overlay's lower file seen through two mounts). Times, link counts,
extended attributes and the size of directories are not compared (they change with
every rebuild, or mean nothing here).
"""

from __future__ import annotations

import enum
import fcntl
import json
import os
import stat
import struct
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

__all__ = [
    "Change",
    "Entry",
    "LayerNotReadable",
    "Status",
    "change_from_json",
    "change_to_json",
    "entry_from_json",
    "entry_to_json",
    "overlay_changes",
    "walk_changes",
]

_CHUNK = 1 << 20
_KINDS = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "char",
    stat.S_IFBLK: "block",
}
#: overlayfs's own extended attributes (``trusted.`` as root, ``user.`` with userxattr)
_OVERLAY_XATTRS = (b"trusted.overlay.", b"user.overlay.")
#: features that change what a layer means; the fast path reads none of them
_UNREAD_FEATURES = (b"redirect", b"metacopy", b"whiteout", b"whiteouts")


class Status(enum.Enum):
    """What happened to a path."""

    ADDED = "added"
    REMOVED = "removed"
    MODIFIED = "modified"


@dataclass(frozen=True, slots=True)
class Entry:
    """One path of a tree, as compared.

    Attributes:
        kind: ``file``, ``dir``, ``symlink``, ``fifo``, ``socket``, ``char``, ``block``.
        mode: the permission bits, with setuid, setgid and sticky (``0o4755``).
        uid: the owner's user id.
        gid: the owner's group id.
        size: bytes, for a regular file (None otherwise).
        target: what a symbolic link points to (None otherwise).
        device: ``major:minor`` of a device (None otherwise).
    """

    kind: str
    mode: int
    uid: int
    gid: int
    size: int | None = None
    target: str | None = None
    device: str | None = None

    @property
    def owner(self) -> str:
        """``uid:gid``."""
        return f"{self.uid}:{self.gid}"


@dataclass(frozen=True, slots=True)
class Change:
    """A path that differs between the two trees.

    Attributes:
        path: absolute in the tree (``/etc/motd``; ``/`` is the tree's top directory);
            bytes that are not UTF-8 are kept as lone surrogates, as ``os.fsdecode``.
        status: added, removed or modified.
        old: the path in the old tree (None when added).
        new: the path in the new tree (None when removed).
        differs: for a modified path, what differs, among ``type``, ``mode``,
            ``owner``, ``size``, ``content``, ``target``, ``device`` (in that order).
    """

    path: str
    status: Status
    old: Entry | None
    new: Entry | None
    differs: tuple[str, ...] = ()


class LayerNotReadable(Exception):
    """A layer uses an overlayfs feature the fast path does not read."""


class _Item:
    """An entry being compared, with what identifies its inode and where it lives."""

    __slots__ = ("entry", "ident", "path")

    def __init__(self, path: bytes, entry: Entry, ident: tuple[int, int]) -> None:
        self.path = path
        self.entry = entry
        self.ident = ident


def _item(path: bytes) -> _Item | None:
    """The entry at ``path`` (not following a symbolic link), or None if there is none."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    kind = _KINDS.get(stat.S_IFMT(st.st_mode), "unknown")
    entry = Entry(
        kind,
        stat.S_IMODE(st.st_mode),
        st.st_uid,
        st.st_gid,
        size=st.st_size if kind == "file" else None,
        target=os.fsdecode(os.readlink(path)) if kind == "symlink" else None,
        device=(
            f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}" if kind in ("char", "block") else None
        ),
    )
    return _Item(path, entry, (st.st_dev, st.st_ino))


_FS_IOC_FIEMAP = 0xC020660B  # _IOWR('f', 11, struct fiemap)
_FIEMAP_HEAD = struct.Struct("=QQIIII")  # start, length, flags, mapped, count, reserved
_FIEMAP_EXTENT = struct.Struct("=QQQ16xI12x")  # logical, physical, length, flags
_FIEMAP_EXTENTS = 32
_EXTENT_LAST = 0x1
_EXTENT_SHARED = 0x2000
#: extents whose physical address does not name their bytes: unknown, delayed
#: allocation, compressed or encrypted, not aligned, inline, tail-packed, merged
_EXTENT_UNNAMED = 0x2 | 0x4 | 0x8 | 0x80 | 0x100 | 0x200 | 0x400 | 0x1000


def _extents(fd: int) -> list[tuple[int, int, int, int]] | None:
    """The data extents of an open file (logical, physical, length, flags), if all named.

    None when the file system cannot tell (no FIEMAP), when an extent's physical
    address does not name its bytes (inline, compressed, delayed...), or when there
    are more extents than asked for.
    """
    request = bytearray(_FIEMAP_HEAD.size + _FIEMAP_EXTENT.size * _FIEMAP_EXTENTS)
    _FIEMAP_HEAD.pack_into(request, 0, 0, 0xFFFFFFFFFFFFFFFF, 0, 0, _FIEMAP_EXTENTS, 0)
    try:
        fcntl.ioctl(fd, _FS_IOC_FIEMAP, request)
    except OSError:
        return None
    mapped = _FIEMAP_HEAD.unpack_from(request, 0)[3]
    found = [
        _FIEMAP_EXTENT.unpack_from(request, _FIEMAP_HEAD.size + i * _FIEMAP_EXTENT.size)
        for i in range(mapped)
    ]
    if not found or not found[-1][3] & _EXTENT_LAST:
        return None
    if any(flags & _EXTENT_UNNAMED or not physical for _lo, physical, _ln, flags in found):
        return None  # (no data lives at address 0: a file system that says so does not know)
    return [(lo, ph, ln, fl & ~(_EXTENT_LAST | _EXTENT_SHARED)) for lo, ph, ln, fl in found]


def _same_content(old: bytes, new: bytes) -> bool:
    """Whether two regular files of the same size hold the same bytes.

    Files made of the very same data extents (a btrfs snapshot's unchanged file, a
    reflink, an overlay's lower file seen through two mounts) are the same bytes
    without reading them; other files are read and compared.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    with (
        open(os.open(old, flags), "rb", buffering=0) as a,
        open(os.open(new, flags), "rb", buffering=0) as b,
    ):
        shared = _extents(a.fileno())
        if shared is not None and shared == _extents(b.fileno()):
            return True
        while True:
            chunk = a.read(_CHUNK)
            if chunk != b.read(_CHUNK):
                return False
            if not chunk:
                return True


def _differences(old: _Item, new: _Item) -> tuple[str, ...]:
    """What differs between two entries of the same path."""
    o, n = old.entry, new.entry
    if old.ident == new.ident:
        return ()  # one inode (a shared hard link, one layer's file): nothing can differ
    if o.kind != n.kind:
        return ("type",)
    found = []
    if o.mode != n.mode:
        found.append("mode")
    if (o.uid, o.gid) != (n.uid, n.gid):
        found.append("owner")
    if o.kind == "file":
        if o.size != n.size:
            found += ["size", "content"]
        elif not _same_content(old.path, new.path):
            found.append("content")
    elif o.kind == "symlink" and o.target != n.target:
        found.append("target")
    elif o.device != n.device:
        found.append("device")
    return tuple(found)


def _shown(rel: bytes) -> str:
    return os.fsdecode(b"/" + rel)


def _join(rel: bytes, name: bytes) -> bytes:
    return name if not rel else rel + b"/" + name


class _Tree:
    """One side of a comparison: a directory, or an overlayfs layer read as one."""

    def __init__(self, root: bytes, *, layer: bool = False) -> None:
        self.root = root
        self.layer = layer

    def path(self, rel: bytes) -> bytes:
        return _join(self.root, rel) if rel else self.root

    def item(self, rel: bytes) -> _Item | None:
        found = _item(self.path(rel))
        if found is not None and self.layer:
            _check_layer_entry(found)
        return found

    def names(self, rel: bytes) -> list[bytes]:
        with os.scandir(self.path(rel)) as entries:
            return [e.name for e in entries]

    def listing(self, rel: bytes) -> dict[bytes, _Item]:
        """The entries of directory ``rel`` (a layer's whiteouts left out: they hide)."""
        found = {}
        for name in self.names(rel):
            item = self.item(_join(rel, name))
            if item is not None and not (self.layer and _is_whiteout(item)):
                found[name] = item
        return found

    def opaque(self, item: _Item) -> bool:
        """Whether a layer's directory hides what the layers below have there."""
        return self.layer and _xattr(item.path, b"opaque") == b"y"


def _xattr(path: bytes, name: bytes) -> bytes | None:
    for prefix in _OVERLAY_XATTRS:
        try:
            return os.getxattr(path, prefix + name, follow_symlinks=False)
        except OSError:
            continue
    return None


def _is_whiteout(item: _Item) -> bool:
    return item.entry.kind == "char" and item.entry.device == "0:0"


def _check_layer_entry(item: _Item) -> None:
    try:
        names = os.listxattr(item.path, follow_symlinks=False)
    except OSError:
        return
    for name in names:
        raw = os.fsencode(name)
        for prefix in _OVERLAY_XATTRS:
            if raw.startswith(prefix) and raw[len(prefix) :] in _UNREAD_FEATURES:
                raise LayerNotReadable(f"{item.path!r} has {name}")
    if item.entry.kind == "dir" and _xattr(item.path, b"opaque") not in (None, b"y"):
        raise LayerNotReadable(f"{item.path!r} is opaque with xattr whiteouts")


class _Comparison:
    """Collects the changes between two trees."""

    def __init__(self) -> None:
        self.changes: list[tuple[list[bytes], Change]] = []

    def add(self, rel: bytes, status: Status, old: _Item | None, new: _Item | None) -> None:
        change = Change(
            _shown(rel),
            status,
            old.entry if old else None,
            new.entry if new else None,
            _differences(old, new) if old is not None and new is not None else (),
        )
        if change.status is not Status.MODIFIED or change.differs:
            self.changes.append((rel.split(b"/"), change))

    def subtree(self, tree: _Tree, rel: bytes, status: Status) -> None:
        """Every path under directory ``rel`` of ``tree``, as added or removed."""
        pending = [rel]
        while pending:
            top = pending.pop()
            for name, item in tree.listing(top).items():
                path = _join(top, name)
                if status is Status.ADDED:
                    self.add(path, status, None, item)
                else:
                    self.add(path, status, item, None)
                if item.entry.kind == "dir":
                    pending.append(path)

    def pair(self, old: _Tree, new: _Tree, rel: bytes, o: _Item, n: _Item) -> bool:
        """Compare one path present on both sides; True if both are directories."""
        self.add(rel, Status.MODIFIED, o, n)
        if o.entry.kind == "dir" and n.entry.kind == "dir":
            return True
        if o.entry.kind == "dir":
            self.subtree(old, rel, Status.REMOVED)
        if n.entry.kind == "dir":
            self.subtree(new, rel, Status.ADDED)
        return False

    def walk(self, old: _Tree, new: _Tree, rel: bytes) -> None:
        """Compare everything under directory ``rel``, present on both sides."""
        pending = [rel]
        while pending:
            top = pending.pop()
            before, after = old.listing(top), new.listing(top)
            for name in before.keys() | after.keys():
                path = _join(top, name)
                o, n = before.get(name), after.get(name)
                if o is None:
                    assert n is not None
                    self.add(path, Status.ADDED, None, n)
                    if n.entry.kind == "dir":
                        self.subtree(new, path, Status.ADDED)
                elif n is None:
                    self.add(path, Status.REMOVED, o, None)
                    if o.entry.kind == "dir":
                        self.subtree(old, path, Status.REMOVED)
                elif self.pair(old, new, path, o, n) and o.ident != n.ident:
                    pending.append(path)

    def sorted(self) -> list[Change]:
        return [change for _key, change in sorted(self.changes, key=lambda kc: kc[0])]


def walk_changes(old: str | None, new: str) -> list[Change]:
    """Every difference between the trees at ``old`` (None: the empty tree) and ``new``.

    Raises:
        OSError: a tree cannot be read.
    """
    comparison = _Comparison()
    after = _Tree(os.fsencode(new))
    if old is None:
        comparison.subtree(after, b"", Status.ADDED)
        return comparison.sorted()
    before = _Tree(os.fsencode(old))
    o, n = before.item(b""), after.item(b"")
    if o is None or n is None:
        missing = old if o is None else new
        raise FileNotFoundError(f"no tree at {missing}")
    if comparison.pair(before, after, b"", o, n) and o.ident != n.ident:
        comparison.walk(before, after, b"")
    return comparison.sorted()


def overlay_changes(layer: str, old: str | None) -> list[Change]:
    """The differences between the tree at ``old`` and that tree under overlayfs ``layer``.

    ``layer`` is an overlayfs upper (or sealed lower) directory whose layers below
    make up exactly the tree at ``old`` (None: the empty tree). Only the paths the
    layer holds are looked at: a whiteout removes what it hides, an opaque directory
    replaces what is below it, any other entry is added or compared.

    Raises:
        LayerNotReadable: the layer uses an overlayfs feature this does not read.
        OSError: a tree cannot be read.
    """
    comparison = _Comparison()
    upper = _Tree(os.fsencode(layer), layer=True)
    if old is None:
        comparison.subtree(upper, b"", Status.ADDED)
        return comparison.sorted()
    base = _Tree(os.fsencode(old))
    o, n = base.item(b""), upper.item(b"")
    if o is None or n is None:
        raise FileNotFoundError(f"no tree at {old if o is None else layer}")
    comparison.add(b"", Status.MODIFIED, o, n)
    if upper.opaque(n):
        comparison.walk(base, upper, b"")
        return comparison.sorted()
    pending = [b""]
    while pending:
        top = pending.pop()
        for name in upper.names(top):
            path = _join(top, name)
            u, b = upper.item(path), base.item(path)
            if u is None:
                continue
            if _is_whiteout(u):
                if b is not None:
                    comparison.add(path, Status.REMOVED, b, None)
                    if b.entry.kind == "dir":
                        comparison.subtree(base, path, Status.REMOVED)
            elif b is None:
                comparison.add(path, Status.ADDED, None, u)
                if u.entry.kind == "dir":
                    comparison.subtree(upper, path, Status.ADDED)
            elif comparison.pair(base, upper, path, b, u):
                if upper.opaque(u):
                    comparison.walk(base, upper, path)
                else:
                    pending.append(path)
    return comparison.sorted()


def entry_to_json(entry: Entry | None) -> dict[str, object] | None:
    """An entry as a JSON object (``mode`` in octal text, ``owner`` as ``uid:gid``)."""
    if entry is None:
        return None
    found: dict[str, object] = {"type": entry.kind, "mode": f"{entry.mode:04o}"}
    found["owner"] = entry.owner
    if entry.size is not None:
        found["size"] = entry.size
    if entry.target is not None:
        found["target"] = entry.target
    if entry.device is not None:
        found["device"] = entry.device
    return found


def entry_from_json(data: object) -> Entry | None:
    """The inverse of :func:`entry_to_json`."""
    if not isinstance(data, dict):
        return None
    uid, _, gid = str(data["owner"]).partition(":")
    size = data.get("size")
    target = data.get("target")
    device = data.get("device")
    return Entry(
        str(data["type"]),
        int(str(data["mode"]), 8),
        int(uid),
        int(gid),
        size=int(size) if isinstance(size, int) else None,
        target=str(target) if target is not None else None,
        device=str(device) if device is not None else None,
    )


def change_to_json(change: Change) -> dict[str, object]:
    """A change as a JSON object: ``path``, ``change``, ``differs``, ``old``, ``new``."""
    return {
        "path": change.path,
        "change": change.status.value,
        "differs": list(change.differs),
        "old": entry_to_json(change.old),
        "new": entry_to_json(change.new),
    }


def change_from_json(data: dict[str, object]) -> Change:
    """The inverse of :func:`change_to_json`."""
    differs = data.get("differs")
    return Change(
        str(data["path"]),
        Status(data["change"]),
        entry_from_json(data.get("old")),
        entry_from_json(data.get("new")),
        tuple(str(d) for d in differs) if isinstance(differs, list) else (),
    )


def _lines(changes: Sequence[Change]) -> Iterator[str]:
    for change in changes:
        yield json.dumps(change_to_json(change), separators=(",", ":"))
    yield json.dumps({"done": True})


def main(argv: Sequence[str] | None = None) -> int:
    """Compare two trees and print the changes as JSON lines (see the module's docstring)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3 or args[0] not in ("walk", "overlay"):
        print(
            "usage: treediff.py walk OLD|- NEW | treediff.py overlay LAYER OLD|-", file=sys.stderr
        )
        return 2
    mode, first, second = args
    try:
        if mode == "walk":
            changes = walk_changes(None if first == "-" else first, second)
        else:
            changes = overlay_changes(first, None if second == "-" else second)
    except LayerNotReadable as err:
        print(
            f"the overlay layer uses a feature the fast path does not read: {err}", file=sys.stderr
        )
        return 3
    except OSError as err:
        where = f": {os.fsdecode(err.filename)}" if err.filename else ""
        print(f"{err.strerror or err}{where}", file=sys.stderr)
        return 2
    for line in _lines(changes):
        sys.stdout.write(line + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

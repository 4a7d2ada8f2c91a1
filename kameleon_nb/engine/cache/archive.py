"""The cache archive: one file that holds a recipe and everything its build downloaded.

``<name>-cache.tar[.gz|.bz2|.xz|.zst]`` holds, as Kameleon's archive does, the
recipe's files under ``recipe/`` and ``metadata/header`` (YAML, as upstream writes it:
``:recipe_path:`` relative to ``recipe/``, and ``:date:`` in seconds since the epoch),
plus the cache store under ``store/`` (``index.json`` and the ``objects/`` it names;
see :mod:`kameleon_nb.engine.cache.store`). Upstream's polipo cache (``DATA/``) has no
equivalent here. The members are sorted and owned by root with the archive's date, so
packing the same inputs twice gives the same tar stream.

The store's certificate authority is *not* packed: its private key would let whoever
holds the archive impersonate any HTTPS site to a machine that trusts it.

Unpacking uses :mod:`tarfile`'s ``data`` filter (no absolute paths, no ``..``, no link
out of the tree, no device files) and extracts only those three directories.
"""

from __future__ import annotations

import bz2
import contextlib
import enum
import gzip
import io
import json
import logging
import lzma
import os
import re
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, Final

import yaml

from kameleon_nb.engine.cache.store import INDEX_NAME, OBJECTS_DIR, CacheStore, index_bytes
from kameleon_nb.errors import CacheError

__all__ = [
    "HEADER",
    "METADATA_DIR",
    "RECIPE_DIR",
    "STORE_DIR",
    "Compression",
    "UnpackedArchive",
    "archive_name",
    "header_text",
    "pack_archive",
    "recipe_layout",
    "unpack_archive",
]

log = logging.getLogger(__name__)

RECIPE_DIR: Final = "recipe"
METADATA_DIR: Final = "metadata"
STORE_DIR: Final = "store"
HEADER: Final = f"{METADATA_DIR}/header"
_MEMBER_DIRS: Final = (RECIPE_DIR, METADATA_DIR, STORE_DIR)
_PLAIN_YAML: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./+-]*")
_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
_ZSTD_LEVEL: Final = 10  # most of a build's downloads are compressed already


class Compression(enum.Enum):
    """How the archive is compressed (``--cache-archive-compression``)."""

    NONE = "none"
    GZIP = "gzip"
    BZ2 = "bz2"
    XZ = "xz"
    ZSTD = "zstd"

    @property
    def suffix(self) -> str:
        """The file name suffix after ``.tar``."""
        return _SUFFIXES[self]

    @classmethod
    def parse(cls, name: str) -> Compression:
        """The compression called ``name``.

        Raises:
            CacheError: an unknown name (the message lists the valid ones).
        """
        try:
            return cls(name)
        except ValueError:
            choices = ", ".join(c.value for c in cls)
            raise CacheError(
                f"unknown cache archive compression {name!r}: choose one of {choices}"
            ) from None


_SUFFIXES: Final = {
    Compression.NONE: "",
    Compression.GZIP: ".gz",
    Compression.BZ2: ".bz2",
    Compression.XZ: ".xz",
    Compression.ZSTD: ".zst",
}


@dataclass(frozen=True, slots=True)
class UnpackedArchive:
    """What :func:`unpack_archive` extracted.

    Attributes:
        recipe: the recipe file to build.
        store_dir: the cache store to replay from.
        date: when the archive was packed (seconds since the epoch), if recorded.
        metadata_dir: ``metadata/`` (the header and any ``extra_metadata`` packed).
    """

    recipe: Path
    store_dir: Path
    date: int | None
    metadata_dir: Path


def archive_name(name: str, compression: Compression) -> str:
    """The archive's file name, as upstream names it.

    >>> archive_name("debian11", Compression.ZSTD)
    'debian11-cache.tar.zst'
    >>> archive_name("debian11", Compression.NONE)
    'debian11-cache.tar'
    """
    return f"{name}-cache.tar{compression.suffix}"


def header_text(recipe_path: str, date: int) -> str:
    """``metadata/header`` as Kameleon writes it (two YAML documents).

    >>> print(header_text("debian11.yaml", 1700000000), end="")
    ---
    :recipe_path: debian11.yaml
    ---
    :date: 1700000000
    """
    value = recipe_path if _PLAIN_YAML.fullmatch(recipe_path) else json.dumps(recipe_path)
    return f"---\n:recipe_path: {value}\n---\n:date: {date}\n"


def recipe_layout(files: Iterable[Path], recipe: Path) -> dict[Path, str]:
    """Where each recipe file goes under ``recipe/``: its path below their common directory.

    The same layout as upstream: the recipe, its extend chain, steps, aliases... keep
    their places relative to each other.

    >>> layout = recipe_layout([Path("/r/steps/a.yaml")], Path("/r/main.yaml"))
    >>> sorted(layout.values())
    ['main.yaml', 'steps/a.yaml']
    """
    paths = sorted({Path(os.path.abspath(p)) for p in (*files, recipe)})
    common = Path(os.path.commonpath([str(p.parent) for p in paths]))
    return {path: path.relative_to(common).as_posix() for path in paths}


def pack_archive(
    directory: Path,
    name: str,
    *,
    recipe_files: Mapping[Path, str],
    recipe_path: str,
    store_dir: Path,
    compression: Compression = Compression.GZIP,
    date: int | None = None,
    extra_metadata: Mapping[str, bytes] | None = None,
) -> Path:
    """Pack ``<directory>/<name>-cache.tar[...]`` and return its path.

    Args:
        directory: where to write the archive (``kameleon_cwd``).
        name: the recipe's name.
        recipe_files: each file of the recipe → its path under ``recipe/``
            (see :func:`recipe_layout`).
        recipe_path: the recipe's own path under ``recipe/`` (one of the values of
            ``recipe_files``).
        store_dir: the cache store; the responses and pipe outputs it indexes go in,
            nothing else (not its certificate authority).
        compression: how to compress it.
        date: the time to record (default: now).
        extra_metadata: more files for ``metadata/``, by name (not ``header``).

    Raises:
        CacheError: a recipe file is missing or unreadable, a path under
            ``recipe/`` is not relative, the store lacks bodies it indexes, or the
            archive cannot be written.
    """
    date = int(time.time()) if date is None else date
    members = _recipe_members(recipe_files, recipe_path)
    extra = _metadata_members(extra_metadata or {})
    try:
        store = CacheStore.open(store_dir)
    except (OSError, ValueError) as err:
        raise CacheError(f"cannot read the cache store {store_dir}: {err}") from err
    missing = store.missing_objects()
    if missing:
        raise CacheError(
            f"the cache store {store_dir} lacks {len(missing)} recorded bodies "
            f"(first: {missing[0]}); clear it and build again with -C"
        )
    directory = Path(directory)
    target = directory / archive_name(name, compression)
    index = index_bytes(store.responses(), store.pipes())
    objects = sorted(
        {e.body_sha256 for e in store.responses().values()}
        | {e.body_sha256 for e in store.pipes().values()}
    )
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - renamed or removed below
        dir=directory, prefix=f".{target.name}.", delete=False
    )
    try:
        with handle, _tar_writer(handle, compression, date) as tar:
            for path, arcname in members:
                _add_file(tar, path, f"{RECIPE_DIR}/{arcname}", date, mode=None)
            _add_bytes(tar, HEADER, header_text(recipe_path, date).encode(), date)
            for arcname, data in extra:
                _add_bytes(tar, arcname, data, date)
            _add_bytes(tar, f"{STORE_DIR}/{INDEX_NAME}", index, date)
            for sha in objects:
                _add_file(
                    tar,
                    store.object_path(sha),
                    f"{STORE_DIR}/{OBJECTS_DIR}/{sha[:2]}/{sha}",
                    date,
                    mode=0o644,
                )
        os.chmod(handle.name, 0o644)
        os.replace(handle.name, target)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(handle.name)
        if isinstance(err, OSError):
            raise CacheError(f"cannot write the cache archive {target}: {err}") from err
        raise
    log.debug("packed %s: %d recipe files, %d bodies", target, len(members), len(objects))
    return target


def unpack_archive(archive: Path, directory: Path) -> UnpackedArchive:
    """Extract a cache archive into ``directory``; return its recipe and store.

    Raises:
        CacheError: the archive is missing, unreadable or corrupt, holds an unsafe
            member (absolute path, ``..``, a link out of the tree, a device), or
            lacks its header, recipe or store.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise CacheError(
            f"{archive}: no such cache archive; give a <name>-cache.tar[.gz|.bz2|.xz|.zst] "
            "packed by a build with -C"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    try:
        with _tar_reader(archive) as tar:
            tar.extractall(directory, filter=_member_filter)
    except tarfile.FilterError as err:
        member = err.tarinfo.name if err.tarinfo is not None else "?"
        raise CacheError(
            f"{archive}: refusing to unpack the unsafe member {member!r} ({err}); "
            "this is not an archive kameleon_nb packed"
        ) from err
    except _unreadable_errors() as err:
        raise CacheError(
            f"{archive}: not a readable cache archive ({type(err).__name__}: {err}); "
            "pack it again with a build using -C"
        ) from err
    recipe_path, date = _read_header(archive, directory / HEADER)
    recipe = directory / RECIPE_DIR / recipe_path
    if not recipe.is_file():
        raise CacheError(f"{archive}: the recipe {RECIPE_DIR}/{recipe_path} is not in it")
    store_dir = directory / STORE_DIR
    if not (store_dir / INDEX_NAME).is_file():
        raise CacheError(
            f"{archive}: no {STORE_DIR}/{INDEX_NAME} in it (an archive of upstream "
            "Kameleon's polipo cache cannot be replayed); pack it again with kameleon_nb -C"
        )
    try:
        missing = CacheStore.open(store_dir).missing_objects()
    except (OSError, ValueError) as err:
        raise CacheError(f"{archive}: its cache index is corrupt ({err})") from err
    if missing:
        raise CacheError(
            f"{archive}: {len(missing)} recorded bodies are missing from it "
            f"(first: {missing[0]}); pack it again with a build using -C"
        )
    return UnpackedArchive(
        recipe=recipe, store_dir=store_dir, date=date, metadata_dir=directory / METADATA_DIR
    )


# ----------------------------------------------------------------------- helpers


def _recipe_members(recipe_files: Mapping[Path, str], recipe_path: str) -> list[tuple[Path, str]]:
    members: dict[str, Path] = {}
    for path, arcname in recipe_files.items():
        pure = PurePosixPath(arcname)
        if pure.is_absolute() or ".." in pure.parts or not pure.parts or arcname != pure.as_posix():
            raise CacheError(
                f"cannot pack {path} as {RECIPE_DIR}/{arcname}: give a relative path without '..'"
            )
        if not Path(path).is_file():
            raise CacheError(f"cannot pack the recipe file {path}: it does not exist")
        members[pure.as_posix()] = Path(path)
    if recipe_path not in members:
        raise CacheError(f"the recipe {recipe_path!r} is not among the recipe files to pack")
    return sorted(((path, arcname) for arcname, path in members.items()), key=lambda m: m[1])


def _metadata_members(extra: Mapping[str, bytes]) -> list[tuple[str, bytes]]:
    members = []
    for name, data in extra.items():
        pure = PurePosixPath(name)
        if pure.is_absolute() or ".." in pure.parts or name != pure.as_posix() or not name:
            raise CacheError(f"cannot pack metadata/{name}: give a relative path without '..'")
        if f"{METADATA_DIR}/{pure}" == HEADER:
            raise CacheError(f"cannot pack metadata/{name}: kameleon_nb writes {HEADER} itself")
        members.append((f"{METADATA_DIR}/{pure}", bytes(data)))
    return sorted(members)


def _tarinfo(name: str, size: int, date: int, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = date
    info.mode = mode
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, date: int) -> None:
    tar.addfile(_tarinfo(name, len(data), date, 0o644), io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, path: Path, name: str, date: int, mode: int | None) -> None:
    try:
        with open(path, "rb") as source:
            status = os.fstat(source.fileno())
            if mode is None:
                mode = 0o755 if status.st_mode & 0o111 else 0o644
            tar.addfile(_tarinfo(name, status.st_size, date, mode), source)
    except OSError as err:
        raise CacheError(f"cannot pack {path}: {err.strerror or err}") from err


@contextlib.contextmanager
def _tar_writer(
    handle: IO[bytes], compression: Compression, date: int
) -> Iterator[tarfile.TarFile]:
    """A tar stream into ``handle``, compressed (gzip's header gets ``date``, not now)."""
    stream: Any
    if compression is Compression.NONE:
        stream = contextlib.nullcontext(handle)
    elif compression is Compression.GZIP:
        stream = gzip.GzipFile(filename="", mode="wb", compresslevel=6, fileobj=handle, mtime=date)
    elif compression is Compression.BZ2:
        stream = bz2.BZ2File(handle, mode="wb", compresslevel=9)
    elif compression is Compression.XZ:
        stream = lzma.LZMAFile(handle, mode="wb", preset=6)  # noqa: SIM115 - below
    else:
        compressor = _zstandard().ZstdCompressor(level=_ZSTD_LEVEL, threads=-1)
        stream = compressor.stream_writer(handle, closefd=False)
    with (
        stream as output,
        tarfile.open(fileobj=output, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        yield tar


@contextlib.contextmanager
def _tar_reader(archive: Path) -> Iterator[tarfile.TarFile]:
    with open(archive, "rb") as handle:
        if handle.read(4) == _ZSTD_MAGIC:
            handle.seek(0)
            zstandard = _zstandard()
            with (
                zstandard.ZstdDecompressor().stream_reader(handle, closefd=False) as stream,
                tarfile.open(fileobj=stream, mode="r|") as tar,
            ):
                yield tar
            return
        handle.seek(0)
        with tarfile.open(fileobj=handle, mode="r:*") as tar:
            yield tar


def _unreadable_errors() -> tuple[type[BaseException], ...]:
    """What reading a corrupt or truncated archive raises, in any compression."""
    errors: tuple[type[BaseException], ...] = (
        tarfile.TarError,
        EOFError,
        OSError,  # gzip.BadGzipFile, bz2
        ValueError,
        zlib.error,
        lzma.LZMAError,
    )
    with contextlib.suppress(ImportError):
        import zstandard  # noqa: PLC0415 - optional

        errors += (zstandard.ZstdError,)
    return errors


def _zstandard() -> Any:
    try:
        import zstandard  # noqa: PLC0415 - only for .zst archives
    except ImportError as err:
        raise CacheError(
            "zstd cache archives need the zstandard package: pip install zstandard "
            "(or choose another --cache-archive-compression)"
        ) from err
    return zstandard


def _member_filter(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
    # the data filter would strip a leading "/" and accept a ".." that stays inside:
    # an archive kameleon_nb packed has neither, so either one means it is not one
    if member.name.startswith(("/", os.sep)):
        raise tarfile.AbsolutePathError(member)
    if ".." in PurePosixPath(member.name).parts:
        raise tarfile.OutsideDestinationError(member, os.path.join(path, member.name))
    top = PurePosixPath(member.name).parts[:1]
    if top == (".",):  # upstream packs "./recipe/..."
        top = PurePosixPath(member.name).parts[1:2]
    if not top or top[0] not in _MEMBER_DIRS:
        log.debug("not extracting %s (not part of a cache archive)", member.name)
        # still check it, so that a hostile archive is refused rather than half-used
        tarfile.data_filter(member, path)
        return None
    return tarfile.data_filter(member, path)


def _read_header(archive: Path, header: Path) -> tuple[str, int | None]:
    try:
        documents = list(yaml.safe_load_all(header.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise CacheError(f"{archive}: no readable {HEADER} in it ({err})") from err
    fields: dict[str, Any] = {}
    for document in documents:
        if isinstance(document, dict):
            fields.update({str(k).lstrip(":"): v for k, v in document.items()})
    recipe_path = fields.get("recipe_path")
    if not isinstance(recipe_path, str) or not recipe_path:
        raise CacheError(f"{archive}: its {HEADER} names no recipe_path")
    pure = PurePosixPath(recipe_path)
    if pure.is_absolute() or ".." in pure.parts:
        raise CacheError(f"{archive}: its {HEADER} names an unsafe recipe_path {recipe_path!r}")
    date = fields.get("date")
    return recipe_path, date if isinstance(date, int) else None

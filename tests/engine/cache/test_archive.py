"""The cache archive: packing, unpacking, and refusing what is not safe to unpack."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from kameleon_nb.engine.cache.archive import (
    Compression,
    archive_name,
    pack_archive,
    recipe_layout,
    unpack_archive,
)
from kameleon_nb.engine.cache.store import CacheStore, RecordedResponse
from kameleon_nb.errors import CacheError

DATE = 1_700_000_000


@pytest.fixture
def recipe(tmp_path: Path) -> dict[Path, str]:
    root = tmp_path / "recipes"
    (root / "steps" / "setup").mkdir(parents=True)
    (root / "debian.yaml").write_text("extend: base.yaml\n")
    (root / "base.yaml").write_text("setup: []\n")
    script = root / "steps" / "setup" / "tool.sh"
    script.write_text("#!/bin/sh\necho tool\n")
    script.chmod(0o755)
    return recipe_layout([root / "base.yaml", script], root / "debian.yaml")


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    store = CacheStore.open(tmp_path / "store")
    for url, body in (("http://h/a", b"A" * 1000), ("http://h/b", b"B\n")):
        sha, size = store.put_object(body)
        store.record_response(
            f"GET {url}",
            RecordedResponse(url, 200, "OK", (("Content-Type", "text/plain"),), sha, size),
        )
    store.record_pipe("step/0", b"pipe output\n")
    store.put_object(b"an orphan body, indexed nowhere")
    return store.root


def _pack(
    tmp_path: Path, recipe: dict[Path, str], store_dir: Path, compression: Compression
) -> Path:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return pack_archive(
        out,
        "debian",
        recipe_files=recipe,
        recipe_path="debian.yaml",
        store_dir=store_dir,
        compression=compression,
        date=DATE,
    )


def test_recipe_layout_keeps_relative_places(recipe: dict[Path, str]) -> None:
    assert sorted(recipe.values()) == ["base.yaml", "debian.yaml", "steps/setup/tool.sh"]


@pytest.mark.parametrize("compression", list(Compression), ids=[c.value for c in Compression])
def test_round_trip(
    tmp_path: Path, recipe: dict[Path, str], store_dir: Path, compression: Compression
) -> None:
    archive = _pack(tmp_path, recipe, store_dir, compression)
    assert archive.name == archive_name("debian", compression)
    unpacked = unpack_archive(archive, tmp_path / "unpacked")
    assert unpacked.recipe == tmp_path / "unpacked" / "recipe" / "debian.yaml"
    assert unpacked.recipe.read_text() == "extend: base.yaml\n"
    assert unpacked.date == DATE
    tool = unpacked.recipe.parent / "steps" / "setup" / "tool.sh"
    assert tool.read_text() == "#!/bin/sh\necho tool\n"
    assert tool.stat().st_mode & 0o111
    original, copy = CacheStore.open(store_dir), CacheStore.open(unpacked.store_dir)
    assert copy.responses() == original.responses()
    assert copy.pipes() == original.pipes()
    for entry in original.responses().values():
        assert copy.read_object(entry.body_sha256) == original.read_object(entry.body_sha256)
    pipe = copy.pipe_output("step/0")
    assert pipe is not None
    assert pipe.read_bytes() == b"pipe output\n"
    # only what the index names is packed, and never the certificate authority
    objects = [p for p in (unpacked.store_dir / "objects").rglob("*") if p.is_file()]
    assert len(objects) == 3
    assert not (unpacked.store_dir / "ca").exists()


def test_header_is_written_as_upstream_writes_it(
    tmp_path: Path, recipe: dict[Path, str], store_dir: Path
) -> None:
    archive = _pack(tmp_path, recipe, store_dir, Compression.NONE)
    with tarfile.open(archive) as tar:
        header = tar.extractfile("metadata/header")
        assert header is not None
        assert header.read() == b"---\n:recipe_path: debian.yaml\n---\n:date: 1700000000\n"
        names = tar.getnames()
    assert names == sorted(names[:3]) + names[3:]  # recipe files first, sorted
    assert names[3:5] == ["metadata/header", "store/index.json"]


@pytest.mark.parametrize("compression", list(Compression), ids=[c.value for c in Compression])
def test_packing_twice_gives_the_same_bytes(
    tmp_path: Path, recipe: dict[Path, str], store_dir: Path, compression: Compression
) -> None:
    first = _pack(tmp_path, recipe, store_dir, compression).read_bytes()
    second = _pack(tmp_path, recipe, store_dir, compression).read_bytes()
    assert first == second


def test_extra_metadata_is_packed_beside_the_header(
    tmp_path: Path, recipe: dict[Path, str], store_dir: Path
) -> None:
    archive = pack_archive(
        tmp_path,
        "debian",
        recipe_files=recipe,
        recipe_path="debian.yaml",
        store_dir=store_dir,
        extra_metadata={"kameleon_nb.json": b'{"globals": {}}'},
    )
    unpacked = unpack_archive(archive, tmp_path / "unpacked")
    assert (unpacked.metadata_dir / "kameleon_nb.json").read_bytes() == b'{"globals": {}}'
    with pytest.raises(CacheError, match="writes metadata/header itself"):
        pack_archive(
            tmp_path,
            "debian",
            recipe_files=recipe,
            recipe_path="debian.yaml",
            store_dir=store_dir,
            extra_metadata={"header": b"x"},
        )


def test_unknown_compression_lists_the_choices() -> None:
    with pytest.raises(CacheError, match="choose one of none, gzip, bz2, xz, zstd"):
        Compression.parse("lz4")


def test_packing_refuses_paths_that_leave_recipe_dir(
    tmp_path: Path, recipe: dict[Path, str], store_dir: Path
) -> None:
    bad = dict(recipe)
    bad[next(iter(recipe))] = "../escape.yaml"
    with pytest.raises(CacheError, match=r"relative path without '\.\.'"):
        _pack(tmp_path, bad, store_dir, Compression.GZIP)


def test_packing_a_store_with_missing_bodies_fails(
    tmp_path: Path, recipe: dict[Path, str], store_dir: Path
) -> None:
    store = CacheStore.open(store_dir)
    sha = next(iter(store.responses().values())).body_sha256
    store.object_path(sha).unlink()
    with pytest.raises(CacheError, match="lacks 1 recorded bodies"):
        _pack(tmp_path, recipe, store_dir, Compression.GZIP)
    assert list((tmp_path / "out").iterdir()) == []


def test_missing_archive_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CacheError, match=r"nope-cache\.tar\.gz: no such cache archive"):
        unpack_archive(tmp_path / "nope-cache.tar.gz", tmp_path / "x")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(os.urandom(4096), id="random-bytes"),
        pytest.param(gzip.compress(b"not a tar at all" * 100), id="gzip-not-tar"),
        pytest.param(b"\x28\xb5\x2f\xfd" + os.urandom(100), id="bad-zstd"),
    ],
)
def test_corrupt_archive_is_one_clear_error(tmp_path: Path, content: bytes) -> None:
    archive = tmp_path / "broken-cache.tar.gz"
    archive.write_bytes(content)
    with pytest.raises(CacheError, match=r"broken-cache\.tar\.gz: not a readable cache archive"):
        unpack_archive(archive, tmp_path / "x")


def test_truncated_archive_is_one_clear_error(
    tmp_path: Path, recipe: dict[Path, str], store_dir: Path
) -> None:
    archive = _pack(tmp_path, recipe, store_dir, Compression.GZIP)
    archive.write_bytes(archive.read_bytes()[:-200])
    with pytest.raises(CacheError, match="not a readable cache archive"):
        unpack_archive(archive, tmp_path / "x")


def _hostile(tmp_path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    archive = tmp_path / "hostile-cache.tar"
    with tarfile.open(archive, "w") as tar:
        header = b"---\n:recipe_path: r.yaml\n"
        info = tarfile.TarInfo("metadata/header")
        info.size = len(header)
        tar.addfile(info, io.BytesIO(header))
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data) if data else None)
    return archive


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.mark.parametrize(
    ("member", "data"),
    [
        pytest.param(_member("/etc/evil"), b"x", id="absolute"),
        pytest.param(_member("recipe/../../evil"), b"x", id="dot-dot"),
        pytest.param(_member("recipe/link", tarfile.SYMTYPE, "/etc/passwd"), b"", id="abs-link"),
        pytest.param(_member("recipe/link", tarfile.SYMTYPE, "../../x"), b"", id="link-out"),
        pytest.param(_member("recipe/hard", tarfile.LNKTYPE, "/etc/passwd"), b"", id="hardlink"),
        pytest.param(_member("recipe/dev", tarfile.CHRTYPE), b"", id="device"),
        pytest.param(_member("other/../../evil"), b"x", id="outside-known-dirs"),
    ],
)
def test_unsafe_members_are_refused(tmp_path: Path, member: tarfile.TarInfo, data: bytes) -> None:
    archive = _hostile(tmp_path, member, data)
    target = tmp_path / "unpacked"
    with pytest.raises(CacheError, match="refusing to unpack the unsafe member"):
        unpack_archive(archive, target)
    assert not (tmp_path / "evil").exists()
    assert not Path("/etc/evil").exists()


def test_an_archive_without_a_store_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "upstream-cache.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in (
            ("./metadata/header", b"---\n:recipe_path: r.yaml\n---\n:date: 1\n"),
            ("./recipe/r.yaml", b"setup: []\n"),
            ("./DATA/step/x", b"polipo"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(CacheError, match=r"no store/index\.json in it"):
        unpack_archive(archive, tmp_path / "x")
    assert (tmp_path / "x" / "recipe" / "r.yaml").is_file()
    assert not (tmp_path / "x" / "DATA").exists()

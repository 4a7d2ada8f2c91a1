"""``kameleon diff`` on real builds: each mechanism against an independent walk of restored trees.

A recipe whose steps add, remove and modify files (content at the same size, one
byte written in place, mode, setuid, owner, size, device numbers), replace a file by a symbolic link, change a
link's target, replace a directory by a new one, a directory by a file and a file by
a directory, is built with checkpoints. Each checkpoint is then restored and its tree
fingerprinted with ``find``/``md5sum``/``stat`` in the build's namespace; the changes
expected between two fingerprints are computed here, independently of
:mod:`kameleon_nb.engine.treediff`, and must be exactly what ``Session.diff`` gives,
for each step and between checkpoints that are not adjacent (both ways).
"""

from __future__ import annotations

import pytest

from kameleon_nb.core.contexts import ContextName
from kameleon_nb.core.model import StepId
from kameleon_nb.core.plan import BuildOptions
from kameleon_nb.engine.checkpoint_diff import DiffMethod, diff_checkpoints
from kameleon_nb.engine.session import Session
from kameleon_nb.errors import BuildError

from .buildcheck import FILE_MECHANISMS, IS_ROOT

pytestmark = pytest.mark.shell


ROOT_ONLY = "" if IS_ROOT else ": "  # a command prefix that disables a line for other users

STEPS = {
    "populate": f"""
        mkdir -p etc opt/app usr/share/doc/apt var/olddir/sub srv
        echo hello > etc/motd && echo host > etc/hostname && echo secret > etc/shadow
        printf 'x%.0s' $(seq 1000) > usr/share/doc/apt/README
        ln -s ../etc/motd opt/motd-link && echo tool > opt/tool && echo AAAA > opt/same
        head -c 100000 /dev/urandom > opt/blob && echo app > opt/app/file && mkfifo opt/fifo
        head -c 300000 /dev/zero > opt/big
        echo deep > var/olddir/sub/f && echo keep > var/olddir/keep && touch srv/index
        {ROOT_ONLY}mknod opt/null c 1 3
    """,
    "add": """
        mkdir -p root srv/www && head -c 200000 /dev/urandom > root/newfile
        echo index > srv/www/index.html && : > root/empty
    """,
    "remove": "rm -rf usr/share/doc/apt && rm etc/hostname opt/fifo",
    "modify": f"""
        echo BBBB > opt/same && chmod 600 etc/motd && echo more >> opt/blob
        printf Z | dd of=opt/big bs=1 seek=150000 conv=notrunc status=none
        chmod 4755 opt/tool && {ROOT_ONLY}chown 1:2 etc/shadow
        {ROOT_ONLY}rm opt/null && {ROOT_ONLY}mknod opt/null c 1 5
    """,
    "relink": "rm opt/tool && ln -s ../etc/motd opt/tool && ln -sfn /nowhere opt/motd-link",
    "reshape": """
        rm -rf opt/app && mkdir opt/app && echo other > opt/app/other
        rm -rf var/olddir && echo now-a-file > var/olddir
        rm srv/index && mkdir srv/index && echo inside > srv/index/file
    """,
}


def _recipe(mechanism: str) -> str:
    lines = [
        f"checkpoint: {mechanism}.yaml",
        "global:",
        "  rootfs: $${kameleon_cwd}/rootfs",
        "setup:",
        "  - steps:",
    ]
    for name, script in STEPS.items():
        body = "\n".join(f"          {line.strip()}" for line in script.strip().splitlines())
        lines += [
            f"    - {name}:",
            "      - exec_local: |",
            '          set -e; mkdir -p "$${rootfs}"; cd "$${rootfs}"',
            body,
        ]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------- independent walk

FINGERPRINT = r"""
cd "$1"
find . -printf '%y\t%m\t%U\t%G\t%s\t%l\t%P\n'
echo '--- md5'
find . -type f -exec md5sum {} +
echo '--- dev'
find . \( -type c -o -type b \) -exec stat -c '%t %T %n' {} +
"""
KINDS = {
    "f": "file",
    "d": "dir",
    "l": "symlink",
    "p": "fifo",
    "s": "socket",
    "c": "char",
    "b": "block",
}


def fingerprint(session: Session) -> dict[str, dict[str, object]]:
    """path -> type, mode, owner, size, md5, target, device of the tree at $${rootfs}."""
    rootfs = str(session.recipe.global_vars["rootfs"])
    out: list[str] = []
    result = session.builder.contexts.run(
        ContextName.LOCAL, f"set -- '{rootfs}'; {FINGERPRINT}", on_output=out.append
    )
    assert result.exit_status == 0, "".join(out)
    listing, _, rest = "".join(out).partition("--- md5\n")
    sums, _, devices = rest.partition("--- dev\n")
    tree: dict[str, dict[str, object]] = {}
    for line in listing.splitlines():
        kind, mode, uid, gid, size, target, path = line.split("\t")
        tree["/" + path] = {
            "kind": KINDS[kind],
            "mode": int(mode, 8),
            "owner": f"{uid}:{gid}",
            "size": int(size) if kind == "f" else None,
            "target": target if kind == "l" else None,
        }
    for line in sums.splitlines():
        digest, path = line.split("  ", 1)
        tree["/" + path.removeprefix("./")]["md5"] = digest
    for line in devices.splitlines():
        major, minor, path = line.split(" ", 2)
        tree["/" + path.removeprefix("./")]["device"] = f"{int(major, 16)}:{int(minor, 16)}"
    return tree


def expected(old: dict[str, dict[str, object]] | None, new: dict[str, dict[str, object]]):
    """{path: (change, differs)} between two fingerprints (None: the empty tree)."""
    before = old or {}
    changes: dict[str, tuple[str, tuple[str, ...]]] = {}
    for path in new.keys() - before.keys():
        if old is not None or path != "/":
            changes[path] = ("added", ())
    for path in before.keys() - new.keys():
        changes[path] = ("removed", ())
    for path in before.keys() & new.keys():
        o, n = before[path], new[path]
        if o["kind"] != n["kind"]:
            changes[path] = ("modified", ("type",))
            continue
        differs = [what for what in ("mode", "owner") if o[what] != n[what]]
        if o["kind"] == "file" and o["size"] != n["size"]:
            differs += ["size", "content"]
        elif o["kind"] == "file" and o["md5"] != n["md5"]:
            differs.append("content")
        elif o["kind"] == "symlink" and o["target"] != n["target"]:
            differs.append("target")
        elif o.get("device") != n.get("device"):
            differs.append("device")
        if differs:
            changes[path] = ("modified", tuple(differs))
    return changes


def check(diff, old_tree, new_tree) -> None:
    """``diff`` is exactly what the two fingerprints say, attributes included."""
    got = {c.path: (c.status.value, c.differs) for c in diff.changes}
    assert got == expected(old_tree, new_tree)
    assert [c.path for c in diff.changes] == sorted(got, key=lambda p: p.split("/"))
    for change in diff.changes:
        for entry, tree in ((change.old, old_tree), (change.new, new_tree)):
            if entry is None:
                continue
            seen = tree[change.path]
            assert (entry.kind, entry.mode, entry.owner, entry.size, entry.target) == (
                seen["kind"],
                seen["mode"],
                seen["owner"],
                seen["size"],
                seen["target"],
            ), change.path
            assert entry.device == seen.get("device"), change.path


@pytest.mark.parametrize("mechanism", FILE_MECHANISMS)
def test_diff_of_every_step_and_across_steps_matches_the_restored_trees(tmp_path, mechanism):
    (tmp_path / "r.yaml").write_text(_recipe(mechanism))
    with Session.open("r.yaml", cwd=str(tmp_path), checkpointing=True) as session:
        session.build(BuildOptions(checkpointing=True))
        rows = [r for r in session.checkpoints(sizes=False) if r.valid]
        assert [r.slug.rsplit("/", 1)[1] for r in rows] == list(STEPS)
        trees = {}
        for row in rows:
            session.restore(row.step_id)
            trees[row.step_id] = fingerprint(session)
        previous = None
        for row in rows:
            diff = session.diff(row.slug)
            assert diff.new.step_id == row.step_id
            assert (diff.old.step_id if diff.old else None) == previous
            check(diff, trees[previous] if previous else None, trees[row.step_id])
            # the overlay mechanism's layer of a step is its change: nothing else is read
            layered = mechanism == "overlay"
            assert diff.method is (DiffMethod.LAYER if layered else DiffMethod.WALK)
            if layered:  # and walking both trees finds exactly the same
                walked = diff_checkpoints(session.builder, diff.old, diff.new, layer=False)
                assert walked.method is DiffMethod.WALK
                assert walked.changes == diff.changes
            previous = row.step_id
        first, second, fifth, last = rows[0], rows[1], rows[4], rows[-1]
        for old, new in ((first, last), (second, fifth), (fifth, second), (last, first)):
            diff = session.diff(old.step_id, new.step_id)
            check(diff, trees[old.step_id], trees[new.step_id])
            assert diff.method is DiffMethod.WALK
        same = session.diff(second.step_id, second.step_id)
        assert same.changes == ()
        # what the steps did, in words (the fingerprints could share a blind spot)
        shown = {
            c.path: (c.status.value, c.differs) for c in session.diff("setup/steps/modify").changes
        }
        assert shown["/opt/same"] == ("modified", ("content",))
        assert shown["/opt/blob"] == ("modified", ("size", "content"))
        assert shown["/opt/big"] == ("modified", ("content",))  # one byte, in place
        assert shown["/opt/tool"] == ("modified", ("mode",))
        assert shown["/etc/motd"] == ("modified", ("mode",))
        if IS_ROOT:
            assert shown["/etc/shadow"] == ("modified", ("owner",))
            assert shown["/opt/null"] == ("modified", ("device",))
        shown = {
            c.path: (c.status.value, c.differs) for c in session.diff("setup/steps/relink").changes
        }
        assert shown == {
            "/opt/tool": ("modified", ("type",)),
            "/opt/motd-link": ("modified", ("target",)),
        }
        counts = session.diff("setup/steps/add").counts()
        assert (counts.added, counts.bytes_added) == (5, 200006)
        # a hook is never given anything but a checkpoint id
        with pytest.raises(BuildError, match="Refusing checkpoint id"):
            session.builder.checkpoints.tree(StepId("$(touch X)"))

"""Issue 12 (safe under faults): signal dispositions and stray processes, with real processes.

* Every context (local, out, in with the proot and chroot backends) and both ends of a
  ``pipe`` start commands with every signal at its default disposition, whatever the
  build process ignores: ``yes | head -c 100000 > f`` ends.
* Nothing a build or a notebook session starts outlives it: not after ``SIGKILL`` of
  the build, not after a normal end, not after the session is closed; ``setsid`` and
  ``nohup`` jobs and both ends of a pipe included. Processes are recognised by a
  marker unique to each test in their argv (``sleep 1000.NNNNNN``).

Waits are on conditions, with generous deadlines; no test sleeps for a fixed time.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from kameleon_nb.core.contexts import ContextName, ContextSpec
from kameleon_nb.core.plan import BuildOptions
from kameleon_nb.engine import processes
from kameleon_nb.engine.builder import Builder
from kameleon_nb.engine.events import CommandOutput
from kameleon_nb.engine.recipes import open_recipe
from kameleon_nb.engine.session import Session
from kameleon_nb.engine.shell import ContextShell
from kameleon_nb.errors import ContextClosedError

pytestmark = pytest.mark.shell

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ROOT / "kameleon_nb" / "data" / "recipes" / "backends"
AS_ROOT = os.geteuid() == 0
NOBODY = 65534
DEFAULT = "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
SIGNALS = "grep -E '^Sig(Ign|Blk):' /proc/self/status"
HANG = "yes | head -c 100000 > hang.bin; wc -c < hang.bin"
DEADLINE = 60.0

needs_proot = pytest.mark.skipif(shutil.which("proot") is None, reason="needs proot")
needs_root = pytest.mark.skipif(not AS_ROOT, reason="needs root")
needs_setpriv = pytest.mark.skipif(
    not AS_ROOT or shutil.which("setpriv") is None, reason="needs root and setpriv"
)


# ---------------------------------------------------------------- helpers


def new_marker() -> str:
    """A ``sleep`` duration that no other process on the machine uses."""
    return f"1000.{secrets.randbelow(10**6):06d}"


def marked(marker: str) -> list[int]:
    """Live processes with ``marker`` as a word of their argv."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker.encode() in argv and processes.pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def describe(pids: list[int]) -> str:
    """Who the processes are: pid, ppid, state, session and argv of each."""
    lines = []
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        lines.append(f"{pid} ppid={fields[1]} state={fields[0]} sid={fields[3]} {argv}")
    return "\n".join(lines)


def assert_none_left(marker: str) -> None:
    left = marked(marker)
    assert not left, describe(left)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"after {timeout:g} s: {what}")
        time.sleep(0.02)


@contextlib.contextmanager
def ignoring(*numbers: int) -> Iterator[None]:
    """This (Python) process ignores ``numbers``, as a build started as a background job."""
    previous = {number: signal.getsignal(number) for number in numbers}
    for number in numbers:
        signal.signal(number, signal.SIG_IGN)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def backend_cmd(backend: str, rootfs: Path) -> str:
    """The in context command of a shipped backend, for ``rootfs``."""
    data = yaml.safe_load((BACKENDS / f"{backend}.yaml").read_text())
    return data["global"]["in_context"]["cmd"].replace("$${rootfs}", shlex.quote(str(rootfs)))


def make_rootfs(root: Path) -> Path:
    """A minimal tree: the host's bash (and its libraries) and a static busybox."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("needs a static busybox (apt-get install busybox-static)")
    linkage = subprocess.run(["ldd", busybox], capture_output=True, text=True, check=False)
    if "not a dynamic executable" not in linkage.stdout + linkage.stderr:
        pytest.skip("needs a static busybox (apt-get install busybox-static)")
    for name in ("bin", "sbin", "usr/bin", "usr/sbin", "root", "tmp", "proc", "sys", "dev"):
        (root / name).mkdir(parents=True, exist_ok=True)
    listing = subprocess.run(["ldd", "/bin/bash"], capture_output=True, text=True, check=False)
    for path in ["/bin/bash", *re.findall(r"(/\S+\.so[.\d]*)", listing.stdout)]:
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(path), target)
    shutil.copy2(busybox, root / "bin" / "busybox")
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True)
    for applet in applets.stdout.split():
        if not (root / "bin" / applet).exists():
            (root / "bin" / applet).symlink_to("busybox")
    (root / "tmp").chmod(0o1777)
    if AS_ROOT:  # proot as nobody writes in it; chroot as root does not mind
        subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(root)], check=True)
    return root


@pytest.fixture(scope="module")
def shared_dir() -> Iterator[Path]:
    """A directory any user can reach (for the tests run as nobody)."""
    path = Path(tempfile.mkdtemp(prefix="knb-processes-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def rootfs(shared_dir: Path) -> Path:
    return make_rootfs(shared_dir / "rootfs")


def _nobody_can(*argv: str) -> bool:
    command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]
    # through sh: setpriv's own exec still passes where nobody's would not (/root is 0700)
    shell = ["sh", "-c", 'exec "$@"', "probe"]
    return (
        subprocess.run([*command, *shell, *argv], capture_output=True, check=False).returncode == 0
    )


@functools.cache
def nobody_python() -> str:
    """A Python of this version that nobody can run (this venv's may live under /root)."""
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    for candidate in (sys.executable, f"/usr/bin/{version}", f"/usr/local/bin/{version}"):
        if _nobody_can(candidate, "-c", "import yaml"):
            return candidate
    pytest.skip(f"no {version} that nobody can run")


def as_nobody(argv: list[str], *, cwd: Path) -> list[str]:
    """``argv`` (a Python program) run as nobody, with a small environment and this
    checkout and this venv's packages importable."""
    packages = sysconfig.get_path("purelib")
    env = [
        "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME=/tmp",
        f"PYTHONPATH={ROOT}:{packages}",
        "LC_ALL=C.UTF-8",
    ]
    if argv[0] == sys.executable:
        argv = [nobody_python(), *argv[1:]]
    return [
        "setpriv",
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        "--",
        "env",
        "-i",
        *env,
        "sh",
        "-c",
        'cd "$1" && shift && exec "$@"',
        "as-nobody",
        str(cwd),
        *argv,
    ]


def user_dir(parent: Path, name: str, *, rootless: bool) -> Path:
    path = parent / f"{name}-{secrets.token_hex(4)}"
    path.mkdir()
    if rootless:
        os.chown(path, NOBODY, NOBODY)
    return path


# ---------------------------------------------------------------- default signals

# Runs a context shell and prints, as JSON, what its commands see. argv: context name,
# context command, start dir.
_PROBE = f"""
import json, sys
from kameleon_nb.core.contexts import ContextName, ContextSpec
from kameleon_nb.engine.shell import ContextShell
spec = ContextSpec(name=ContextName(sys.argv[1]), cmd=sys.argv[2], start_dir=sys.argv[3],
                   workdir=sys.argv[4] or None)
with ContextShell(spec) as sh:
    seen = {{}}
    for key, script in (("signals", {SIGNALS!r}), ("hang", {HANG!r})):
        parts = []
        sh.run(script, on_output=parts.append, timeout=30)
        seen[key] = "".join(parts)
print(json.dumps(seen))
"""


def probe(name: str, cmd: str, start_dir: Path, *, workdir: str = "", rootless: bool) -> dict:
    """What commands of a context see, from a build process that ignores SIGINT,
    SIGQUIT and SIGPIPE (as one started in the background by a script)."""
    argv = [sys.executable, "-c", _PROBE, name, cmd, str(start_dir), workdir]
    if rootless:
        argv = as_nobody(argv, cwd=start_dir)
    with ignoring(signal.SIGINT, signal.SIGQUIT):
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
            restore_signals=False,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("name", ["local", "out"])
@pytest.mark.parametrize("rootless", [False, True], ids=["user", "nobody"])
def test_host_contexts_start_commands_with_default_signals(name, rootless, shared_dir):
    if rootless and not AS_ROOT:
        pytest.skip("already rootless")
    if rootless and shutil.which("setpriv") is None:
        pytest.skip("needs setpriv")
    start = user_dir(shared_dir, name, rootless=rootless)
    seen = probe(name, "bash", start, rootless=rootless)
    assert seen["signals"] == DEFAULT
    assert seen["hang"].strip() == "100000"


@needs_proot
@pytest.mark.parametrize("rootless", [False, True], ids=["user", "nobody"])
def test_proot_in_context_starts_commands_with_default_signals(rootless, rootfs, shared_dir):
    # proot's launcher is a Python script: Python ignores SIGPIPE, and an exec keeps that.
    if rootless and not AS_ROOT:
        pytest.skip("already rootless")
    if rootless and shutil.which("setpriv") is None:
        pytest.skip("needs setpriv")
    start = user_dir(shared_dir, "in", rootless=rootless)
    seen = probe(
        "in",
        backend_cmd("proot", rootfs),
        start,
        workdir=f"/root/work-{start.name}",
        rootless=rootless,
    )
    assert seen["signals"] == DEFAULT
    assert seen["hang"].strip() == "100000"


@needs_root
def test_chroot_in_context_starts_commands_with_default_signals(rootfs, shared_dir):
    start = user_dir(shared_dir, "in", rootless=False)
    seen = probe(
        "in",
        backend_cmd("chroot", rootfs),
        start,
        workdir=f"/root/work-{start.name}",
        rootless=False,
    )
    assert seen["signals"] == DEFAULT
    assert seen["hang"].strip() == "100000"


def test_both_ends_of_a_pipe_start_with_default_signals(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = f"cd $${{kameleon_cwd}} && {HANG} >&2 && {SIGNALS} >&2; echo through"
    target = f"cat; cd $${{kameleon_cwd}}/out && {HANG} && {SIGNALS}"
    (tmp_path / "p.yaml").write_text(
        "global:\n"
        "  out_context:\n    cmd: bash\n    workdir: $${kameleon_cwd}/out\n"
        "setup:\n  - pipes:\n    - both_ends:\n      - pipe:\n"
        f"        - exec_local: {json.dumps(source)}\n"
        f"        - exec_out: {json.dumps(target)}\n"
    )
    recipe = open_recipe("p.yaml", cwd=str(tmp_path))
    events: list[object] = []
    with ignoring(signal.SIGINT, signal.SIGQUIT), Builder(recipe, on_event=events.append) as b:
        b.build(BuildOptions())
    lines = "".join(e.text for e in events if isinstance(e, CommandOutput)).splitlines()
    assert lines.count("100000") == 2
    assert lines.count("SigIgn:\t0000000000000000") == 2
    assert lines.count("SigBlk:\t0000000000000000") == 2
    assert "through" in lines


# ---------------------------------------------------------------- stray processes


def _recipe(marker: str, *, blocking_pipe: bool) -> str:
    """A recipe whose local and out contexts leave jobs behind, then (maybe) a pipe
    whose ends run until they are killed."""
    leave = (
        f"sleep {marker} & nohup sleep {marker} >/dev/null 2>&1 & "
        f"setsid -f sleep {marker} </dev/null >/dev/null 2>&1; "
        f"(setsid sleep {marker} </dev/null >/dev/null 2>&1 &); "
        f"(trap '' HUP TERM; exec sleep {marker}) </dev/null >/dev/null 2>&1 &"
    )
    steps = (
        "      - exec_local: " + json.dumps(leave) + "\n"
        "      - exec_out: " + json.dumps(leave) + "\n"
    )
    if blocking_pipe:
        source = f"setsid -f sleep {marker} </dev/null >/dev/null 2>&1; echo PIPE-STARTED >&2; exec sleep {marker}"
        steps += (
            "    - blocked:\n      - pipe:\n"
            f"        - exec_local: {json.dumps(source)}\n"
            f"        - exec_out: {json.dumps(f'sleep {marker} & cat; sleep {marker}')}\n"
        )
    else:
        steps += (
            "    - short_pipe:\n      - pipe:\n"
            f"        - exec_local: {json.dumps(f'sleep {marker} & echo through')}\n"
            f"        - exec_out: {json.dumps(f'setsid -f sleep {marker} >/dev/null 2>&1; cat')}\n"
        )
    return (
        "global:\n"
        "  out_context:\n    cmd: bash\n    workdir: $${kameleon_cwd}/out\n"
        "setup:\n  - strays:\n    - leave:\n" + steps
    )


def _build_argv(rootless: bool, cwd: Path) -> list[str]:
    argv = [sys.executable, "-m", "kameleon_nb", "build", "--script", "strays.yaml"]
    return as_nobody(argv, cwd=cwd) if rootless else argv


def _start_build(cwd: Path, marker: str, *, blocking_pipe: bool, rootless: bool):
    (cwd / "strays.yaml").write_text(_recipe(marker, blocking_pipe=blocking_pipe))
    if rootless:
        os.chown(cwd / "strays.yaml", NOBODY, NOBODY)
    log = (cwd / "build.log").open("w")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        _build_argv(rootless, cwd),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    ), log


@pytest.mark.parametrize("rootless", [False, True], ids=["user", "nobody"])
def test_sigkill_of_the_build_leaves_no_process(rootless, shared_dir):
    if rootless and not AS_ROOT:
        pytest.skip("already rootless")
    if rootless and shutil.which("setpriv") is None:
        pytest.skip("needs setpriv")
    marker = new_marker()
    cwd = user_dir(shared_dir, "killed", rootless=rootless)
    build, log = _start_build(cwd, marker, blocking_pipe=True, rootless=rootless)
    try:
        # 5 jobs per context; the source's setsid job and its own sleep; the target's
        # background job
        wait_until(
            lambda: (
                ("PIPE-STARTED" in (cwd / "build.log").read_text() and len(marked(marker)) >= 13)
                or build.poll() is not None
            ),
            f"the build did not reach its pipe: {(cwd / 'build.log').read_text()}",
        )
        assert build.poll() is None, (cwd / "build.log").read_text()
        build.send_signal(signal.SIGKILL)
        build.wait(DEADLINE)
    finally:
        if build.poll() is None:
            build.kill()
            build.wait()
        log.close()
    wait_until(
        lambda: not marked(marker), f"processes outlived the build: {describe(marked(marker))}"
    )


@pytest.mark.parametrize("rootless", [False, True], ids=["user", "nobody"])
def test_a_build_that_ends_leaves_no_process(rootless, shared_dir):
    if rootless and not AS_ROOT:
        pytest.skip("already rootless")
    if rootless and shutil.which("setpriv") is None:
        pytest.skip("needs setpriv")
    marker = new_marker()
    cwd = user_dir(shared_dir, "ended", rootless=rootless)
    build, log = _start_build(cwd, marker, blocking_pipe=False, rootless=rootless)
    with log:
        assert build.wait(DEADLINE) == 0, (cwd / "build.log").read_text()
    assert "through" in (cwd / "build.log").read_text()
    # The build waited for its contexts' supervisors: nothing is left, at once.
    assert_none_left(marker)


def test_closing_a_session_leaves_no_process(tmp_path):
    marker = new_marker()
    session = Session.scratch(cwd=str(tmp_path))
    try:
        for context in (ContextName.LOCAL, ContextName.OUT):
            session.run_command(
                context,
                f"sleep {marker} & nohup sleep {marker} >/dev/null 2>&1 & "
                f"setsid -f sleep {marker} </dev/null >/dev/null 2>&1",
            )
        wait_until(lambda: len(marked(marker)) == 6, "the jobs did not start")
    finally:
        session.close()
    assert_none_left(marker)


def test_a_shell_that_dies_takes_its_jobs_with_it(tmp_path):
    marker = new_marker()
    spec = ContextSpec(name=ContextName.LOCAL, cmd="bash", start_dir=str(tmp_path))
    with ContextShell(spec) as sh:
        sh.run(f"setsid -f sleep {marker} </dev/null >/dev/null 2>&1; sleep {marker} &")
        wait_until(lambda: len(marked(marker)) == 2, "the jobs did not start")
        with pytest.raises(ContextClosedError, match="was closed"):
            sh.run("kill -9 $$")
        assert_none_left(marker)


def test_kill_zero_in_a_command_spares_the_supervisor(tmp_path):
    # "kill 0" signals the command's process group: not the supervisor's.
    marker = new_marker()
    spec = ContextSpec(name=ContextName.LOCAL, cmd="bash", start_dir=str(tmp_path))
    with ContextShell(spec) as sh:
        sh.run(f"setsid -f sleep {marker} </dev/null >/dev/null 2>&1")
        with pytest.raises(ContextClosedError, match="was closed"):
            sh.run("kill -9 0")
        assert_none_left(marker)

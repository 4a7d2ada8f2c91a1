"""Tests of the context shell against real bash processes (and a real chroot)."""

from __future__ import annotations

import _thread
import dataclasses
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kameleon_nb.core.contexts import ContextName, ContextSpec
from kameleon_nb.engine.shell import CommandResult, ContextShell, needs_subshell
from kameleon_nb.engine.shell.protocol import may_assign
from kameleon_nb.errors import CommandTimeoutError, ContextClosedError, ContextError, ShellError

shell_test = pytest.mark.shell
needs_root = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chroot)"),
]


def make_spec(start_dir: Path, **overrides: Any) -> ContextSpec:
    base = ContextSpec(name=ContextName.LOCAL, cmd="bash", start_dir=str(start_dir))
    return dataclasses.replace(base, **overrides)


class Collected:
    """An ``on_output`` callback that records the chunks it gets."""

    def __init__(self) -> None:
        self.chunks: list[str] = []
        self.times: list[float] = []

    def __call__(self, text: str) -> None:
        self.chunks.append(text)
        self.times.append(time.monotonic())

    @property
    def text(self) -> str:
        return "".join(self.chunks)


@pytest.fixture
def start_dir(tmp_path: Path) -> Path:
    path = tmp_path / "build"
    path.mkdir()
    return path


@pytest.fixture(params=[True, False], ids=["fast-path", "subshell-only"])
def shell(request: pytest.FixtureRequest, start_dir: Path) -> Iterator[ContextShell]:
    """A local context shell, in both execution modes."""
    with ContextShell(make_spec(start_dir), interrupt_grace=0.5, fast_path=request.param) as sh:
        yield sh


@pytest.fixture
def fast_shell(start_dir: Path) -> Iterator[ContextShell]:
    with ContextShell(make_spec(start_dir), interrupt_grace=0.5) as sh:
        yield sh


def out(sh: ContextShell, script: str, **kwargs: float) -> tuple[int, str]:
    """Run ``script`` and return its status and complete output."""
    collected = Collected()
    result = sh.run(script, on_output=collected, **kwargs)
    return result.exit_status, collected.text


# ----------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    "command",
    [
        "apt-get install -y curl > /dev/null 2>&1 && echo ok",
        "x=$(cat /etc/hostname); y=${x%%.*}",
        "echo error >&2; ls 2>&1 | tee log",
        "[ -f x ] && rm -f x || true",
        "export PATH=/opt/bin:$PATH",
        "read -r line; printf -v z '%s' 1; let n=2",
        "mkdir -p /tmp/a-set-of-dirs",
    ],
)
def test_needs_subshell_false_for_variable_only_commands(command: str) -> None:
    assert not needs_subshell(command)


@pytest.mark.parametrize(
    "command",
    [
        "cd /tmp",
        "pushd /tmp",
        "f() { echo; }",
        "function f { echo; }",
        "exit 1",
        "exec > /dev/null",
        "set -e",
        "shopt -s extglob",
        "trap 'echo' EXIT",
        ". ./env.sh",
        "source env.sh",
        'eval "$cmd"',
        "sleep 10 &",
        "exec {fd}>file",
        "IFS=:",
        "PROMPT_COMMAND=x",
        "umask 077",
        "ulimit -n 10",
        "alias ll='ls -l'",
        "unset -f fail",
        "readonly x=1",
        "__knb_c=1",
    ],
)
def test_needs_subshell_true_for_commands_that_change_the_shell(command: str) -> None:
    assert needs_subshell(command)


def test_needs_subshell_true_for_calls_to_context_functions() -> None:
    assert needs_subshell("prepare_rootfs /mnt", frozenset({"prepare_rootfs"}))
    assert not needs_subshell("echo hi", frozenset({"prepare_rootfs"}))


# -------------------------------------------------------- execution semantics


@shell_test
def test_saved_variables_are_private(shell: ContextShell, start_dir: Path) -> None:
    assert out(shell, "export SECRET=hunter2")[0] == 0
    assert out(shell, "true")[0] == 0  # the shell reads it once the previous save is done
    saved = [p for p in (start_dir / "kameleon_scripts").rglob("bash_env*") if p.is_file()]
    assert saved, "no saved variables"
    assert any("hunter2" in p.read_text() for p in saved)
    for path in saved:
        assert path.stat().st_mode & 0o777 == 0o600, path
        assert path.parent.stat().st_mode & 0o777 == 0o700, path.parent


@shell_test
def test_variables_persist_between_commands(shell: ContextShell) -> None:
    assert shell.run("a=1; export b='two words'; c=$'x\\ny'; arr=(p 'q r')").exit_status == 0
    status, text = out(shell, 'echo "$a|$b|$c|${arr[1]}"; bash -c \'echo "child:$a"\'')
    assert status == 0
    assert text == "1|two words|x\ny|q r\nchild:1\n"


@shell_test
def test_unset_persists(shell: ContextShell) -> None:
    shell.run("gone=1")
    shell.run("unset gone")
    assert out(shell, 'echo "${gone-unset}"')[1] == "unset\n"


@shell_test
def test_cd_and_functions_do_not_persist(shell: ContextShell, start_dir: Path) -> None:
    shell.run("cd /; f() { echo in-f; }; f; set -u; shopt -s nullglob")
    status, text = out(
        shell, "/bin/pwd; f; echo ${undefined_var-fine}; shopt -q nullglob || echo off"
    )
    assert text == f"{start_dir}\nbash: f: command not found\nfine\noff\n"
    assert status == 0


@shell_test
def test_pwd_variable_persists_but_not_the_directory(shell: ContextShell, start_dir: Path) -> None:
    shell.run("cd /tmp")
    assert out(shell, "echo $PWD; /bin/pwd")[1] == f"/tmp\n{start_dir}\n"


@shell_test
def test_indirect_cd_in_place_does_not_move_later_commands(
    fast_shell: ContextShell, start_dir: Path
) -> None:
    # "$c /" runs in place (nothing in its text says cd): the shell must still go back.
    fast_shell.run("c=cd")
    fast_shell.run("$c /")
    assert out(fast_shell, "/bin/pwd")[1] == f"{start_dir}\n"


@shell_test
@pytest.mark.parametrize(
    ("command", "status"),
    [
        ("echo before; exit 3; echo after", 3),
        ("set -e; false; echo no", 1),
        ("exec bash", 0),
        ("if then fi", 2),
        ("echo x; kill -INT $BASHPID", 130),
        ("trap 'echo trapped' EXIT; exit 4", 4),
    ],
)
def test_exit_errexit_exec_and_syntax_errors_keep_the_context(
    shell: ContextShell, command: str, status: int
) -> None:
    shell.run("kept=yes")
    assert shell.run(command).exit_status == status
    assert shell.alive
    assert out(shell, "echo $kept")[1] == "yes\n"


@shell_test
def test_exit_status_is_that_of_the_whole_script(shell: ContextShell) -> None:
    assert shell.run("false; true").exit_status == 0
    assert shell.run("true; false").exit_status == 1
    assert shell.run("false | true").exit_status == 1  # pipefail
    assert shell.run("(exit 7)\n").exit_status == 7


@shell_test
def test_stdin_is_dev_null(shell: ContextShell) -> None:
    status, text = out(shell, 'read x; echo "rc=$?"; cat; echo end', timeout=10)
    assert status == 0
    assert text == "rc=1\nend\n"


@shell_test
def test_stdout_and_stderr_are_pipes_not_a_terminal(shell: ContextShell) -> None:
    script = (
        "for fd in 1 2; do test -t $fd && echo tty$fd || echo no-tty$fd; done; "
        "p=$BASHPID; for fd in 1 2; do t=$(readlink /proc/$p/fd/$fd); echo ${t%%:*}; done; "
        "python3 -c 'import sys; print(sys.stdout.isatty(), sys.stderr.isatty())'"
    )
    assert out(shell, script) == (0, "no-tty1\nno-tty2\npipe\npipe\nFalse False\n")


@shell_test
def test_a_pipeline_ended_by_a_signal_prints_only_its_own_output(shell: ContextShell) -> None:
    # with no terminal, bash would add a line of its own (tcsetattr) after each of these
    assert out(shell, "yes | head -n 3", timeout=20) == (141, "y\ny\ny\n")  # pipefail: 141
    script = "bash -c 'kill -TERM $$'; echo \"rc=$?\"; yes | head -c 3 | wc -c; echo done"
    assert out(shell, script, timeout=20) == (0, "rc=143\n3\ndone\n")


@shell_test
def test_no_controlling_terminal_dev_tty_fails_at_once(shell: ContextShell) -> None:
    began = time.monotonic()
    status, text = out(
        shell, 'read -r line < /dev/tty; echo "rc=$?"; tty; ps -o tty= -p $$', timeout=10
    )
    assert time.monotonic() - began < 2
    assert "/dev/tty: No such device or address\n" in text
    assert text.endswith("rc=1\nnot a tty\n?\n")
    assert status == 0


@shell_test
def test_variables_survive_a_failed_command(shell: ContextShell) -> None:
    assert shell.run("before=1; false").exit_status == 1
    assert shell.run("set -e; during=2; false; after=3").exit_status == 1
    assert out(shell, 'echo "$before ${during-} ${after-none}"')[1] == "1 2 none\n"


@shell_test
def test_protocol_variables_cannot_break_the_shell(shell: ContextShell) -> None:
    shell.run("PROMPT_COMMAND='echo hijacked'; PS1='X> '; PS2='Y'; IFS=:; HISTFILE=/tmp/h; x=1")
    status, text = out(shell, "echo $x ok; y='a b'; for w in $y; do echo $w; done")
    assert status == 0
    assert text == "1 ok\na\nb\n"


@shell_test
def test_terminal_settings_changed_by_a_command_are_undone(shell: ContextShell) -> None:
    shell.run("stty echo icrnl 2>/dev/null")
    assert out(shell, "echo hi")[1] == "hi\n"


# ------------------------------------------------------- transport and output


@shell_test
def test_long_line_round_trip(shell: ContextShell) -> None:
    line = "".join(chr(33 + (i * 7) % 94) for i in range(100_000))
    status, text = out(shell, f"printf '%s\\n' {shlex.quote(line)}")
    assert status == 0
    assert text == line + "\n"


@shell_test
def test_any_characters_reach_bash_unchanged(shell: ContextShell) -> None:
    payload = "".join(chr(c) for c in range(1, 128)) + "é€😀 \\ ' \" $HOME `x` !! \r\n"
    status, text = out(shell, f"x={shlex.quote(payload)}; printf '%s' \"$x\" | od -An -v -tx1")
    assert status == 0
    assert bytes.fromhex(text) == payload.encode()


@shell_test
def test_heredoc_and_missing_final_newline(shell: ContextShell) -> None:
    script = "cat <<'EOF'\n$HOME `not run` \\ \"q\"\nEOF\nprintf abc"
    assert out(shell, script) == (0, '$HOME `not run` \\ "q"\nabc')


@shell_test
def test_output_is_streamed_in_chunks(fast_shell: ContextShell) -> None:
    collected = Collected()
    began = time.monotonic()
    result = fast_shell.run(
        "for i in 1 2 3; do printf 'step %s\\r' $i; sleep 0.3; done; echo done",
        on_output=collected,
    )
    assert result.exit_status == 0
    assert collected.text == "step 1\rstep 2\rstep 3\rdone\n"
    assert len(collected.chunks) >= 3
    assert collected.times[0] - began < 0.5  # the first step arrives before the end


@shell_test
def test_result_tail_and_duration(fast_shell: ContextShell) -> None:
    result = fast_shell.run("seq 1 100; sleep 0.2")
    assert isinstance(result, CommandResult)
    assert result.tail.splitlines() == [str(i) for i in range(81, 101)]
    assert result.duration >= 0.2


@shell_test
@pytest.mark.parametrize(
    "command",
    ["yes | head -c 50000000", "head -c 37500000 /dev/urandom | base64 -w 76"],
    ids=["yes", "base64"],
)
def test_50mb_of_output_with_bounded_memory(fast_shell: ContextShell, command: str) -> None:
    received = 0

    def count(text: str) -> None:
        nonlocal received
        received += len(text)

    tracemalloc.start()
    try:
        began = time.monotonic()
        result = fast_shell.run(command, on_output=count, timeout=60)
        elapsed = time.monotonic() - began
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.exit_status in (0, 141)  # yes ends by SIGPIPE, pipefail reports it
    assert received >= 50_000_000
    assert peak < 20_000_000, f"peak Python memory {peak / 1e6:.1f} MB"
    assert elapsed < 30, f"50 MB took {elapsed:.1f} s"


# ------------------------------------------------- interrupts, timeouts, death


@shell_test
def test_interrupt_from_another_thread(shell: ContextShell) -> None:
    shell.run("kept=1")
    threading.Timer(0.3, shell.interrupt).start()
    began = time.monotonic()
    result = shell.run("sleep 100")
    assert time.monotonic() - began < 3
    assert result.exit_status == 130
    assert out(shell, "echo $kept")[1] == "1\n"


@shell_test
def test_keyboard_interrupt_stops_the_command_and_is_reraised(shell: ContextShell) -> None:
    shell.run("kept=1")
    threading.Timer(0.3, _thread.interrupt_main).start()
    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        shell.run("sleep 100")
    assert time.monotonic() - began < 3
    assert shell.alive
    assert out(shell, "echo $kept")[1] == "1\n"


@shell_test
def test_timeout_interrupts_and_raises(shell: ContextShell) -> None:
    shell.run("kept=1")
    began = time.monotonic()
    with pytest.raises(CommandTimeoutError, match=r"local_context.*0\.4 s") as info:
        shell.run("echo started; sleep 100", timeout=0.4)
    assert isinstance(info.value, ShellError)
    assert "started" in str(info.value)
    assert time.monotonic() - began < 3
    assert out(shell, "echo $kept")[1] == "1\n"


@shell_test
def test_timeout_escalates_when_sigint_is_ignored(shell: ContextShell) -> None:
    script = "trap '' INT; python3 -c 'import signal, time; signal.signal(2, 1); time.sleep(100)'"
    began = time.monotonic()
    with pytest.raises(CommandTimeoutError):
        shell.run(script, timeout=0.3)
    assert time.monotonic() - began < 4  # ^C, then SIGTERM after the 0.5 s grace
    assert shell.alive
    assert out(shell, "echo ok")[1] == "ok\n"


@shell_test
@pytest.mark.parametrize("kill", ["kill -9 $$", "kill -HUP $$", "kill -9 $PPID"])
def test_dead_context_raises_then_restarts_with_variables(shell: ContextShell, kill: str) -> None:
    shell.run("kept=1; export also=2")
    with pytest.raises(ContextClosedError, match=r"'local' was closed.*\n.*last words") as info:
        shell.run(f"echo last words; {kill}; sleep 5")
    assert isinstance(info.value, ContextError)
    assert not shell.alive
    assert out(shell, "echo $kept $also")[1] == "1 2\n"
    assert shell.alive


@pytest.mark.parametrize(
    "command",
    [
        "x=1",
        "echo ${x:=default}",
        "read -r line < /etc/hostname",
        "mapfile -t lines < /etc/hostname",
        "readarray lines < /etc/hostname",
        "printf -v x %s 1",
        "let x++",
        "(( x += 1 ))",
        "echo $(( x++ ))",
        "echo ${a[i--]}",
        "echo $[x++]",
        "for f in a b; do :; done",
        "select f in a; do break; done",
        "getopts ab opt",
        "export -n PATH",
        "declare -i counter",  # attributes are variables' state too
        "typeset -x EDITOR",
        "readonly EDITOR",
        "wait -n -p finished",  # bash 5.1: the pid of the job that ended
    ],
)
def test_may_assign_true_for_whatever_can_set_a_variable(command: str) -> None:
    assert may_assign(command)


@pytest.mark.parametrize(
    "command", ["true", "apt-get install -y --no-install-recommends curl", "rm -rf -- dir"]
)
def test_may_assign_false_for_commands_that_only_run_programs(command: str) -> None:
    assert not may_assign(command)


@shell_test
@pytest.mark.parametrize("kill", ["kill -9 $$", "kill -HUP $$"])
def test_variables_survive_a_death_after_commands_that_assign_nothing(
    shell: ContextShell, kill: str
) -> None:
    shell.run("kept=1")
    for _ in range(3):
        shell.run("true")  # no save of the variables after these: nothing changed
    shell.run("read -r line <<< 'read'")
    shell.run("echo no assignment here")
    with pytest.raises(ContextClosedError):
        shell.run(f"{kill}; sleep 5")
    assert out(shell, "echo $kept $line")[1] == "1 read\n"


@shell_test
def test_variables_dump_follows_every_change(shell: ContextShell) -> None:
    shell.run("first=1")
    dump = shell.variables()
    assert "first=" in dump
    shell.run("true")
    assert shell.variables() == dump  # nothing could change: the same dump
    shell.run("read -r second <<< two")
    assert "second=" in shell.variables()
    shell.run("cd /tmp && third=3")  # a subshell: its variables come back
    assert "third=" in shell.variables()
    shell.reset_variables()
    assert "first=" not in shell.variables()
    shell.restore_variables(dump)
    restored = shell.variables()
    assert "first=" in restored
    assert "second=" not in restored
    shell.restart(keep_variables=False)
    assert "first=" not in shell.variables()


@shell_test
def test_commands_cannot_reach_the_python_process(shell: ContextShell) -> None:
    ppid = int(out(shell, "echo $PPID")[1])
    assert ppid != os.getpid()
    assert Path(f"/proc/{ppid}/comm").read_text().strip() == "bash"


@shell_test
def test_death_while_idle_is_reported_once(fast_shell: ContextShell) -> None:
    fast_shell.run("kept=1")
    os.kill(int(out(fast_shell, "echo $$")[1]), signal.SIGKILL)
    limit = time.monotonic() + 30
    while fast_shell.alive and time.monotonic() < limit:
        time.sleep(0.01)
    with pytest.raises(ContextClosedError, match="killed by signal 9"):
        fast_shell.run("echo never")
    assert out(fast_shell, "echo $kept")[1] == "1\n"


@shell_test
def test_keyboard_interrupt_with_a_custom_sigint_handler(fast_shell: ContextShell) -> None:
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        threading.Timer(0.3, _thread.interrupt_main).start()
        began = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            fast_shell.run("kept=1; sleep 100")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - began < 3
    began = time.monotonic()
    assert out(fast_shell, "echo $kept")[1] == "1\n"
    assert time.monotonic() - began < 1


@shell_test
@pytest.mark.parametrize(
    ("cmd", "message"),
    [
        ("/nonexistent/bash", "No such file"),
        ("/usr/sbin/chroot /nonexistent-root /bin/bash", "nonexistent-root"),
        ("true", "exited with status 0"),
    ],
)
def test_start_failure_is_reported_quickly(start_dir: Path, cmd: str, message: str) -> None:
    sh = ContextShell(make_spec(start_dir, cmd=cmd), start_timeout=10)
    began = time.monotonic()
    with pytest.raises(ContextError, match=message):
        sh.start()
    assert time.monotonic() - began < 5
    assert not sh.alive


@shell_test
def test_start_failure_output_is_kept_when_the_shell_dies_before_the_bootstrap(
    start_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    initialize = ContextShell._initialize

    def late(self: ContextShell, **kwargs: Any) -> None:
        # wait until the context command has failed and exited
        limit = time.monotonic() + 30
        while self.alive and time.monotonic() < limit:
            time.sleep(0.01)
        assert not self.alive
        initialize(self, **kwargs)

    monkeypatch.setattr(ContextShell, "_initialize", late)
    sh = ContextShell(make_spec(start_dir, cmd="/nonexistent/bash"), start_timeout=10)
    with pytest.raises(ContextError, match="No such file"):
        sh.start()
    assert not sh.alive


@shell_test
def test_start_deadline(start_dir: Path) -> None:
    sh = ContextShell(make_spec(start_dir, cmd="sleep 30; bash"), start_timeout=0.5)
    began = time.monotonic()
    with pytest.raises(ContextError, match="no answer"):
        sh.start()
    assert time.monotonic() - began < 3
    assert not sh.alive


def _session_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if fields[3] == str(pid) and fields[0] not in ("Z", "X"):
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] not in "ZX"
    except OSError:
        return False


@shell_test
def test_close_leaves_no_process(start_dir: Path) -> None:
    # close() returns once the context's supervisor has reaped every process it started
    # (the trapped job gets SIGKILL after a second): no waiting needed here.
    sh = ContextShell(make_spec(start_dir))
    _, text = out(
        sh,
        "sleep 1000 & echo $!; nohup sleep 1001 >/dev/null 2>&1 & echo $!; "
        "(trap '' HUP TERM; sleep 1002) & echo $!",
    )
    pids = [int(p) for p in text.split()]
    with sh:
        shell_pid = int(out(sh, "echo $$")[1])
        assert all(_alive(p) for p in pids)
    assert not sh.alive
    assert not _alive(shell_pid)
    assert not any(_alive(p) for p in pids)
    assert _session_of(shell_pid) == []
    sh.close()  # idempotent


@shell_test
def test_killing_the_build_process_ends_its_contexts(start_dir: Path) -> None:
    # What a terminal's hang-up did for a PTY: nothing the context runs outlives us.
    program = (
        "import sys\n"
        "from kameleon_nb.core.contexts import ContextName, ContextSpec\n"
        "from kameleon_nb.engine.shell import ContextShell\n"
        "sh = ContextShell(ContextSpec(name=ContextName.LOCAL, cmd='bash', start_dir=sys.argv[1]))\n"
        "sh.run('echo $$ $PPID; sleep 1000 & echo $!; sleep 1001', on_output=lambda t: print(t, flush=True))\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", program, str(start_dir)], stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            assert child.stdout is not None
            pids = [
                int(p) for p in child.stdout.readline().split() + child.stdout.readline().split()
            ]
            assert len(pids) == 3
            assert all(_alive(p) for p in pids)
        finally:
            child.kill()
    limit = time.monotonic() + 30
    while time.monotonic() < limit and any(_alive(p) for p in pids):
        time.sleep(0.01)
    assert not any(_alive(p) for p in pids)


# ------------------------------------------------------------- environment


@shell_test
def test_context_environment(start_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # As upstream's: Kameleon's own variables, the rest (TERM included) inherited.
    for name in ("USER", "LC_ALL", "PAGER", "PS1"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", "/home/builder")
    monkeypatch.setenv("TERM", "xterm-from-caller")
    with ContextShell(make_spec(start_dir)) as sh:
        _, text = out(
            sh,
            'echo "$USER|$HOME|$LC_ALL|$DEBIAN_FRONTEND|$KAMELEON_CONTEXT_NAME|$TERM"; '
            'echo "[${PAGER-unset}]"; echo "$PATH"; compgen -e | grep -cE "^(__knb|PS[0-4]$)"',
        )
    lines = text.splitlines()
    assert lines[0] == "root|/home/builder|POSIX|noninteractive|local_context|xterm-from-caller"
    assert lines[1] == "[unset]"
    assert lines[2].startswith("/usr/bin:/usr/sbin:/bin:/sbin:")
    assert lines[3] == "0"  # nothing of the protocol is exported


@shell_test
def test_fail_and_download_are_available_to_every_command(
    shell: ContextShell, tmp_path: Path
) -> None:
    source = tmp_path / "source.txt"
    source.write_text("payload\n")
    status, text = out(shell, "fail boom || echo rc=$?; bash -c 'type -t fail __download'")
    assert (status, text) == (0, "boom\nrc=1\nfunction\nfunction\n")
    target = tmp_path / "target.txt"
    assert shell.run(f"__download file://{source} {target}").exit_status == 0
    assert target.read_text() == "payload\n"


@shell_test
def test_workdir_is_created_and_kameleon_workdir_is_the_start_dir(start_dir: Path) -> None:
    workdir = start_dir / "deep" / "work"
    with ContextShell(make_spec(start_dir, workdir=str(workdir))) as sh:
        sh.start()
        assert workdir.is_dir()
        assert (workdir / "kameleon_scripts" / "local" / "bash_env").exists()
        sh.run("cd /")
        assert out(sh, "/bin/pwd; echo $KAMELEON_WORKDIR")[1] == f"{workdir}\n{start_dir}\n"


@shell_test
def test_scripts_dir_without_workdir(start_dir: Path) -> None:
    with ContextShell(make_spec(start_dir), scripts_dir_name="scripts") as sh:
        sh.run("x=1")
    assert 'x="1"' in (start_dir / "scripts" / "local" / "bash_env").read_text()


@shell_test
def test_exec_prefix(start_dir: Path) -> None:
    with ContextShell(make_spec(start_dir, exec_prefix="echo prefixed")) as sh:
        assert out(sh, "$HOME 'a  b'") == (0, f"prefixed {os.environ['HOME']} a  b\n")


@shell_test
def test_env_script(start_dir: Path) -> None:
    env = "FROM_ENV='set by env'\nhelper() { cd /; echo helper; }\n"
    with ContextShell(make_spec(start_dir, env_script=env)) as sh:
        _, text = out(sh, "echo $FROM_ENV; bash -c 'echo child: $FROM_ENV'; helper")
        assert text == "set by env\nchild: set by env\nhelper\n"
        assert out(sh, "/bin/pwd")[1] == f"{start_dir}\n"


@shell_test
def test_launcher(start_dir: Path) -> None:
    spec = make_spec(start_dir, launcher=("env", "KNB_LAUNCHED=through-launcher"))
    with ContextShell(spec) as sh:
        assert out(sh, "echo $KNB_LAUNCHED")[1] == "through-launcher\n"


@shell_test
@needs_root[0]
@needs_root[1]
def test_launcher_entering_a_mount_namespace_keeps_the_start_dir(start_dir: Path) -> None:
    holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sleep", "60"])
    try:
        ns = f"/proc/{holder.pid}/ns/mnt"
        limit = time.monotonic() + 30
        while os.readlink(ns) == os.readlink("/proc/self/ns/mnt") and time.monotonic() < limit:
            time.sleep(0.01)
        spec = make_spec(start_dir, launcher=("nsenter", f"--mount={ns}", "--"))
        with ContextShell(spec) as sh:
            assert out(sh, "echo $KAMELEON_WORKDIR; /bin/pwd")[1] == f"{start_dir}\n{start_dir}\n"
            argv = sh.pipe_argv("/bin/pwd; cat")
        piped = subprocess.run(argv, input=b"through\n", capture_output=True, check=False)
        assert piped.stdout == f"{start_dir}\nthrough\n".encode()
    finally:
        holder.kill()
        holder.wait()


@shell_test
def test_missing_launcher_is_a_context_error(start_dir: Path) -> None:
    sh = ContextShell(make_spec(start_dir, launcher=("/nonexistent/launcher",)))
    with pytest.raises(ContextError, match="nonexistent/launcher"):
        sh.start()
    assert not sh.alive


@shell_test
def test_proxy_exports(start_dir: Path) -> None:
    with ContextShell(make_spec(start_dir, proxy="cache.example:3128")) as sh:
        _, text = out(
            sh,
            "for v in http_proxy https_proxy ftp_proxy rsync_proxy all_proxy HTTP_PROXY "
            "HTTPS_PROXY FTP_PROXY RSYNC_PROXY ALL_PROXY; do echo ${!v}; done; "
            "echo $no_proxy; echo $NO_PROXY",
        )
    lines = text.splitlines()
    assert lines[:10] == ["http://cache.example:3128"] * 10
    assert lines[10] == lines[11] == "localhost,cache.example,127.0.0.1,localaddress,.localdomain"


# ---------------------------------------------------------------- variables API


@shell_test
def test_variables_dump_restore_and_reset(shell: ContextShell) -> None:
    shell.run("a=1; b='x y'; arr=(1 2)")
    dump = shell.variables()
    assert 'declare -x a="1"' in dump
    assert re.search(r"^declare -a arr=", dump, re.MULTILINE)
    assert "BASH_VERSINFO" not in dump
    assert "__knb" not in dump
    assert "PROMPT_COMMAND" not in dump

    shell.reset_variables()
    assert out(shell, 'echo "${a-unset} ${KAMELEON_CONTEXT_NAME}"')[1] == "unset local_context\n"

    shell.run("late=1")
    shell.restore_variables(dump)
    assert out(shell, 'echo "$a|$b|${arr[1]}|${late-gone}"')[1] == "1|x y|2|gone\n"


@shell_test
def test_restoring_an_empty_dump_gives_a_fresh_context(shell: ContextShell) -> None:
    shell.run("mine=1; export PATH=/opt/custom:$PATH")
    shell.restore_variables("")
    status, text = out(shell, 'echo "${mine-none} $KAMELEON_CONTEXT_NAME"; echo $PATH; ls -d /')
    assert status == 0
    lines = text.splitlines()
    assert lines[0] == "none local_context"
    assert lines[1].startswith("/usr/bin:/usr/sbin:/bin:/sbin:")
    assert "/opt/custom" not in lines[1]


@shell_test
def test_restore_before_start_and_restart(start_dir: Path) -> None:
    with ContextShell(make_spec(start_dir)) as first:
        first.run("saved=yes")
        dump = first.variables()
    with ContextShell(make_spec(start_dir)) as second:
        second.restore_variables(dump)  # not started yet: applied at start
        assert out(second, "echo ${saved-}")[1] == "yes\n"
        second.restart(keep_variables=True)
        assert out(second, "echo ${saved-}")[1] == "yes\n"
        second.restart(keep_variables=False)
        assert out(second, "echo ${saved-none}")[1] == "none\n"


@shell_test
def test_a_new_shell_starts_with_fresh_variables(start_dir: Path) -> None:
    with ContextShell(make_spec(start_dir)) as first:
        first.run("old=1")
    with ContextShell(make_spec(start_dir)) as second:
        assert out(second, "echo ${old-fresh}")[1] == "fresh\n"


@shell_test
def test_callback_error_leaves_the_shell_usable(fast_shell: ContextShell) -> None:
    def explode(text: str) -> None:
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError):
        fast_shell.run("echo x; sleep 100", on_output=explode)
    began = time.monotonic()
    assert out(fast_shell, "echo next")[1] == "next\n"
    assert time.monotonic() - began < 3


# ------------------------------------------------------------------ chroot


def _copy_with_libs(binary: str, root: Path) -> None:
    listing = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False).stdout
    paths = [binary, *re.findall(r"(/\S+\.so[.\d]*)", listing)]
    for path in paths:
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(path), target)


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("needs a static busybox (apt-get install busybox-static)")
    linkage = subprocess.run(["ldd", busybox], capture_output=True, text=True, check=False)
    if "not a dynamic executable" not in linkage.stdout + linkage.stderr:
        pytest.skip("needs a static busybox (apt-get install busybox-static)")
    root = tmp_path_factory.mktemp("rootfs")
    for name in ("bin", "sbin", "usr/bin", "usr/sbin", "root", "tmp"):
        (root / name).mkdir(parents=True, exist_ok=True)
    _copy_with_libs("/bin/bash", root)
    shutil.copy2(busybox, root / "bin" / "busybox")
    subprocess.run(["/usr/sbin/chroot", str(root), "/bin/busybox", "--install", "-s"], check=True)
    (root / "IN_CHROOT").write_text("inside\n")
    return root


def _chroot_spec(rootfs: Path, start_dir: Path) -> ContextSpec:
    return ContextSpec(
        name=ContextName.IN,
        cmd=f"/usr/sbin/chroot {shlex.quote(str(rootfs))} /bin/bash",
        start_dir=str(start_dir),
        workdir="/root/work",
    )


@shell_test
@needs_root[0]
@needs_root[1]
def test_chroot_context(rootfs: Path, start_dir: Path) -> None:
    with ContextShell(_chroot_spec(rootfs, start_dir), interrupt_grace=0.5) as sh:
        _, text = out(sh, "cat /IN_CHROOT; /bin/pwd; echo $KAMELEON_WORKDIR $KAMELEON_CONTEXT_NAME")
        assert text == "inside\n/root/work\n/ in_context\n"
        sh.run("x=1; cd /tmp")
        assert out(sh, "echo $x $PWD; pwd -P")[1] == "1 /tmp\n/root/work\n"
        assert (rootfs / "root" / "work" / "kameleon_scripts" / "in" / "bash_env").exists()
        with pytest.raises(CommandTimeoutError):
            sh.run("sleep 100", timeout=0.3)
        assert out(sh, "echo $x")[1] == "1\n"

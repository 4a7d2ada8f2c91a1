"""``kameleon build`` with real shells: failures, timeouts, dead contexts, the menu."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pexpect
import pytest

pytestmark = pytest.mark.shell


def write(tmp_path: Path, body: str) -> None:
    (tmp_path / "r.yaml").write_text(body)


def test_script_mode_failure_names_command_context_status_and_output(
    tmp_path, monkeypatch, kameleon
):
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path,
        "setup:\n  - s:\n    - boom:\n"
        "      - exec_out: echo first line; echo about to fail; false\n",
    )
    code, out = kameleon("build", "--script", "r.yaml")
    assert code == 2
    assert "[out] about to fail" in out
    assert "fatal error...\nWaiting for cleanup before exiting...\n" in out
    error = out[out.index("Error: ") :]
    assert "> exec_out: echo first line; echo about to fail; false" in error
    assert "in the out context, exit status 1" in error
    assert "about to fail" in error


def test_timeout_interrupts_a_command(tmp_path, monkeypatch, kameleon):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "setup:\n  - s:\n    - slow:\n      - exec_local: sleep 30\n")
    began = time.monotonic()
    code, out = kameleon("build", "--script", "--timeout", "1", "r.yaml")
    assert code == 2
    assert time.monotonic() - began < 15
    assert "timeout" in out.lower()


def test_a_dead_context_is_reported_and_restarted(tmp_path, monkeypatch):
    from kameleon_nb.core.plan import BuildOptions
    from kameleon_nb.engine.builder import Builder
    from kameleon_nb.engine.commands import Choice
    from kameleon_nb.engine.events import CommandOutput, ContextStarted
    from kameleon_nb.engine.recipes import open_recipe

    monkeypatch.chdir(tmp_path)
    write(
        tmp_path,
        "setup:\n  - s:\n    - die:\n"
        "      - exec_local: export KEPT=yes; echo dying\n"
        "      - exec_local: kill -9 $$\n"
        "    - after:\n"
        '      - exec_local: echo "alive again KEPT=$KEPT"\n',
    )
    recipe = open_recipe("r.yaml", cwd=str(tmp_path))
    failures = []
    events = []

    def on_failure(failure, can_retry):
        failures.append(failure)
        return Choice.CONTINUE

    with Builder(recipe, on_event=events.append, on_failure=on_failure) as builder:
        builder.build(BuildOptions())
    assert len(failures) == 1
    assert failures[0].context == "local"
    assert "closed" in failures[0].tail
    starts = [e for e in events if isinstance(e, ContextStarted)]
    assert len(starts) == 2  # started, died, restarted
    output = "".join(e.text for e in events if isinstance(e, CommandOutput))
    assert "alive again KEPT=yes" in output  # saved variables survive the restart


def _spawn(tmp_path: Path) -> pexpect.spawn:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "kameleon_nb", "build", "r.yaml"],
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=30,
    )
    child.delaybeforesend = None
    return child


def test_interactive_menu_retry_then_succeed(tmp_path):
    write(
        tmp_path,
        "setup:\n  - s:\n    - needs_flag:\n"
        "      - exec_local: test -f $${kameleon_cwd}/flag\n"
        "      - exec_local: echo got the flag\n",
    )
    child = _spawn(tmp_path)
    child.expect_exact("Press [r] to retry")
    child.expect_exact("answer ? [r/c/a/l/o/i]: ")
    (tmp_path / "build" / "r" / "flag").touch()
    child.sendline("r")
    child.expect_exact("User choice: [r] retry")
    child.expect_exact("[local] got the flag")
    child.expect_exact("Successfully built 'r.yaml'")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_interactive_menu_continue_and_abort(tmp_path):
    write(
        tmp_path,
        "setup:\n  - s:\n    - one:\n      - exec_local: 'false'\n"
        "      - exec_local: echo continued\n"
        "    - two:\n      - exec_local: 'false'\n",
    )
    child = _spawn(tmp_path)
    child.expect_exact("answer ? [r/c/a/l/o/i]: ")
    child.sendline("x")  # not a choice: the menu again
    child.expect_exact("answer ? [r/c/a/l/o/i]: ")
    child.sendline("c")
    child.expect_exact("[local] continued")
    child.expect_exact("answer ? [r/c/a/l/o/i]: ")
    child.sendline("a")
    child.expect_exact("Error: Execution aborted...")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 8


def test_reload_context_unknown_command_and_breakpoint(tmp_path, monkeypatch, kameleon):
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path,
        "setup:\n  - s:\n    - m:\n"
        "      - exec_out: export GONE=1\n"
        "      - reload_context: out\n"
        '      - exec_out: echo "GONE=[$GONE]"\n'
        "      - no_such_command: x\n"
        "      - reload_context: nowhere\n",
    )
    code, out = kameleon("build", "--script", "r.yaml")
    assert "[out] GONE=[]" in out  # reload_context resets the variables
    assert out.count("[out] The out_context has been initialized") == 2
    assert "Unknown command: no_such_command" in out
    assert code == 2
    assert 'Invalid context name arguments. Expected: ["in", "out", "local"]' in out

    write(tmp_path, "setup:\n  - s:\n    - m:\n      - breakpoint: stop here\n")
    code, out = kameleon("build", "--script", "r.yaml")
    assert "stop here" in out
    assert code == 8  # --script answers the breakpoint with abort
    assert "Error: Execution aborted..." in out


def test_the_uuid_is_kept_across_builds_and_dry_runs(tmp_path, monkeypatch, kameleon):
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path,
        "setup:\n  - s:\n    - m:\n"
        "      - exec_local: echo uuid=$${kameleon_uuid} short=$${kameleon_short_uuid}\n",
    )
    _, first = kameleon("build", "-d", "-l", "r.yaml")
    _, second = kameleon("build", "-d", "-l", "r.yaml")
    assert first != second  # no build dir yet: a new uuid each time, so a new id
    code, out = kameleon("build", "--script", "r.yaml")
    assert code == 0
    uuid = out.split("uuid=")[1].split()[0]
    assert uuid.endswith(out.split("short=")[1].split()[0])
    _, again = kameleon("build", "--script", "r.yaml")
    assert f"uuid={uuid}" in again
    _, listing = kameleon("build", "-d", "-l", "r.yaml")
    _, listing2 = kameleon("build", "-d", "-l", "r.yaml")
    assert listing == listing2  # the dry run sees the stored uuid


def test_interactive_menu_opens_a_shell_in_a_context(tmp_path):
    write(tmp_path, "setup:\n  - s:\n    - one:\n      - exec_local: 'false'\n")
    child = _spawn(tmp_path)
    child.expect_exact("answer ? [r/c/a/l/o/i]: ")
    child.sendline("o")
    child.expect_exact("User choice: [o] launch out_context")
    child.expect_exact("Starting interactive shell")
    child.sendline("echo inside-$((6 * 7)); exit")
    child.expect_exact("inside-42")
    child.expect_exact("Getting back to Kameleon...")
    child.expect_exact("answer ? [r/c/a/l/o/i]: ")
    child.sendline("c")
    child.expect_exact("Successfully built 'r.yaml'")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_the_menu_shell_gets_ctrl_c_and_takes_its_jobs_with_it(tmp_path):
    # Ctrl-C is the shell's (not kameleon's, which would kill it), and what the shell
    # started, daemons included, ends when it exits.
    from tests.engine.test_processes import assert_none_left, marked, new_marker

    marker = new_marker()
    write(tmp_path, "setup:\n  - s:\n    - one:\n      - exec_local: 'false'\n")
    child = _spawn(tmp_path)
    child.expect_exact("answer ? [r/c/a/l/o/i]: ")
    child.sendline("l")
    child.expect_exact("Starting interactive shell")
    child.sendline(f"setsid -f sleep {marker} </dev/null >/dev/null 2>&1; sleep {marker} &")
    foreground = new_marker()
    child.sendline(f"sleep {foreground}")

    def in_foreground() -> bool:
        # its own process group is the terminal's (a Ctrl-C sooner could reach it
        # between fork and exec, where bash's handler catches it)
        for pid in marked(foreground):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            if fields[2] == fields[5]:
                return True
        return False

    deadline = time.monotonic() + 30
    while not in_foreground():
        assert time.monotonic() < deadline, "the foreground sleep did not start"
        time.sleep(0.02)
    child.sendintr()
    # Ctrl-C ends the sleep (the terminal dropped what was typed before it, so the next
    # line is sent once the sleep is gone)
    deadline = time.monotonic() + 30
    while marked(foreground):
        assert time.monotonic() < deadline, "Ctrl-C did not end the foreground sleep"
        time.sleep(0.02)
    child.sendline("echo alive-$((6 * 7))")
    child.expect_exact("alive-42")
    assert len(marked(marker)) == 2
    child.sendline("exit")
    child.expect_exact("Getting back to Kameleon...")
    assert_none_left(marker)
    child.expect_exact("answer ? [r/c/a/l/o/i]: ")
    child.sendline("a")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 8  # aborted

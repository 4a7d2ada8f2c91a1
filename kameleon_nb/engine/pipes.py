"""``pipe``: stream one context's stdout into another context's command.

Both ends run as one-shot processes of their context (its command, environment,
variables and workdir), joined by an OS pipe: bytes flow from one to the other
without passing through Python, so any size streams with constant memory.
Neither end changes the variables of its context. Each end runs under a supervisor
(:mod:`kameleon_nb.engine.processes`): what it starts ends with it, or with the build.
"""

from __future__ import annotations

import collections
import subprocess
import threading
import time
from collections.abc import Callable
from typing import IO

from kameleon_nb.core.contexts import ContextName
from kameleon_nb.engine import processes
from kameleon_nb.engine.contexts import Contexts
from kameleon_nb.errors import CommandTimeoutError

__all__ = ["run_pipe"]

_TAIL_LINES = 20


def _relay(
    stream: IO[bytes],
    context: ContextName,
    on_output: Callable[[ContextName, str], None],
    tail: collections.deque[str],
) -> None:
    for raw in iter(lambda: stream.readline(65536), b""):
        text = raw.decode("utf-8", errors="replace")
        tail.append(text)
        on_output(context, text)
    stream.close()


def run_pipe(
    contexts: Contexts,
    source: tuple[ContextName, str],
    target: tuple[ContextName, str],
    *,
    on_output: Callable[[ContextName, str], None],
    timeout: float | None = None,
    record_to: str | None = None,
    replay_from: str | None = None,
) -> tuple[int, str]:
    """Run ``source``'s command with its stdout piped into ``target``'s command.

    Args:
        contexts: the build's contexts.
        source: the context and command whose stdout is sent.
        target: the context and command that reads it on stdin.
        on_output: receives stderr of the source and output of the target.
        timeout: seconds before both ends are killed.
        record_to: also copy what the source sends into this file (``tee``; the
            persistent cache records pipes that read from the host).
        replay_from: send this file's bytes instead of running the source (a build
            from a cache archive).

    Returns:
        The exit status (the first non-zero of source and target, as with
        ``pipefail``) and the last lines of output.

    Raises:
        CommandTimeoutError: the pipe ran longer than ``timeout``.
    """
    if replay_from is not None:
        source_argv: list[str] = ["cat", "--", replay_from]
    else:
        source_argv = list(contexts.shell(source[0]).pipe_argv(source[1]))
    target_argv = contexts.shell(target[0]).pipe_argv(target[1])
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    producer = processes.spawn(
        source_argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=contexts.spec(source[0]).start_dir,
    )
    source_out, source_err = producer.process.stdout, producer.process.stderr
    assert source_out is not None
    assert source_err is not None
    ends = [producer]
    if record_to is not None:
        try:
            recorder = processes.spawn(
                ["tee", "--", record_to], stdin=source_out, stdout=subprocess.PIPE
            )
        except BaseException:
            producer.end(graceful=False)
            raise
        finally:
            source_out.close()
        ends.append(recorder)
        source_out = recorder.process.stdout
        assert source_out is not None
    try:
        consumer = processes.spawn(
            target_argv,
            stdin=source_out,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=contexts.spec(target[0]).start_dir,
        )
    except BaseException:
        for end in ends:
            end.end(graceful=False)
        raise
    finally:
        source_out.close()  # the consumer holds the read end now
    ends.append(consumer)
    assert consumer.process.stdout is not None
    relays = [
        threading.Thread(target=_relay, args=(source_err, source[0], on_output, tail), daemon=True),
        threading.Thread(
            target=_relay, args=(consumer.process.stdout, target[0], on_output, tail), daemon=True
        ),
    ]
    for relay in relays:
        relay.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        for end in reversed(ends):
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            end.wait(remaining)
    except subprocess.TimeoutExpired as err:
        raise CommandTimeoutError(
            f"pipe from {source[0].value} to {target[0].value} ran longer than {timeout} s"
        ) from err
    finally:
        for end in ends:
            end.end(graceful=False)
        for relay in relays:
            relay.join(timeout=5)
    status = next((s for s in (end.poll() for end in ends) if s), 0)
    return status, "".join(tail)

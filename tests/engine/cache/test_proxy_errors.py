"""The cache proxy's failures: each is one line that says what to do."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from kameleon_nb.engine.cache.proxy import (
    PYTHON_VARIABLE,
    CacheProxy,
    find_proxy_python,
)
from kameleon_nb.engine.cache.store import CacheMode
from kameleon_nb.errors import CacheError

from .conftest import LOOPBACK


def test_a_python_without_mitmproxy_is_named_with_the_fix(tmp_path: Path) -> None:
    proxy = CacheProxy(tmp_path / "store", CacheMode.RECORD, python=sys.executable)
    try:
        import mitmproxy  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("this interpreter has mitmproxy")
    with pytest.raises(
        CacheError, match=r"needs mitmproxy.*pip install 'kameleon_nb\[cache\]'"
    ) as info:
        proxy.start()
    assert "\n" not in str(info.value)
    assert not proxy.running()


def test_an_unknown_proxy_python_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PYTHON_VARIABLE, "/nonexistent/python3")
    with pytest.raises(
        CacheError, match=rf"{PYTHON_VARIABLE}=/nonexistent/python3: no such Python"
    ):
        find_proxy_python()


@pytest.mark.slow
def test_a_port_in_use_fails_the_start_with_the_reason(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        proxy = CacheProxy(tmp_path / "store", CacheMode.REPLAY, port=port)
        with pytest.raises(CacheError, match=r"did not start: .*(in use|failed to listen)") as info:
            proxy.start()
    assert "\n" not in str(info.value)
    assert str(proxy.log_path) in str(info.value)
    assert not proxy.running()


def test_stop_without_start_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CacheError, match="not started"):
        CacheProxy(tmp_path, CacheMode.REPLAY).stop()


def test_address_before_start_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CacheError, match="not running"):
        _ = CacheProxy(tmp_path, CacheMode.REPLAY).address

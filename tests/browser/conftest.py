"""Fixtures for the real-browser tests: one JupyterLab server and one Chromium per session.

``lab`` is the one a test asks for: a fresh browser context on the shared server, whose
kernels are shut down when the test ends. The server's root dir is pytest's base temp dir,
so every test's ``tmp_path`` is reachable from the page (``lab.copy`` puts files there).

``lab.py`` is imported lazily here: importing it skips the importing module when Playwright
or Chromium is missing, and a conftest must import on any machine.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# The notebooks under data/ are inputs of these tests, not tests: nbval must not collect them.
collect_ignore_glob = ["data/*"]

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from .lab import Lab, LabServer


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """A JupyterLab server on 127.0.0.1, serving pytest's base temp dir.

    Stopped with SIGTERM at the end of the session; teardown fails if it or any of its
    kernels outlive that.
    """
    from .lab import LabServer

    server = LabServer(
        root_dir=tmp_path_factory.getbasetemp(),
        state_dir=tmp_path_factory.mktemp("jupyterlab"),
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """Debian's headless Chromium, driven by Playwright."""
    from playwright.sync_api import expect

    from .lab import PAGE_TIMEOUT_MS, launch_chromium, start_playwright

    expect.set_options(timeout=PAGE_TIMEOUT_MS)
    playwright = start_playwright()
    try:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()


@pytest.fixture
def lab(
    lab_server: LabServer, chromium: Browser, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Lab]:
    """A browser page on the server for this test; see ``tests/browser/lab.py``."""
    from .lab import Lab

    page = Lab(lab_server, chromium, tmp_path, request.node.nodeid.split("/")[-1])
    try:
        yield page
    finally:
        page.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failure in a test using ``lab``: add a screenshot and the server log to the report.

    Helpers of ``lab.py`` already put both into their :class:`LabError` messages; this covers
    plain ``assert`` and ``expect`` failures in the test body.
    """
    report = yield
    if report.when != "call" or not report.failed:
        return report
    page = getattr(item, "funcargs", {}).get("lab")
    if page is None:
        return report
    from .lab import LabError

    if call.excinfo is not None and call.excinfo.errisinstance(LabError):
        return report
    try:
        text = page.diagnostics()
    except Exception as error:  # a broken page must not turn a failure into an internal error
        text = f"  (no diagnostics: {error!r}); server log: {page.server.log_path}"
    addsection = getattr(report.longrepr, "addsection", None)
    if callable(addsection):
        addsection("browser", text)
    else:
        report.sections.append(("browser", text))
    return report

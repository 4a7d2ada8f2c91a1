"""JupyterLab in a real Chromium: the server, the page, and helpers that act as a person would.

Importing this module skips the importing test module (with the reason) when Playwright or
Debian's ``/usr/bin/chromium`` is missing, so browser tests are skipped on a bare dev machine
and run in CI, where ``scripts/setup.sh`` installs both. Playwright never downloads a browser
here: it drives the system binary through ``executable_path``.

Use it through the fixtures of ``tests/browser/conftest.py``: ``lab`` gives a :class:`Lab`
(a fresh browser context on a JupyterLab server shared by the session). A test copies the
notebooks it needs into its ``tmp_path`` (which lies under the server's root dir), opens one,
runs it and acts on its widgets::

    from .lab import REPO, Lab, expect  # first: skips the module if there is no browser

    def test_restore(lab: Lab) -> None:
        nbdir = lab.copy(REPO / "notebooks")
        nb = lab.open(nbdir / "02-checkpoints.ipynb")
        nb.run_all()
        nb.click("Restore", cell="checkpoint_view(", row=checkpoint_id)
        expect(nb.output("checkpoint_view(")).to_contain_text(f"restored {checkpoint_id}")
        lab.screenshot("02-checkpoints-restored")

Every wait has a timeout and no step sleeps for a fixed time. A helper that times out raises
a :class:`LabError` whose message names a screenshot of the page, the server log and the
browser's console.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

try:
    from playwright.sync_api import Browser, Locator, Page, Playwright, sync_playwright
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import expect as expect  # noqa: PLC0414 (re-exported, for mypy)
except ImportError as exc:  # a dev machine without the test extra
    pytest.skip(
        f"browser tests need Playwright ({exc}); install the test extra: pip install -e '.[test]'",
        allow_module_level=True,
    )

CHROMIUM = Path("/usr/bin/chromium")
if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(
        f"browser tests need Debian's Chromium at {CHROMIUM}: "
        "apt-get install -y --no-install-recommends chromium (scripts/setup.sh does it as root)",
        allow_module_level=True,
    )

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
REPO = HERE.parents[1]
ARTIFACTS = REPO / "tests" / "artifacts"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    # Nothing but the loopback is reachable: keep Chromium from trying.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# JupyterLab user settings written into the server's own settings dir (never into the venv).
LAB_SETTINGS: dict[str, dict[str, Any]] = {
    # No "Would you like to get notified about official Jupyter news?" toast over screenshots.
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    # Every cell stays in the DOM, so off-screen cells can be found and read.
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    # As on Binder (binder/postBuild): a saved notebook keeps its widgets' state.
    "@jupyter-widgets/jupyterlab-manager/plugin": {"saveState": True},
}

SERVER_START_TIMEOUT = 60.0
SERVER_STOP_TIMEOUT = 30.0
PAGE_TIMEOUT_MS = 20_000
RUN_ALL_TIMEOUT_MS = 60_000
EFFECT_TIMEOUT_MS = 5_000  # a menu command that acts does so in the same event

# The browser talks to 127.0.0.1 only; so does urllib, whatever *_proxy says.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LabError(AssertionError):
    """A browser step failed; the message names the screenshot and the server log."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _proc_start_time(pid: int) -> str | None:
    """The start time of a live (non-zombie) process, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in {"Z", "X"}:
        return None
    return fields[19]


def _descendants(pid: int) -> dict[int, str]:
    """Every live descendant of ``pid``, mapped to its start time (to rule out PID reuse)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: dict[int, str] = {}
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        start = _proc_start_time(child)
        if start is not None:
            found[child] = start
        todo.extend(children.get(child, []))
    return found


def _wait_gone(processes: dict[int, str], timeout: float) -> dict[int, str]:
    """Wait until the given processes have exited; returns those still alive at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        alive = {pid: start for pid, start in processes.items() if _proc_start_time(pid) == start}
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)  # polling interval, not a wait for a state


def _describe(processes: dict[int, str]) -> str:
    parts = []
    for pid in sorted(processes):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            cmdline = "?"
        parts.append(f"{pid} ({cmdline.strip()[:80]})")
    return ", ".join(parts)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:120] or "page"


@dataclass
class LabServer:
    """A ``jupyter lab`` subprocess on 127.0.0.1, its state in ``state_dir``.

    ``JUPYTER_CONFIG_DIR``, ``JUPYTER_RUNTIME_DIR``, ``JUPYTER_DATA_DIR``, ``IPYTHONDIR`` and
    the lab settings and workspaces dirs all point into ``state_dir``: nothing is read from or
    written to ``~``, and nothing is written into the venv. The venv's own
    ``share/jupyter`` (the ``python3`` kernel spec, the ipywidgets lab extension) and
    ``etc/jupyter`` (the server extensions) are still found, since Jupyter searches
    ``sys.prefix`` after the user dirs.
    """

    root_dir: Path
    state_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    started_in: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "server.log"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for name, sub in [
            ("JUPYTER_CONFIG_DIR", "config"),
            ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("JUPYTER_DATA_DIR", "data"),
            ("IPYTHONDIR", "ipython"),
            ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"),
            ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces"),
        ]:
            path = self.state_dir / sub
            path.mkdir(parents=True, exist_ok=True)
            env[name] = str(path)
        env["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"
        env.pop("JUPYTER_PATH", None)
        env.pop("JUPYTER_CONFIG_PATH", None)
        return env

    def _write_settings(self) -> None:
        settings = self.state_dir / "lab-settings"
        for plugin, values in LAB_SETTINGS.items():
            path = settings / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values, indent=2))

    def start(self, timeout: float = SERVER_START_TIMEOUT) -> None:
        """Start the server; return when ``/api/status`` answers 200."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._write_settings()
        env = self.env()
        begin = time.monotonic()
        for _attempt in range(3):  # a free port can be taken between probe and bind
            self.port = _free_port()
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "jupyterlab",
                        "--no-browser",
                        "--IdentityProvider.token=",
                        "--ServerApp.password=",
                        "--ip=127.0.0.1",
                        f"--port={self.port}",
                        # Fail rather than silently serve on another port than the probed one.
                        "--ServerApp.port_retries=0",
                        "--allow-root",
                        # window.jupyterapp: run_all() reads cell errors from the model.
                        "--LabApp.expose_app_in_browser=True",
                        # The REST calls of the harness carry no XSRF cookie; with no token and
                        # no password on 127.0.0.1 the check protects nothing here.
                        "--ServerApp.disable_check_xsrf=True",
                        f"--ServerApp.root_dir={self.root_dir}",
                    ],
                    env=env,
                    cwd=self.root_dir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            if self._wait_ready(begin + timeout):
                self.started_in = time.monotonic() - begin
                return
            if time.monotonic() >= begin + timeout:
                break
        self.stop(check=False)
        raise LabError(
            f"JupyterLab did not answer on {self.url}/api/status within {timeout:.0f} s\n"
            f"  server log: {self.log_path}\n{self.log_tail()}"
        )

    def _wait_ready(self, deadline: float) -> bool:
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with _HTTP.open(f"{self.url}/api/status", timeout=5) as response:
                    if response.status == 200:
                        return True
            except OSError:  # refused while starting (URLError and HTTPError are OSErrors)
                pass
            time.sleep(0.05)  # polling interval, not a wait for a state
        return False

    def api(self, method: str, path: str) -> Any:
        """Call the server's REST API; returns the decoded JSON body (None if empty)."""
        request = urllib.request.Request(f"{self.url}{path}", method=method)
        with _HTTP.open(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self, under: Path) -> None:
        """Shut down the kernel of every session whose notebook lies under ``under``."""
        prefix = under.resolve().relative_to(self.root_dir.resolve()).as_posix().rstrip("/") + "/"
        for session in self.api("GET", "/api/sessions"):
            if f"{session['path'].lstrip('/')}".startswith(prefix):
                self.api("DELETE", f"/api/sessions/{session['id']}")

    def stop(self, *, check: bool = True, timeout: float = SERVER_STOP_TIMEOUT) -> None:
        """SIGTERM the server (it shuts its kernels down); with ``check``, assert nothing is left."""
        if self.process is None:
            return
        process, self.process = self.process, None
        children = _descendants(process.pid)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
            clean = True
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            clean = False
        stray = _wait_gone(children, 5.0)
        described = _describe(stray)
        for pid in stray:  # ours: started by this server; never left running
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if check:
            assert clean, f"JupyterLab ignored SIGTERM for {timeout:.0f} s; log: {self.log_path}"
            assert not stray, (
                f"processes of JupyterLab outlived it: {described} (killed); log: {self.log_path}"
            )

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "  (no server log)"
        return "\n".join(f"  | {line}" for line in text.splitlines()[-lines:])


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless; Playwright's own browser builds are never used."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )


def start_playwright() -> Playwright:
    return sync_playwright().start()


class Lab:
    """One browser context on a JupyterLab server, for one test."""

    def __init__(self, server: LabServer, browser: Browser, workdir: Path, name: str) -> None:
        self.server = server
        self.workdir = workdir
        self.name = _safe_name(name)  # names the failure screenshot
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.set_default_timeout(PAGE_TIMEOUT_MS)
        self.page: Page = self.context.new_page()
        self.console: list[str] = []  # the page's console and uncaught errors, for diagnostics
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))

    def close(self) -> None:
        """Shut this test's kernels down, close the browser context; then assert no process
        the kernels started (a context shell, say) was left running as an orphan."""
        try:
            self.context.close()
        finally:
            process = self.server.process
            before = _descendants(process.pid) if process is not None else {}
            self.server.shutdown_kernels(self.workdir)
            if process is not None:
                orphans = self._orphans(process.pid, before, 5.0)
                described = _describe(orphans)
                for pid in orphans:
                    with suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                assert not orphans, (
                    f"processes started by the kernels outlived them: {described} (killed)"
                )

    @staticmethod
    def _orphans(server_pid: int, before: dict[int, str], timeout: float) -> dict[int, str]:
        """Processes of ``before`` alive but no longer under the server, after a grace period."""
        deadline = time.monotonic() + timeout
        while True:
            current = _descendants(server_pid)
            orphans = {
                pid: start
                for pid, start in before.items()
                if pid not in current and _proc_start_time(pid) == start
            }
            if not orphans or time.monotonic() >= deadline:
                return orphans
            time.sleep(0.05)  # polling interval, not a wait for a state

    # files ----------------------------------------------------------------------------

    def copy(self, source: Path, name: str | None = None) -> Path:
        """Copy a notebook, or a whole folder of them, into this test's dir on the server."""
        target = self.workdir / (name or source.name)
        ignore = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__")
        if source.is_dir():
            shutil.copytree(source, target, ignore=ignore)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        return target

    # pages ----------------------------------------------------------------------------

    def open(self, notebook: Path, *, kernel: bool = True) -> Notebook:
        """Open a notebook that lies under the server root.

        With a kernel (the default) this loads the notebook's URL, as a person following a
        link would, and waits until its kernel is idle. With ``kernel=False`` the notebook
        opens in the current page with *No Kernel* and none is ever started: what someone
        reading a saved notebook without running it sees. (JupyterLab's ``docmanager:open``
        command, called with the kernel preference its file browser can pass.)
        """
        relative = notebook.resolve().relative_to(self.server.root_dir.resolve()).as_posix()
        with self.diagnosed(f"opening {relative}" + ("" if kernel else " without a kernel")):
            if kernel:
                # A workspace of its own: JupyterLab would otherwise reopen the tabs (and
                # restart the kernels) of notebooks that earlier tests opened in the default
                # workspace.
                workspace = uuid.uuid4().hex[:12]
                self.page.goto(f"{self.server.url}/lab/workspaces/{workspace}/tree/{relative}")
            else:
                self.page.evaluate(_JS_OPEN_WITHOUT_KERNEL, relative)
            tab = self.page.locator(
                "#jp-main-dock-panel .lm-TabBar-tab", has_text=notebook.name
            ).first
            expect(tab).to_be_visible()
            panel_id = tab.get_attribute("data-id")
            assert panel_id, f"the tab of {relative} names no panel"
            nb = Notebook(self, panel_id, notebook, tab)
            expect(nb.panel.locator(".jp-Notebook-cell").first).to_be_visible()
        if kernel:
            nb.wait_kernel_idle()
        else:
            nb.wait_no_kernel()
        return nb

    def menu(self, *path: str) -> None:
        """Click through the main menu bar, e.g. ``lab.menu("Run", "Run All Cells")``."""
        first, *rest = path
        self.page.get_by_role("menubar").get_by_role("menuitem", name=first, exact=True).click()
        for label in rest:
            self.page.locator(".lm-Menu").last.get_by_role(
                "menuitem", name=label, exact=True
            ).click()

    def text(self) -> str:
        """All text the page shows."""
        return self.page.locator("body").inner_text()

    def screenshot(self, name: str, target: Locator | None = None) -> Path:
        """Save ``tests/artifacts/<name>.png`` (the page, or one element of it)."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{_safe_name(name)}.png"
        if target is None:
            self.page.screenshot(path=path)
        else:
            target.scroll_into_view_if_needed()
            target.screenshot(path=path)
        return path

    # failures -------------------------------------------------------------------------

    def diagnostics(self, label: str = "failure") -> str:
        """A screenshot now, the page state, the console and the server log, as message lines."""
        try:
            shot = f"{self.screenshot(f'{self.name}-{label}')}"
        except PlaywrightError as error:
            shot = f"(none: {error.message.splitlines()[0]})"
        lines = [f"  screenshot: {shot}", f"  server log: {self.server.log_path}"]
        try:
            lines.append(f"  page state: {json.dumps(self.page.evaluate(_JS_PAGE_STATE))}")
        except PlaywrightError as error:
            lines.append(f"  page state: (none: {error.message.splitlines()[0]})")
        if self.console:
            lines.append("  browser console (last 15):")
            lines.extend(f"  | {line[:300]}" for line in self.console[-15:])
        lines.append("  server log tail:")
        lines.append(self.server.log_tail(15))
        return "\n".join(lines)

    @contextmanager
    def diagnosed(self, doing: str) -> Iterator[None]:
        """Turn a timeout or a failed expectation into a :class:`LabError` with diagnostics."""
        try:
            yield
        except LabError:
            raise
        except (PlaywrightError, AssertionError) as error:
            message = getattr(error, "message", None) or str(error)
            raise LabError(f"{doing}: {message}\n{self.diagnostics()}") from error


class Notebook:
    """One open notebook: its panel in the page and its file on disk."""

    def __init__(self, lab: Lab, panel_id: str, path: Path, tab: Locator) -> None:
        self.lab = lab
        self.page = lab.page
        self.panel_id = panel_id
        self.panel = lab.page.locator(f"[id='{panel_id}']")
        self.path = path
        self.tab = tab

    # cells ----------------------------------------------------------------------------

    def cells(self) -> Locator:
        return self.panel.locator(".jp-Notebook-cell")

    def code_cells(self) -> Locator:
        return self.panel.locator(".jp-Notebook-cell.jp-CodeCell")

    def cell(self, which: int | str) -> Locator:
        """The cell at index ``which`` (0-based, all cells), or the one whose source has it."""
        if isinstance(which, int):
            return self.cells().nth(which)
        return self.cells().filter(has=self.page.locator(".jp-InputArea-editor", has_text=which))

    def output(self, which: int | str) -> Locator:
        """The output area of a cell (see :meth:`cell`)."""
        return self.cell(which).locator(".jp-OutputArea")

    def output_text(self, which: int | str) -> str:
        with self.lab.diagnosed(f"reading the output of cell {which!r}"):
            return self.output(which).inner_text()

    def text(self) -> str:
        """All text the notebook panel shows (sources, prompts, outputs, widgets)."""
        return self.panel.inner_text()

    def select(self, which: int | str) -> Locator:
        """Select a cell in command mode (a click on its prompt, then Escape)."""
        cell = self.cell(which)
        with self.lab.diagnosed(f"selecting cell {which!r}"):
            expect(cell).to_have_count(1)
            cell.locator(".jp-InputPrompt").click()
            self.page.keyboard.press("Escape")
            expect(cell).to_have_class(re.compile(r"\bjp-mod-selected\b"))
            expect(self.panel.locator(".jp-Notebook-cell.jp-mod-selected")).to_have_count(1)
            expect(self.panel.locator(".jp-Notebook")).to_have_class(_COMMAND_MODE)
        return cell

    def delete_cell(self, which: int | str) -> None:
        """Delete a cell as a person would: select it, then ``D``, ``D``."""
        count = self.cells().count()
        self.select(which)
        with self.lab.diagnosed(f"deleting cell {which!r}"):
            self.page.keyboard.press("d")
            self.page.keyboard.press("d")
            expect(self.cells()).to_have_count(count - 1)
            if isinstance(which, str):
                expect(self.cell(which)).to_have_count(0)

    def save(self) -> None:
        """Ctrl+S; returns once the notebook is saved (not dirty, and the file rewritten)."""
        before = self.path.stat().st_mtime_ns
        with self.lab.diagnosed(f"saving {self.path.name}"):
            self.activate()
            self.page.keyboard.press("Control+s")
            self.page.wait_for_function(_JS_SAVED, arg=self.panel_id)
            deadline = time.monotonic() + PAGE_TIMEOUT_MS / 1000
            while self.path.stat().st_mtime_ns == before:
                assert time.monotonic() < deadline, f"{self.path} was not written"
                time.sleep(0.05)  # polling interval, not a wait for a state

    def run_new_cell(self, source: str, timeout_ms: float = RUN_ALL_TIMEOUT_MS) -> Locator:
        """Add a code cell at the end, type ``source`` into it, run it, wait until it has run.

        Returns its output area. Raises a :class:`LabError` if the cell shows an error.
        """
        index = self.cells().count()
        self.select(index - 1)
        with self.lab.diagnosed(f"adding and running the cell {source!r}"):
            self.page.keyboard.press("b")  # a new cell below, selected
            expect(self.cells()).to_have_count(index + 1)
            expect(self.cells().nth(index)).to_have_class(re.compile(r"\bjp-mod-selected\b"))
            self.page.keyboard.press("Enter")  # edit it (keys typed before would be commands)
            expect(self.cells().nth(index).locator(".cm-editor.cm-focused")).to_have_count(1)
            for number, line in enumerate(source.split("\n")):
                if number:
                    self.page.keyboard.press("Enter")
                self.page.keyboard.type(line)
            # typed as is: no closing bracket or indent added by the editor
            self.page.wait_for_function(
                _JS_CELL_SOURCE_IS, arg=[self.panel_id, index, source], timeout=EFFECT_TIMEOUT_MS
            )
            self.page.keyboard.press("Control+Enter")  # run it, stay on it: no new cell
            self.page.wait_for_function(
                _JS_CELL_RAN, arg=[self.panel_id, index], timeout=timeout_ms
            )
        state = self.page.evaluate(_JS_STATE, self.panel_id)
        assert state is not None, "the notebook panel is gone"
        errors = [e for e in state["errors"] if e.startswith(f"cell {index}:")]
        if errors:
            raise LabError(f"the cell {source!r} failed: {errors}\n{self.lab.diagnostics()}")
        return self.output(index)

    # kernel and execution ---------------------------------------------------------------

    def activate(self) -> None:
        """Make this notebook the current one (menu commands act on it)."""
        self.tab.click()
        expect(self.panel).to_be_visible()

    def wait_kernel_idle(self, timeout_ms: float = PAGE_TIMEOUT_MS) -> None:
        """Wait until the panel shows an idle kernel and its session is ready and connected.

        The indicator alone is not enough: it can read "idle" while the session context has
        no kernel yet, and Run All then runs nothing.
        """
        with self.lab.diagnosed("waiting for the kernel to be idle"):
            self.page.wait_for_function(_JS_KERNEL_READY, arg=self.panel_id, timeout=timeout_ms)

    def wait_no_kernel(self, timeout_ms: float = PAGE_TIMEOUT_MS) -> None:
        """Wait until the panel has no kernel (and no session), and says so."""
        with self.lab.diagnosed("waiting for the notebook to have no kernel"):
            self.page.wait_for_function(_JS_NO_KERNEL, arg=self.panel_id, timeout=timeout_ms)
            expect(self.panel.locator(".jp-Toolbar-kernelName")).to_have_text("No Kernel")

    def shutdown_kernel(self) -> None:
        """Kernel > Shut Down Kernel; returns once the notebook has no kernel."""
        self._menu_until(("Kernel", "Shut Down Kernel"), _JS_KERNEL_STOPPING)
        self.wait_no_kernel()

    def close(self) -> None:
        """Close the notebook's tab (its close icon); returns once the panel is gone."""
        with self.lab.diagnosed(f"closing {self.path.name}"):
            self.tab.locator(".lm-TabBar-tabCloseIcon").click()
            expect(self.panel).to_have_count(0)

    def widget_models(self) -> int:
        """How many widget models the page's widget manager for this notebook holds."""
        with self.lab.diagnosed("counting the widget models of the page"):
            count = self.page.evaluate(_JS_WIDGET_MODELS, self.panel_id)
        assert isinstance(count, int), f"no widget manager for the notebook: {count!r}"
        return count

    def clear_all_outputs(self) -> None:
        """Edit > Clear Outputs of All Cells; returns once every prompt shows ``[ ]``."""
        self._menu_until(("Edit", "Clear Outputs of All Cells"), _JS_ALL_CLEARED)

    def run_all(self, timeout_ms: float = RUN_ALL_TIMEOUT_MS) -> None:
        """Clear all outputs, then Run > Run All Cells, and wait until every cell has run.

        Clearing first makes the start of the run observable even for a notebook saved with
        execution counts. The run is over when the kernel is idle and no prompt shows
        ``[*]``; it succeeded if every non-empty code cell shows ``[n]`` and no cell has an
        error output. Otherwise this raises a :class:`LabError` naming the failed cells.
        """
        self.clear_all_outputs()
        state = self.page.evaluate(_JS_STATE, self.panel_id)
        if state is not None and not state["unrun"]:
            return  # no code cell has any source: nothing to run, nothing would start
        self._menu_until(("Run", "Run All Cells"), _JS_RUN_STARTED)
        with self.lab.diagnosed("running all cells"):
            self.page.wait_for_function(_JS_RUN_FINISHED, arg=self.panel_id, timeout=timeout_ms)
        state = self.page.evaluate(_JS_STATE, self.panel_id)
        assert state is not None, "the notebook panel is gone"
        if state["unrun"] or state["errors"]:
            errors = "\n".join(f"  | {error}" for error in state["errors"]) or "  (none)"
            raise LabError(
                f"Run All failed: cells {state['unrun']} did not run; errors:\n{errors}\n"
                f"{self.lab.diagnostics()}"
            )

    def _menu_until(self, path: tuple[str, ...], effect: str, attempts: int = 3) -> None:
        """Click a menu command on this notebook until its effect shows in the page.

        Both commands used here act synchronously when they act at all (the prompts change in
        the same event), so an effect missing after a few seconds means the click was lost;
        it is then retried, and each retry is noted in ``lab.console``.
        """
        doing = " > ".join(path)
        with self.lab.diagnosed(doing):
            for attempt in range(1, attempts + 1):
                self.wait_kernel_idle()
                self.activate()
                self.lab.menu(*path)
                try:
                    self.page.wait_for_function(
                        effect, arg=self.panel_id, timeout=EFFECT_TIMEOUT_MS
                    )
                except PlaywrightTimeoutError:
                    note = f"harness: {doing} had no effect (attempt {attempt})"
                    self.lab.console.append(note)
                    print(note, file=sys.stderr)  # shown with the test's captured output
                    self.page.keyboard.press("Escape")  # a menu left open, if any
                else:
                    return
            raise LabError(f"{doing} had no effect after {attempts} clicks")

    # widgets --------------------------------------------------------------------------

    def button(self, label: str, *, cell: int | str, row: str | None = None) -> Locator:
        """The widget button labelled ``label`` in the output of ``cell``.

        With ``row``, the one on the row that shows that text: the innermost widget box
        holding both the text and such a button (an ``HBox`` row); when that box holds
        several (a ``GridBox``), the button on the same line as the text.
        """
        output = self.output(cell)
        any_button = self.page.get_by_role("button", name=label, exact=True)
        if row is None:
            return output.get_by_role("button", name=label, exact=True)
        with self.lab.diagnosed(f"finding the {label!r} button on the row {row!r}"):
            boxes = output.locator(".widget-container", has_text=row).filter(has=any_button)
            expect(boxes.first).to_be_visible()
            box = boxes.last
            buttons = box.get_by_role("button", name=label, exact=True)
            if buttons.count() == 1:
                return buttons
            return self._aligned(box, buttons, row, label)

    def _aligned(self, box: Locator, buttons: Locator, row: str, label: str) -> Locator:
        text = box.get_by_text(row).first
        text_box = text.bounding_box()
        assert text_box is not None, f"the text {row!r} is not rendered"
        middle = text_box["y"] + text_box["height"] / 2
        matches = []
        for index in range(buttons.count()):
            rect = buttons.nth(index).bounding_box()
            if rect is not None and rect["y"] <= middle <= rect["y"] + rect["height"]:
                matches.append(index)
        assert len(matches) == 1, (
            f"{len(matches)} {label!r} buttons on the line of {row!r} (want exactly one)"
        )
        return buttons.nth(matches[0])

    def choose(self, text: str, *, cell: int | str) -> None:
        """Pick, in the last drop-down list of ``cell``'s output, the entry that shows ``text``."""
        with self.lab.diagnosed(f"choosing {text!r} in cell {cell!r}"):
            select = self.output(cell).locator("select").last
            expect(select).to_be_enabled()
            labels = select.locator("option").all_inner_texts()
            matches = [label for label in labels if text in label]
            assert len(matches) == 1, f"{text!r} in {labels!r}"
            select.select_option(label=matches[0])

    def click(self, label: str, *, cell: int | str, row: str | None = None) -> None:
        """Click a widget button (see :meth:`button`) as a person would."""
        target = self.button(label, cell=cell, row=row)
        with self.lab.diagnosed(f"clicking {label!r} in cell {cell!r}"):
            expect(target).to_be_enabled()
            target.click()


# Runs in the page: what a failure message reports besides the screenshot.
_JS_PAGE_STATE = """
() => {
  const app = window.jupyterapp;
  const commands = ['notebook:clear-all-cell-outputs', 'notebook:run-all-cells'];
  return {
    openMenus: document.querySelectorAll('.lm-Menu').length,
    dialogs: [...document.querySelectorAll('.jp-Dialog')].map((d) => d.innerText.slice(0, 200)),
    focus: document.activeElement?.className?.toString().slice(0, 80),
    current: app?.shell.currentWidget?.title.label,
    enabled: app ? Object.fromEntries(commands.map((c) => [c, app.commands.isEnabled(c)])) : null,
  };
}
"""

# Runs in the page. What a person sees decides "running" and "run": the prompt of each cell
# ("[ ]:", "[*]:", "[12]:"; markdown cells have none) and the kernel indicator of the panel.
# The notebook model (``window.jupyterapp``, exposed by ``--LabApp.expose_app_in_browser``)
# gives what the DOM cannot tell apart: a cell's full source, and an error output from stderr.
_JS_STATE = """
(panelId) => {
  const panel = document.getElementById(panelId);
  const app = window.jupyterapp;
  if (!panel || !app) return null;
  const widget = [...app.shell.widgets('main')].find((w) => w.id === panelId);
  const model = widget?.content?.model;
  const views = [...panel.querySelectorAll('.jp-Notebook-cell')];
  if (!model || model.cells.length !== views.length) return null;
  const status = panel.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status;
  const cells = views.map((view, index) => {
    const cell = model.cells.get(index);
    const outputs = cell.type === 'code' ? cell.outputs.toJSON() : [];
    return {
      index,
      code: cell.type === 'code',
      prompt: (view.querySelector('.jp-InputArea-prompt')?.textContent || '').trim(),
      source: cell.sharedModel.getSource().trim() !== '',
      outputs: view.querySelectorAll('.jp-OutputArea-child').length,
      errors: outputs.filter((o) => o.output_type === 'error')
        .map((o) => `cell ${index}: ${o.ename}: ${o.evalue}`),
    };
  });
  const code = cells.filter((c) => c.code);
  return {
    status,
    cleared: code.every((c) => c.prompt === '[ ]:' && c.outputs === 0),
    started: code.some((c) => c.prompt !== '[ ]:'),
    running: code.filter((c) => c.prompt === '[*]:').map((c) => c.index),
    unrun: code.filter((c) => c.source && !/^\\[\\d+\\]:$/.test(c.prompt)).map((c) => c.index),
    errors: code.flatMap((c) => c.errors),
  };
}
"""

_JS_ALL_CLEARED = f"(panelId) => ({_JS_STATE})(panelId)?.cleared === true"

_JS_RUN_STARTED = f"(panelId) => ({_JS_STATE})(panelId)?.started === true"

_JS_KERNEL_READY = """
(panelId) => {
  const panel = document.getElementById(panelId);
  const widget = [...(window.jupyterapp?.shell.widgets('main') ?? [])].find((w) => w.id === panelId);
  const context = widget?.sessionContext;
  const kernel = context?.session?.kernel;
  return !!kernel && context.isReady && !context.hasNoKernel
    && kernel.connectionStatus === 'connected' && kernel.status === 'idle'
    && panel?.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status === 'idle';
}
"""

# Run All marks every queued cell "[*]" at once, so once a cell has left "[ ]" the run is over
# when the kernel is idle and no cell is queued. After a failing cell Run All stops and the
# cells after it go back to "[ ]".
_JS_RUN_FINISHED = f"""
(panelId) => {{
  const s = ({_JS_STATE})(panelId);
  return !!s && s.started && s.status === 'idle' && s.running.length === 0;
}}
"""

# Runs in the page: the document manager's open command, with the kernel preference the file
# browser's open command can pass; "shouldStart: false" opens the notebook with No Kernel.
_JS_OPEN_WITHOUT_KERNEL = """
(path) => {
  window.jupyterapp.commands.execute('docmanager:open', {
    path, factory: 'Notebook', kernelPreference: {shouldStart: false, canStart: false},
  });
}
"""

_JS_NO_KERNEL = """
(panelId) => {
  const widget = [...(window.jupyterapp?.shell.widgets('main') ?? [])].find((w) => w.id === panelId);
  const context = widget?.sessionContext;
  return !!context && context.hasNoKernel && !context.session;
}
"""

_JS_SAVED = """
(panelId) => {
  const widget = [...(window.jupyterapp?.shell.widgets('main') ?? [])].find((w) => w.id === panelId);
  return !!widget && widget.context.model.dirty === false
    && !document.querySelector(`.lm-TabBar-tab[data-id='${panelId}']`)?.classList.contains('jp-mod-dirty');
}
"""

_COMMAND_MODE = re.compile(r"\bjp-mod-commandMode\b")

# A notebook being shut down: JupyterLab says so at once, before the server has answered.
_JS_KERNEL_STOPPING = """
(panelId) => {
  const widget = [...(window.jupyterapp?.shell.widgets('main') ?? [])].find((w) => w.id === panelId);
  const context = widget?.sessionContext;
  return !!context
    && (['terminating', 'unknown', 'dead'].includes(context.kernelDisplayStatus) || context.hasNoKernel);
}
"""

_JS_CELL_SOURCE_IS = """
([panelId, index, source]) => {
  const widget = [...(window.jupyterapp?.shell.widgets('main') ?? [])].find((w) => w.id === panelId);
  return widget?.content.model.cells.get(index)?.sharedModel.getSource() === source;
}
"""

# A cell added empty shows "[ ]:"; once it has run it shows "[n]:" and the kernel is idle.
_JS_CELL_RAN = """
([panelId, index]) => {
  const panel = document.getElementById(panelId);
  const view = panel?.querySelectorAll('.jp-Notebook-cell')[index];
  const status = panel?.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status;
  const prompt = (view?.querySelector('.jp-InputArea-prompt')?.textContent || '').trim();
  return /^\\[\\d+\\]:$/.test(prompt) && status === 'idle';
}
"""

# The widget manager of a notebook: jupyterlab_widgets binds the notebook's own rendermime
# to it, so a widget renderer made there holds it (a private promise, _manager, in
# jupyterlab_widgets 3); its get_state() lists every model it holds.
_JS_WIDGET_MODELS = """
async (panelId) => {
  const widget = [...(window.jupyterapp?.shell.widgets('main') ?? [])].find((w) => w.id === panelId);
  const mime = 'application/vnd.jupyter.widget-view+json';
  const renderer = widget?.content.rendermime.createRenderer(mime);
  const manager = await renderer?._manager?.promise;
  renderer?.dispose();
  if (!manager) return null;
  const state = await manager.get_state();
  return Object.keys(state.state).length;
}
"""

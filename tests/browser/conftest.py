"""Fixtures of the browser tests (issue 17, item 4): Debian's headless Chromium driven by
Selenium, the test-profile book served on 127.0.0.1, each page visited once.

Run them with ``make test-browser``, which installs Chromium, ChromeDriver and the
``browser`` extra where they are missing; ``make test`` leaves them out. Without a
browser every test here is skipped, saying why.

Environment:

- ``UNLEARNLIB_BROWSER_BOOK``: test an HTML book already built there (a ``_build/html``
  folder) instead of building the test profile into a temporary copy of the sources;
- ``UNLEARNLIB_BROWSER_ARTIFACTS``: where screenshots and the size report go
  (default ``_build/browser-artifacts/``);
- ``CHROMIUM`` / ``CHROMEDRIVER``: the browser and its driver (default Debian's).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from .helpers import (
    ARTIFACTS,
    Server,
    Visit,
    browser_missing,
    copy_book_sources,
    kernel_env,
    make_driver,
    network_urls,
    visit,
)

os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager never downloads a driver
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_ok() -> None:
    reason = browser_missing()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def driver(browser_ok: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    d = make_driver(tmp_path_factory.mktemp("chromium-profile"))
    network_urls(d), d.get_log("browser")  # drop the start-up's own entries
    yield d
    d.quit()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def browser_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One store for the book build and JupyterLab: the explorer notebook then reads the
    sweep that the book's explore chapter already ran with the same parameters."""
    return tmp_path_factory.mktemp("browser-store")


@pytest.fixture(scope="session")
def book_html(browser_ok: None, tmp_path_factory: pytest.TempPathFactory, browser_store: Path) -> Path:
    """``_build/html`` of the test profile: ``unlearnlib book --profile test`` in a temporary
    copy of the sources (the checkout's own ``_build`` is left alone)."""
    prebuilt = os.environ.get("UNLEARNLIB_BROWSER_BOOK")
    if prebuilt:
        if not (Path(prebuilt) / "index.html").is_file():
            pytest.fail(f"UNLEARNLIB_BROWSER_BOOK={prebuilt} has no index.html")
        return Path(prebuilt)
    src = copy_book_sources(tmp_path_factory.mktemp("book-src"))
    cmd = [sys.executable, "-m", "unlearnlib", "book", "--profile", "test", "--root", str(src)]
    proc = subprocess.run(cmd, cwd=src, env=kernel_env(browser_store), capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        pytest.fail(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{tail}")
    return src / "_build" / "html"


@pytest.fixture(scope="session")
def book_server(book_html: Path) -> Iterator[Server]:
    server = Server(book_html)
    yield server
    server.close()


@pytest.fixture(scope="session")
def visits(driver: Any, book_server: Server) -> dict[str, Visit]:
    """Each page loaded once per session, on first use."""

    class Lazy(dict):
        def __missing__(self, page: str) -> Visit:
            self[page] = visit(driver, book_server, page)
            return self[page]

    return Lazy()

"""Helpers of the browser tests: the loopback server, headless Chromium, page visits and
plotly sliders (the fixtures that use them are in ``conftest.py``)."""

from __future__ import annotations

import functools
import json
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("UNLEARNLIB_BROWSER_ARTIFACTS", ROOT / "_build" / "browser-artifacts"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
#: Keep Chromium off the network (python.md, "Known to work"): no background requests,
#: component updates, sync or QUIC, and a fresh profile each session.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--disable-dev-shm-usage",
    "--window-size=1280,900", "--lang=en-US",
]
#: Schemes whose requests go over the network; the others (chrome:, data:, blob:, about:)
#: stay inside the browser.
NETWORK_SCHEMES = {"http", "https", "ws", "wss", "ftp"}
LOOPBACK = "127.0.0.1"


def browser_missing() -> str | None:
    """Why no browser test can run here, or ``None`` when one can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "no selenium: install the browser extra (pip install -e '.[browser]'; make test-browser does)"
    for path, pkg in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).is_file() and os.access(path, os.X_OK)):
            return (f"no browser: {path} not found (Debian package {pkg}; make test-browser installs it "
                    "with apt-get where it can)")
    return None


# --------------------------------------------------------------------------- server


class Server:
    """Python's http.server on a free port of 127.0.0.1, recording each request and its status."""

    def __init__(self, directory: Path) -> None:
        self.requests: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def log_request(self, code: Any = "-", size: Any = "-") -> None:
                with server._lock:
                    server.requests.append((self.path, int(getattr(code, "value", code))))

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self.httpd = ThreadingHTTPServer((LOOPBACK, 0), functools.partial(Handler, directory=str(directory)))
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str = "") -> str:
        return f"http://{LOOPBACK}:{self.port}/{path.lstrip('/')}"

    def take(self) -> list[tuple[str, int]]:
        """The requests since the last call."""
        with self._lock:
            out, self.requests = self.requests, []
        return out

    def wait_idle(self, quiet: float = 0.5, timeout: float = 10.0) -> None:
        """Return once no request has come for ``quiet`` seconds (favicons come late)."""
        end, seen = time.monotonic() + timeout, -1
        while time.monotonic() < end:
            with self._lock:
                n = len(self.requests)
            if n == seen:
                return
            seen = n
            time.sleep(quiet)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --------------------------------------------------------------------------- browser


def make_driver(profile_dir: Path) -> Any:
    """Headless Chromium with its console and its DevTools network events logged."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile_dir}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    # every page comes from the server, so what it asks for shows in the server's log
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    driver.set_page_load_timeout(120)
    driver.set_script_timeout(120)
    return driver


def network_urls(driver: Any) -> list[str]:
    """URLs the browser asked for since the last call (DevTools performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
        elif msg["method"] == "Network.webSocketCreated":
            urls.append(msg["params"]["url"])
    return urls


def leaves_loopback(url: str) -> bool:
    """Whether a request for ``url`` goes to another host than 127.0.0.1."""
    parts = urlsplit(url)
    return parts.scheme in NETWORK_SCHEMES and parts.hostname != LOOPBACK


def wait_for(driver: Any, script: str, timeout: float = 60.0, what: str = "a condition", *args: Any) -> Any:
    """Poll ``script`` (JavaScript returning a value) until it is truthy; its value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = driver.execute_script(script, *args)
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


# --------------------------------------------------------------------------- the book


def chapter_pages(root: Path = ROOT) -> list[str]:
    """The landing page, the intro and every chapter ``_toc.yml`` publishes, as served paths."""
    from unlearnlib.book.build import GENERATED_DIR, published_notebooks

    chapters = [f"{GENERATED_DIR.as_posix()}/{Path(n).stem}.html" for n in published_notebooks(root)]
    return ["index.html", "book/intro.html", *chapters]


def copy_book_sources(dst: Path) -> Path:
    """What ``unlearnlib book`` reads: ``_config.yml``, ``_toc.yml``, ``book/`` (without the
    executed copies) and ``notebooks/``."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / f, dst / f)
    skip = shutil.ignore_patterns("generated", ".ipynb_checkpoints")
    shutil.copytree(ROOT / "book", dst / "book", ignore=skip)
    shutil.copytree(ROOT / "notebooks", dst / "notebooks", ignore=skip)
    return dst


def kernel_env(store: Path) -> dict[str, str]:
    """The environment of a book build or a JupyterLab server: this store, one thread."""
    return {**os.environ, "UNLEARNLIB_STORE": str(store), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass
class Visit:
    """What one page did in the browser, from loading until the network fell quiet."""

    page: str
    final_url: str
    served: list[tuple[str, int]]  # (path, status) as the server saw them
    requested: list[str]  # every URL the browser asked for (DevTools)
    console: list[dict]  # the browser console's entries
    figures: list[dict] = field(default_factory=list)
    math: dict = field(default_factory=dict)
    title: str = ""
    text_length: int = 0


#: Per plotly figure: its traces, the trace groups drawn in the SVG, and the drawn marks
#: (paths with geometry, images), so an empty div or an undrawn figure shows as 0.
FIGURES_JS = """
return [...document.querySelectorAll('.plotly-graph-div')].map(gd => ({
  id: gd.id,
  traces: (gd.data || []).length,
  drawn_traces: gd.querySelectorAll('.main-svg g.trace, .main-svg g.hm').length,
  marks: [...gd.querySelectorAll('g.trace path, g.trace image, g.hm image')]
           .filter(e => (e.getAttribute('d') || e.getAttribute('href') || '').length > 2).length,
  sliders: ((gd.layout || {}).sliders || []).length,
}));
"""

#: Math: the formulas Sphinx marked (``.math``), those MathJax typeset, and raw TeX left in
#: the text a reader sees (code, scripts and MathJax's own output excluded). Waits for
#: MathJax's first typesetting when the page loads MathJax.
MATH_JS = r"""
const done = arguments[arguments.length - 1];
const report = () => {
  const marked = [...document.querySelectorAll('span.math, div.math')];
  const skip = ['PRE', 'CODE', 'SCRIPT', 'STYLE', 'TEXTAREA', 'MJX-CONTAINER'];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {acceptNode: n => {
    for (let e = n.parentElement; e; e = e.parentElement) if (skip.includes(e.tagName)) return NodeFilter.FILTER_REJECT;
    return NodeFilter.FILTER_ACCEPT;
  }});
  const raw = [];
  for (let n; (n = walker.nextNode()); ) {
    const t = n.textContent;
    if (/\\\(|\\\)|\\\[|\\\]|\$\$|\\begin\{/.test(t)) raw.push(t.trim().slice(0, 120));
  }
  done({
    marked: marked.length,
    typeset: marked.filter(e => e.querySelector('mjx-container')).length,
    containers: document.querySelectorAll('mjx-container').length,
    mathjax: window.MathJax && window.MathJax.version ? String(window.MathJax.version) : null,
    raw: raw.slice(0, 10),
  });
};
const mj = window.MathJax;
if (mj && mj.startup && mj.startup.promise) mj.startup.promise.then(report, report); else report();
"""


def visit(driver: Any, server: Server, page: str) -> Visit:
    """Load ``page`` from ``server``, wait for its figures, MathJax and the network to settle,
    and record what the checks need."""
    network_urls(driver), driver.get_log("browser"), server.take()  # start clean
    driver.get(server.url(page))
    wait_for(driver, "return document.readyState === 'complete'", what=f"{page} to load")
    wait_for(driver, "return [...document.querySelectorAll('.plotly-graph-div')].every(gd => gd._fullLayout)",
             what=f"the plotly figures of {page} to be drawn")
    math = driver.execute_async_script(MATH_JS)
    server.wait_idle()
    figures = driver.execute_script(FIGURES_JS)
    text = driver.execute_script("const m = document.querySelector('main') || document.body; return m.innerText.length;")
    return Visit(page=page, final_url=driver.current_url, served=server.take(), requested=network_urls(driver),
                 console=driver.get_log("browser"), figures=figures, math=math, title=driver.title,
                 text_length=text)


# --------------------------------------------------------------------------- static explorer sliders


#: What a figure has drawn: the geometry of every mark (path ``d``, image ``href``) and
#: every text of its traces, in document order.
DRAWN_JS = """
const gd = document.getElementById(arguments[0]);
return [...gd.querySelectorAll('g.trace path, g.trace image, g.trace text, g.hm image')]
  .map(e => e.getAttribute('d') || e.getAttribute('href') || e.textContent || '');
"""


def drawn_data(driver: Any, figure_id: str) -> list[str]:
    """The marks figure ``figure_id`` has drawn (compare two calls to see a change)."""
    return driver.execute_script(DRAWN_JS, figure_id)


def move_plotly_slider(driver: Any, figure_id: str, step: int, slider: int = 0, timeout: float = 10.0) -> None:
    """Move slider ``slider`` of plotly figure ``figure_id`` to ``step`` as a reader does: a
    click on the slider's rail at that step's label. Returns once plotly has made it the
    active step and painted two more frames."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    gd = driver.find_element(By.ID, figure_id)
    containers = gd.find_elements(By.CSS_SELECTOR, "g.slider-container")
    if slider >= len(containers):
        raise ValueError(f"Figure {figure_id} has {len(containers)} slider(s); no slider {slider}.")
    box = containers[slider]
    labels = box.find_elements(By.CSS_SELECTOR, "g.slider-label-group")
    if not 0 <= step < len(labels):
        raise ValueError(f"Slider {slider} of figure {figure_id} has steps 0..{len(labels) - 1}; got {step}.")
    rail = box.find_element(By.CSS_SELECTOR, "rect.slider-rail-touch-rect")
    r, lab = rail.rect, labels[step].rect
    dx = (lab["x"] + lab["width"] / 2) - (r["x"] + r["width"] / 2)  # Selenium offsets are from the centre
    ActionChains(driver).move_to_element_with_offset(rail, int(round(dx)), 0).click().perform()
    wait_for(driver, "const gd = document.getElementById(arguments[0]);"
                     "return gd.layout.sliders[arguments[1]].active === arguments[2] && !gd._transitioning;",
             timeout, f"slider {slider} of {figure_id} to reach step {step}", figure_id, slider, step)
    driver.execute_async_script("const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(done));")

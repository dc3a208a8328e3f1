"""The live explorer in JupyterLab, driven through the browser as a reader would (issue 17,
item 4).

JupyterLab (the project's environment) starts headless on 127.0.0.1 with a token, in a
temporary folder holding a copy of ``notebooks/explore.ipynb`` whose parameters cell is set
to the ``test`` profile's values (``book/profiles.yml``). The test opens it in Chromium,
runs all cells from the Run menu, moves the live explorer's ``lr`` slider, presses the
explorer's Run button and reads the new row of the explorer's table, whose learning rate
must be the one the slider shows.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from .helpers import LOOPBACK, ROOT, kernel_env, leaves_loopback, network_urls, wait_for

NOTEBOOK = "explore.ipynb"


def set_parameters(nb: dict, params: dict[str, Any]) -> dict:
    """``nb`` with each ``name = ...`` line of its ``parameters`` cell set to ``params[name]``
    (a name the cell does not assign is an error: the profile and the notebook disagree)."""
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    lines = "".join(cell["source"]).splitlines()
    missing = set(params)
    for i, line in enumerate(lines):
        m = re.match(r"^(\w+)\s*=", line)
        if m and m.group(1) in params:
            lines[i] = f"{m.group(1)} = {params[m.group(1)]!r}  # book/profiles.yml: test"
            missing.discard(m.group(1))
    if missing:
        raise ValueError(f"The parameters cell of the notebook assigns no {sorted(missing)}.")
    cell["source"] = "\n".join(lines) + "\n"
    return nb


def test_set_parameters_replaces_only_the_named_lines():
    nb = {"cells": [{"cell_type": "code", "metadata": {"tags": ["parameters"]},
                     "source": 'seeds = "0-2"  # many\nepochs = None\nother = 1\n'}]}
    out = set_parameters(nb, {"seeds": "0", "epochs": 2})["cells"][0]["source"].splitlines()
    assert out[0].startswith("seeds = '0'") and out[1].startswith("epochs = 2") and out[2] == "other = 1"
    with pytest.raises(ValueError, match="assigns no"):
        set_parameters(nb, {"nope": 1})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@pytest.fixture(scope="module")
def lab(browser_ok, tmp_path_factory, browser_store) -> Iterator[dict]:
    """A JupyterLab server on 127.0.0.1 (token, no browser of its own, no news or update
    checks) over a folder with the test-profile copy of the explorer notebook."""
    from unlearnlib.book.build import kernel_name, load_profiles

    base = tmp_path_factory.mktemp("jupyterlab")
    work = base / "work"
    work.mkdir()
    nb = json.loads((ROOT / "notebooks" / NOTEBOOK).read_text())
    set_parameters(nb, load_profiles(ROOT)["test"].get(NOTEBOOK, {}))
    nb.setdefault("metadata", {})["kernelspec"] = {"name": kernel_name(), "display_name": "Python 3",
                                                   "language": "python"}
    (work / NOTEBOOK).write_text(json.dumps(nb))
    settings = base / "settings" / "@jupyterlab"
    # every cell in the DOM (no virtual scrolling), no news or update notifications
    _write_json(settings / "notebook-extension" / "tracker.jupyterlab-settings", {"windowingMode": "none"})
    _write_json(settings / "apputils-extension" / "notification.jupyterlab-settings",
                {"fetchNews": "false", "checkForUpdates": False})
    _write_json(base / "config" / "jupyter_server_config.json", {"LabApp": {
        "news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
        "extension_manager": "readonly"}})
    port, token = _free_port(), secrets.token_hex(16)
    env = {**kernel_env(browser_store), "JUPYTER_CONFIG_DIR": str(base / "config"),
           "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
           "JUPYTER_RUNTIME_DIR": str(base / "runtime")}
    log_path = base / "jupyterlab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--ServerApp.ip={LOOPBACK}",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={work}"]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://{LOOPBACK}:{port}"
    try:
        end = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base_url}/api/status?token={token}", timeout=5)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > end:
                    pytest.fail(f"JupyterLab did not start (exit {proc.poll()}):\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)
        yield {"url": base_url, "token": token, "log": log_path}
    finally:
        try:  # the server's own shutdown stops the kernels too
            req = urllib.request.Request(f"{base_url}/api/shutdown", method="POST",
                                         headers={"Authorization": f"token {token}"})
            urllib.request.urlopen(req, timeout=10)
            proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _click_menu(driver: Any, menu: str, command: str) -> None:
    """Open menu ``menu`` of JupyterLab's menu bar and click the item running ``command``."""
    from selenium.webdriver.common.by import By

    bar = driver.find_element(By.XPATH, f"//li[contains(@class,'lm-MenuBar-item')][normalize-space()='{menu}']")
    bar.click()
    try:
        item = wait_for(driver, "return document.querySelector(`.lm-Menu-item[data-command='${arguments[0]}']`)",
                        10, f"the {menu} menu's {command}", command)
    except AssertionError as e:
        shown = driver.execute_script("return [...document.querySelectorAll('.lm-Menu-item')]"
                                      ".map(e => e.getAttribute('data-command'))")
        raise AssertionError(f"{e}; the menu shows {shown}") from None
    item.click()


def _explorer_rows(driver: Any) -> int:
    return driver.execute_script(
        "return [...document.querySelectorAll('.jp-OutputArea .widget-html-content table')]"
        ".reduce((n, t) => n + t.querySelectorAll('tbody tr').length, 0)")


def test_the_live_explorer_runs_the_setting_its_slider_shows(lab, driver, artifacts):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    network_urls(driver)
    driver.get(f"{lab['url']}/lab/tree/{NOTEBOOK}?token={lab['token']}")
    wait_for(driver, """const k = document.querySelector('.jp-NotebookPanel-toolbar .jp-KernelName, .jp-Toolbar-kernelName');
                        const s = document.querySelector('.jp-Notebook-ExecutionIndicator');
                        return k && !/No Kernel/.test(k.textContent) && s && s.getAttribute('data-status') === 'idle';""",
             180, "the notebook's kernel to start")
    _click_menu(driver, "Run", "runmenu:run-all")

    run_xpath = "//div[contains(@class,'jp-OutputArea')]//button[contains(@class,'jupyter-button')][normalize-space()='Run']"
    found = wait_for(driver, """
        const tb = [...document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
          .map(e => e.innerText).find(t => /Traceback/.test(t));
        if (tb) return 'error: ' + tb.slice(-1500);
        return document.evaluate(arguments[0], document, null, 9, null).singleNodeValue ? 'explorer' : null;""",
        900, "the live explorer (its Run button) after running all cells", run_xpath)
    assert found == "explorer", f"a cell raised: {found}"
    assert _explorer_rows(driver) == 0

    slider = driver.find_element(By.XPATH, "//div[contains(@class,'widget-slider')]"
                                           "[.//label[normalize-space()='lr'] or .//*[contains(@class,'widget-label')][normalize-space()='lr']]")
    readout = slider.find_element(By.CSS_SELECTOR, ".widget-readout")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", slider)
    before = readout.text
    handle = slider.find_element(By.CSS_SELECTOR, ".noUi-handle")
    at_max = float(handle.get_attribute("aria-valuenow")) >= float(handle.get_attribute("aria-valuemax"))
    step = -60 if at_max else 60  # drag towards the end the slider is away from
    ActionChains(driver).click_and_hold(handle).move_by_offset(step, 0).release().perform()
    try:
        wait_for(driver, "return arguments[0].innerText !== arguments[1]", 10, "the lr readout to change", readout, before)
    except AssertionError:
        driver.save_screenshot(str(artifacts / "jupyterlab-failure.png"))
        raise
    shown = float(readout.text)
    assert (shown > float(before)) == (step > 0)  # right: a larger learning rate

    driver.find_element(By.XPATH, run_xpath).click()
    end = time.monotonic() + 600
    while _explorer_rows(driver) < 1 and time.monotonic() < end:
        time.sleep(1)
    assert _explorer_rows(driver) == 1, "no new row in the explorer's table after Run"
    cells = driver.execute_script(
        "const t = [...document.querySelectorAll('.jp-OutputArea .widget-html-content table')].find(t => t.querySelector('tbody tr'));"
        "const head = [...t.querySelectorAll('thead th')].map(e => e.innerText.trim());"
        "const row = [...t.querySelectorAll('tbody tr')[0].querySelectorAll('td')].map(e => e.innerText.trim());"
        "return Object.fromEntries(head.map((h, i) => [h, row[i]]));")
    hp = json.loads(cells["hyperparameters"])
    assert cells["method"] == "ft"
    assert hp["lr"] == pytest.approx(shown, rel=0.01)  # the readout has 3 significant digits
    row = driver.find_element(By.XPATH, "//div[contains(@class,'widget-html-content')]//table")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", row)
    driver.save_screenshot(str(artifacts / "jupyterlab-explorer.png"))
    outside = sorted({u for u in network_urls(driver) if leaves_loopback(u)})
    assert not outside, f"JupyterLab asked other hosts for: {outside}"

"""``wcviz dash`` end to end: a real server in a subprocess, driven by headless Chromium.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package (the test
extra). Without them the browser test is skipped, unless ``WCVIZ_REQUIRE_BROWSER=1`` (CI), where
it fails. With ``WCVIZ_SCREENSHOT_DIR`` set, its screenshot is also copied there.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from _cli import free_port
from _engines import unavailable
from test_app import append, write_run
from wcviz.record.store import RunStore

pytestmark = pytest.mark.slow  # a Streamlit server process and a browser

SERVER_START_S = 120  # a cold Streamlit start on a busy 2-core CI machine takes ~10-30 s
PAGE_WAIT_S = 90


def _browser_or_skip() -> tuple[str, str]:
    """Paths of chromium and chromedriver; skips (or fails under WCVIZ_REQUIRE_BROWSER=1)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    try:
        import selenium  # noqa: F401
        missing = []
    except ImportError:
        missing = ["the selenium package (pip install -e '.[test]')"]
    if not chromium:
        missing.append("chromium (apt-get install chromium)")
    if not driver:
        missing.append("chromedriver (apt-get install chromium-driver)")
    if missing:
        unavailable("browser test needs " + ", ".join(missing), "WCVIZ_REQUIRE_BROWSER")
    return chromium, driver



def _wait_healthy(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"wcviz dash exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"wcviz dash did not answer within {SERVER_START_S} s:\n{log.read_text()}")


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM to wcviz dash (it forwards to Streamlit); the group is killed if it lingers."""
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    try:  # nothing of the session may outlive the test
        os.killpg(server.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture()
def server(tmp_path):
    """``wcviz dash ROOT --port N`` serving two runs; yields its URL, stops it afterwards."""
    root = tmp_path / "runs"
    write_run(root / "baseline", n_records=6, acc0=0.6)
    write_run(root / "wc", n_records=6, method="arctan", learnable="fine", scale=0.05, seed=1,
              status="running")  # still training: its charts must follow new records
    for seed in (0, 1):  # one cell of an (a, b) sweep, two seeds: Sweeps page, seed groups
        write_run(root / f"wc-a1-s{seed}", n_records=4, method="arctan", a=1.0, b=0.6, seed=seed,
                  acc0=0.6 + 0.01 * seed)
    port = free_port()
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "wcviz", "dash", str(root), "--port",
                                 str(port)], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://localhost:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield url, log, root
    finally:
        _stop(proc)


def _chrome(chromium: str, chromedriver: str, profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
                 "--window-size=1600,1000",
                 # Every host but localhost fails to resolve: a request leaving the machine
                 # shows up in the browser log below instead of hanging on a network-less box.
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(chromedriver), options=opts)


PICKER = '[data-testid="stSidebar"] [data-testid="stMultiSelect"]'


def _pick_run(driver, wait, name: str) -> None:
    """Choose ``name`` in the sidebar's run picker, as a user does: type, click the option."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    box = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, f"{PICKER} input")))
    box.click()
    box.send_keys(name)
    wait.until(EC.element_to_be_clickable(
        (By.XPATH, f'//*[@role="option"][normalize-space()="{name}"]'))).click()
    wait.until(EC.presence_of_element_located(
        (By.XPATH, f'//*[@data-testid="stSidebar"]//*[@data-testid="stMultiSelect"]'
                   f'//span[normalize-space()="{name}"]')))


def _clear_runs(driver, wait) -> None:
    """Empty the sidebar picker: click each chosen run's remove (x) button, as a user does."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, f"{PICKER} input")))
    remove = f'{PICKER} [data-tag] button[aria-label^="Remove "]'
    for _ in range(20):
        buttons = driver.find_elements(By.CSS_SELECTOR, remove)
        if not buttons:
            break
        try:
            buttons[-1].click()
        except Exception:  # noqa: BLE001 - re-rendered under the click: look again
            pass
        time.sleep(0.5)
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, remove))


def _shown(root, run_id: str) -> str:
    """How the run picker names run ``run_id`` of ``root``: the figures' run name."""
    from wcviz.app import data

    return data.names(list(data.scan(root).runs))[run_id]


def _choose_runs(driver, wait, root, *run_ids: str) -> None:
    """From an empty picker, choose the runs ``run_ids`` of ``root`` in the sidebar by the
    names the picker shows (the figures' run names), then close its menu."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _clear_runs(driver, wait)
    for run_id in run_ids:
        _pick_run(driver, wait, _shown(root, run_id))
    driver.find_element(By.CSS_SELECTOR, "body").send_keys(Keys.ESCAPE)  # close the menu


def _go(driver, wait, title: str) -> None:
    """Open the page ``title`` from the navigation and wait for its heading."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    wait.until(EC.element_to_be_clickable(
        (By.XPATH, f'//a[.//*[normalize-space()="{title}"]]'))).click()
    wait.until(EC.presence_of_element_located((By.XPATH, f'//h1[normalize-space()="{title}"]')))


def _settle(driver, wait) -> None:
    """Wait until the app is idle (no "running" indicator) for a moment."""
    from selenium.webdriver.common.by import By

    quiet = 0
    deadline = time.monotonic() + PAGE_WAIT_S
    while quiet < 3 and time.monotonic() < deadline:
        busy = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
        quiet = 0 if busy else quiet + 1
        time.sleep(0.3)


MARKS = ".mark-line path, .mark-area path, .mark-symbol path, .mark-rect path"


def _charts_drawn(driver, wait, n_min: int = 1) -> int:
    """Assert the page shows no Streamlit exception and at least ``n_min`` charts, none empty."""
    from selenium.webdriver.common.by import By

    def ready(d):
        charts = d.find_elements(By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"]')
        return len(charts) >= n_min and all(c.find_elements(By.CSS_SELECTOR, MARKS) for c in charts)

    _settle(driver, wait)
    errors = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    assert not errors, errors[0].text
    wait.until(ready)
    errors = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    assert not errors, errors[0].text
    charts = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"]')
    for chart in charts:
        svg = chart.find_element(By.CSS_SELECTOR, "svg")
        assert svg.size["width"] > 200 and svg.size["height"] > 150
    return len(charts)


def _click_option(driver, wait, label: str) -> None:
    """Click a radio option or toggle by its visible label."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    wait.until(EC.element_to_be_clickable(
        (By.XPATH, f'//label[.//p[normalize-space()="{label}"]]'))).click()


def _select(driver, wait, label: str, option: str) -> None:
    """Choose ``option`` in the selectbox labelled ``label``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    box = f'//*[@data-testid="stSelectbox"][.//label[normalize-space()="{label}"]]'
    wait.until(EC.element_to_be_clickable((By.XPATH, f'{box}//input'))).click()
    wait.until(EC.element_to_be_clickable(
        (By.XPATH, f'//*[@role="option"][normalize-space()="{option}"]'))).click()


def _tick_row(driver, row: int) -> None:
    """Click the selection box of table row ``row`` (0 = first) on the Runs page.

    The table is a canvas (Glide Data Grid): the click goes to the box's position, below the
    35 px header, in rows of 35 px (Streamlit's default row height).
    """
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    grid = driver.find_element(By.CSS_SELECTOR, '[data-testid="stDataFrameResizable"]')
    x = -grid.size["width"] // 2 + 15
    y = -grid.size["height"] // 2 + 35 + 35 * row + 17
    ActionChains(driver).move_to_element_with_offset(grid, x, y).click().perform()


def _shoot(driver, tmp_path, name: str) -> None:
    """A screenshot of the page; copied to $WCVIZ_SCREENSHOT_DIR when set (docs/)."""
    time.sleep(1)  # let the last transition settle
    shot = tmp_path / f"{name}.png"
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("WCVIZ_SCREENSHOT_DIR"):
        out = Path(os.environ["WCVIZ_SCREENSHOT_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, out / f"{name}.png")


def _gradient_run(run_dir: Path) -> None:
    """A real Recorder run with gradients and update ratios (three records)."""
    import torch
    from torch import nn

    import wcviz

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with wcviz.Recorder(model, run_dir, gradients=True) as rec:
        for epoch in range(3):
            opt.zero_grad()
            model(torch.randn(16, 4)).pow(2).mean().backward()
            opt.step()
            rec.record(epoch)


@pytest.fixture()
def browser() -> tuple[str, str]:
    """Chromium and chromedriver paths, checked before a server is started for nothing."""
    return _browser_or_skip()


@pytest.mark.slow
def test_dash_every_page_with_runs_picked_in_the_sidebar(browser, server, tmp_path):
    chromium, chromedriver = browser
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    url, log, root = server
    driver = _chrome(chromium, chromedriver, tmp_path / "chrome-profile")
    try:
        wait = WebDriverWait(driver, PAGE_WAIT_S)
        driver.get(url)
        wait.until(EC.presence_of_element_located((By.XPATH, '//h1[normalize-space()="Runs"]')))

        # Runs: the page the app opens on. A run picked in the sidebar stays picked (it was
        # undone at once by the table's stale selection) and shows as a selected row; picked
        # at once, while the page still reads the runs' accuracy in the background.
        _choose_runs(driver, wait, root, "baseline", "wc")
        wait.until(EC.presence_of_element_located(
            (By.XPATH, '//*[@data-testid="stCaptionContainer"][contains(., "· 2 selected")]')))
        _settle(driver, wait)
        assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
        _shoot(driver, tmp_path, "dash_runs")
        # Ticking a row adds its run to the sidebar's selection; unticking removes it.
        _tick_row(driver, 2)  # rows: baseline, wc, wc-a1-s0, wc-a1-s1
        wait.until(EC.presence_of_element_located(
            (By.XPATH, '//*[@data-testid="stCaptionContainer"][contains(., "· 3 selected")]')))
        assert driver.find_elements(By.CSS_SELECTOR, f'{PICKER} [data-tag][aria-label="{_shown(root, "wc-a1-s0")}"]')
        _settle(driver, wait)
        _tick_row(driver, 2)
        wait.until(EC.presence_of_element_located(
            (By.XPATH, '//*[@data-testid="stCaptionContainer"][contains(., "· 2 selected")]')))

        # Distributions: runs chosen again here, then every option of the page.
        _go(driver, wait, "Distributions")
        _clear_runs(driver, wait)
        wait.until(EC.presence_of_element_located((By.XPATH, '//*[contains(., "No run selected")]')))
        _choose_runs(driver, wait, root, "baseline", "wc")
        _charts_drawn(driver, wait)
        chart = '[data-testid="stVegaLiteChart"] svg'
        titles = {t.text for t in driver.find_elements(By.CSS_SELECTOR, f"{chart} text")}
        assert {"baseline", "band"} <= titles  # panel title and the band legend
        _shoot(driver, tmp_path, "dash_distributions")
        _click_option(driver, wait, "overlaid")
        _charts_drawn(driver, wait)
        texts = {t.text for t in driver.find_elements(By.CSS_SELECTOR, f"{chart} text")}
        assert {"median", "min–max", "±aπ/2 (bound)"} <= texts  # the line legend names each
        _shoot(driver, tmp_path, "dash_overlay")
        _click_option(driver, wait, "symlog")
        _charts_drawn(driver, wait)
        _click_option(driver, wait, "raw v")
        _charts_drawn(driver, wait)
        wait.until(EC.presence_of_element_located((By.XPATH, '//*[contains(., "No raw v for")]')))
        _click_option(driver, wait, "w = Ψ(v)")
        _click_option(driver, wait, "Small multiples: all layers")
        _charts_drawn(driver, wait)
        _shoot(driver, tmp_path, "dash_small_multiples")
        _click_option(driver, wait, "Small multiples: all layers")
        _charts_drawn(driver, wait)

        # Live: a record committed by the "training" run appears without any interaction and
        # without reloading the page (the marker set in the page survives).
        driver.execute_script("window.wcvizMarker = 42;")
        status = '//*[@data-testid="stCaptionContainer"][contains(., "wc: running, 7 records")]'
        assert not driver.find_elements(By.XPATH, status)
        append(RunStore.open(root / "wc"), 6, scale=0.05, learnable=True)
        wait.until(EC.presence_of_element_located((By.XPATH, status)))
        assert driver.execute_script("return window.wcvizMarker;") == 42

        # Near zero: pick, then change the threshold and the layer.
        _go(driver, wait, "Near zero")
        _choose_runs(driver, wait, root, "baseline", "wc")
        assert _charts_drawn(driver, wait, 2) == 2
        _select(driver, wait, "Threshold", "abs=0.01")
        _charts_drawn(driver, wait, 2)
        _select(driver, wait, "Over epochs: layer", "fc")
        _charts_drawn(driver, wait, 2)
        _shoot(driver, tmp_path, "dash_near_zero")

        # Compander: only the learnable run is drawn; the baseline is named as not learnable.
        _go(driver, wait, "Compander")
        _choose_runs(driver, wait, root, "wc", "baseline")
        _charts_drawn(driver, wait)
        _shoot(driver, tmp_path, "dash_compander")

        # Metrics, then the same runs folded into seed groups.
        _go(driver, wait, "Metrics")
        _choose_runs(driver, wait, root, "baseline", "wc-a1-s0", "wc-a1-s1")
        _charts_drawn(driver, wait)
        _shoot(driver, tmp_path, "dash_metrics")
        _click_option(driver, wait, "Fold seeds into groups")
        _charts_drawn(driver, wait)
        texts = {t.text for t in driver.find_elements(By.CSS_SELECTOR, f"{chart} text")}
        assert "WC a=1, b=0.6 (mean of 2 seeds)" in texts
        _go(driver, wait, "Distributions")
        _charts_drawn(driver, wait)
        _shoot(driver, tmp_path, "dash_seed_groups")
        _go(driver, wait, "Near zero")  # both charts: each group's mean with its ± std band
        assert _charts_drawn(driver, wait, 2) == 2
        texts = {t.text for t in driver.find_elements(By.CSS_SELECTOR, f"{chart} text")}
        assert "WC a=1, b=0.6 (mean of 2 seeds)" in texts
        assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
        _shoot(driver, tmp_path, "dash_near_zero_groups")
        _click_option(driver, wait, "Fold seeds into groups")

        # Sweeps: heatmaps over (a, b); a click on a cell selects its runs.
        _go(driver, wait, "Sweeps")
        _choose_runs(driver, wait, root, "baseline")
        assert _charts_drawn(driver, wait, 3) == 3
        _shoot(driver, tmp_path, "dash_sweeps")
        cell = driver.find_element(By.CSS_SELECTOR, f"{chart} .mark-rect path")
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(driver).move_to_element(cell).click().perform()
        for run_id in ("wc-a1-s0", "wc-a1-s1"):
            wait.until(EC.presence_of_element_located(
                (By.XPATH, f'//*[@data-testid="stSidebar"]//*[@data-testid="stMultiSelect"]'
                           f'//span[normalize-space()="{_shown(root, run_id)}"]')))
        _charts_drawn(driver, wait, 3)

        # Histograms: a run recorded with gradients appears (the root is listed again) and
        # each view draws: heatmap, ridgelines, gradient bands, update ratio.
        _gradient_run(root / "zz-grads")
        _go(driver, wait, "Histograms")
        _choose_runs(driver, wait, root, "zz-grads")
        for view in ("heatmap", "ridgelines", "gradients", "update ratio"):
            _click_option(driver, wait, view)
            _charts_drawn(driver, wait)
            _shoot(driver, tmp_path, f"dash_histograms_{view.replace(' ', '_')}")

        offline = [e["message"] for e in driver.get_log("browser")
                   if "ERR_NAME_NOT_RESOLVED" in e["message"]]
        assert not offline, f"the dashboard tried to reach the network: {offline}"
    finally:
        driver.quit()
    assert "wcviz dash: serving" in log.read_text()


def test_dash_refuses_a_missing_root(tmp_path):
    done = subprocess.run([sys.executable, "-m", "wcviz", "dash", str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "is not a directory" in done.stderr
    assert "Traceback" not in done.stderr


def test_dash_command_line_is_headless_and_offline(tmp_path):
    import wcviz.app
    from wcviz.cli import dash

    cmd = dash.streamlit_command(dash.app_entry(), tmp_path, "localhost", 8765)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("main.py")
    assert Path(cmd[4]).parent == Path(wcviz.app.__file__).parent  # ours, not a folder named app
    assert cmd[-2:] == ["--", str(tmp_path)]  # the script's own argument: its runs root
    assert {"--server.headless=true", "--browser.gatherUsageStats=false",
            "--server.address=localhost", "--server.port=8765"} <= set(cmd)

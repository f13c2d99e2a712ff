"""``wcviz dash`` end to end: a real server in a subprocess, driven by headless Chromium.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package (the test
extra). Without them the browser test is skipped, unless ``WCVIZ_REQUIRE_BROWSER=1`` (CI), where
it fails. With ``WCVIZ_SCREENSHOT_DIR`` set, its screenshot is also copied there.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from test_app import append, write_run
from wcviz.store import RunStore

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
        reason = "browser test needs " + ", ".join(missing)
        if os.environ.get("WCVIZ_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " (WCVIZ_REQUIRE_BROWSER=1)")
        pytest.skip(reason)
    return chromium, driver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    port = _free_port()
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


def _pick_run(driver, wait, name: str) -> None:
    """Choose ``name`` in the sidebar's run picker, as a user does: type, click the option."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    picker = '[data-testid="stSidebar"] [data-testid="stMultiSelect"] input'
    box = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, picker)))
    box.click()
    box.send_keys(name)
    wait.until(EC.element_to_be_clickable(
        (By.XPATH, f'//*[@role="option"][normalize-space()="{name}"]'))).click()
    wait.until(EC.presence_of_element_located(
        (By.XPATH, f'//*[@data-testid="stSidebar"]//*[@data-testid="stMultiSelect"]'
                   f'//span[normalize-space()="{name}"]')))


@pytest.fixture()
def browser() -> tuple[str, str]:
    """Chromium and chromedriver paths, checked before a server is started for nothing."""
    return _browser_or_skip()


def test_dash_serves_the_band_chart_of_two_selected_runs(browser, server, tmp_path):
    chromium, chromedriver = browser
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    url, log, root = server
    driver = _chrome(chromium, chromedriver, tmp_path / "chrome-profile")
    try:
        wait = WebDriverWait(driver, PAGE_WAIT_S)
        driver.get(url)
        wait.until(EC.presence_of_element_located((By.XPATH, '//h1[normalize-space()="Runs"]')))
        wait.until(EC.element_to_be_clickable(
            (By.XPATH, '//a[.//*[normalize-space()="Distributions"]]'))).click()
        wait.until(EC.presence_of_element_located((By.XPATH, '//*[contains(., "No run selected")]')))
        for name in ("baseline", "wc"):
            _pick_run(driver, wait, name)
        driver.find_element(By.CSS_SELECTOR, "body").send_keys(Keys.ESCAPE)  # close the menu

        # Drawn: Vega rendered the chart as SVG with filled band areas, one panel per run.
        chart = '[data-testid="stVegaLiteChart"] svg'
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, f"{chart} .mark-area path")) >= 8)
        svg = driver.find_element(By.CSS_SELECTOR, chart)
        assert svg.size["width"] > 300 and svg.size["height"] > 200
        titles = {t.text for t in driver.find_elements(By.CSS_SELECTOR, f"{chart} text")}
        assert {"baseline", "wc"} <= titles  # the two facet headers
        time.sleep(1)  # let the last transition settle before the screenshot

        shot = tmp_path / "dashboard.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        if os.environ.get("WCVIZ_SCREENSHOT_DIR"):
            out = Path(os.environ["WCVIZ_SCREENSHOT_DIR"])
            out.mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, out / "dashboard.png")

        # Live: a record committed by the "training" run appears without any interaction and
        # without reloading the page (the marker set in the page survives).
        driver.execute_script("window.wcvizMarker = 42;")
        status = '//*[@data-testid="stCaptionContainer"][contains(., "wc: running, 7 records")]'
        assert not driver.find_elements(By.XPATH, status)
        append(RunStore.open(root / "wc"), 6, scale=0.05, learnable=True)
        wait.until(EC.presence_of_element_located((By.XPATH, status)))
        assert driver.execute_script("return window.wcvizMarker;") == 42

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


def test_dash_command_line_is_headless_and_offline():
    from wcviz.cli import dash

    cmd = dash.streamlit_command(dash.app_entry(), "localhost", 8765)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("main.py")
    assert {"--server.headless=true", "--browser.gatherUsageStats=false",
            "--server.address=localhost", "--server.port=8765"} <= set(cmd)

"""``wcviz report``: one self-contained HTML file of runs, opened offline in a real Chromium.

The browser test needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium``
package; without them it is skipped, unless ``WCVIZ_REQUIRE_BROWSER=1`` (CI), where it fails.
"""

from __future__ import annotations

import html as html_lib
import json
import re

import numpy as np
import pandas as pd
import pytest

from _cli import one_error_line
from _fixture_runs import baseline_run, learnable_run, seed_group, wc_run
from test_dash_e2e import _browser_or_skip
from wcviz.cli import main

pytest.importorskip("vl_convert")

EVIL = "</script><script>document.title='owned'</script>"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A root holding a study (3 baseline and 3 WC seeds), a sweep cell beside it, a learnable
    run and a run whose config carries markup; its report written by the real command."""
    root = tmp_path_factory.mktemp("runs")
    seed_group(root, "baseline")
    seed_group(root, "wc")
    wc_run(root / "sweep" / "a1.2", a=1.2, b=0.5)
    learnable_run(root / "learn")
    baseline_run(root / "evil", seed=7, config={"note": EVIL})
    out = root.parent / "report.html"
    assert main(["report", str(root), "--out", str(out)]) == 0
    return root, out, out.read_text(encoding="utf-8")


def _specs(text: str) -> list[dict]:
    """The Vega-Lite specs the page renders (the runner's ``specs`` array)."""
    found = re.search(r"const specs = (\[.*?\]);\nwindow.wcvizRendered", text, re.S)
    return json.loads(found.group(1).replace("<\\/", "</"))


@pytest.mark.slow
def test_report_holds_every_view_in_one_file(report):
    root, out, text = report
    for heading in ("Runs", "Percentile bands", "Near zero", "Compander a and b", "Metrics",
                    "Sweep", "Claims over seeds", "Run configs"):
        assert f"<h2>{heading}</h2>" in text
    assert out.stat().st_size < 5e6
    # nothing is fetched: no external script, stylesheet, image or frame in the page (script
    # bodies left out: the inlined bundle's strings hold markup it may build on request)
    page = re.sub(r"<script>.*?</script>", "<script></script>", text, flags=re.S)
    assert page.count("<script>") == 2  # the bundle and the runner, both inline
    assert not re.search(r"""<(script|link|img|iframe)[^>]*(src|href)=""", page)
    assert "sweep/a1.2" in text  # nested runs named by their folder below the root
    assert "HOLDS" in text or "FAILS" in text or "INCONCLUSIVE" in text
    # a run's config is shown, escaped: its markup is text, not a script of the page
    assert EVIL not in text and html_lib.escape(EVIL) in text
    specs = _specs(text)
    assert len(specs) == text.count('class="chart"')
    bands = json.dumps(specs[0])
    layers = ["conv1", "layer1.conv", "layer2.conv", "fc"]
    assert '"bind": {"input": "select", "options": ' + json.dumps(layers) in bands


@pytest.mark.slow
def test_report_renders_every_chart_offline_in_chromium(report, tmp_path):
    chromium, chromedriver = _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    _, out, text = report
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver), options=opts)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        driver.get_log("performance")  # drained: the browser's own start-up page left out
        driver.get(out.as_uri())
        driver.set_script_timeout(120)
        errors = driver.execute_async_script(
            "const done = arguments[arguments.length - 1]; window.wcvizRendered.then(done);")
        assert errors == []
        drawn = driver.execute_script(
            "return [...document.querySelectorAll('.chart')].map(c => "
            "c.querySelectorAll('svg .mark-rect path, svg .mark-line path, svg .mark-area path,"
            " svg .mark-symbol path, svg .mark-text text').length)")
        assert len(drawn) == len(_specs(text)) and all(n > 0 for n in drawn), drawn
        # the layer picker redraws the bands with another layer's values
        before = driver.execute_script("return document.querySelector('#chart0 svg').outerHTML")
        driver.execute_script(
            "const s = document.querySelector('#chart0 select'); s.value = 'fc';"
            "s.dispatchEvent(new Event('change'));")
        after = driver.execute_script("return document.querySelector('#chart0 svg').outerHTML")
        assert after != before
        # the bound lines' check box: off, the overlay's y axis fits the weights alone (fc: the
        # learnable run's a grows to 4.5, its bound ±7 sets the range)
        driver.execute_script(
            "const s = document.querySelector('#chart1 select'); s.value = 'fc';"
            "s.dispatchEvent(new Event('change'));")
        ticks = "return [...document.querySelectorAll('#chart1 .role-axis-label text')].map(t => t.textContent)"
        with_bound = driver.execute_script(ticks)
        driver.execute_script("document.querySelector('#chart1 input[type=checkbox]').click()")
        assert driver.execute_script(ticks) != with_bound
        requests = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
        urls = {m["params"]["request"]["url"] for m in requests
                if m["method"] == "Network.requestWillBeSent"}
        assert out.as_uri() in urls
        network = {u for u in urls if u.split(":")[0] in ("http", "https", "ws", "wss", "ftp")}
        assert not network, network  # the file itself (and data: URIs inside it), no network
    finally:
        driver.quit()


def test_thin_keeps_each_runs_first_and_last_epoch():
    from wcviz.report.html import thin

    frame = pd.DataFrame({"run": np.repeat(["a", "b"], 100),
                          "epoch": np.tile(np.arange(100.0), 2), "v": np.arange(200.0)})
    small, k = thin(frame, max_rows=50)
    assert k == 4 and len(small) <= 2 * 26
    for _, part in small.groupby("run"):
        assert {0.0, 99.0} <= set(part["epoch"])
    assert thin(frame, max_rows=500)[1] == 1


def test_values_keep_five_significant_digits():
    from wcviz.report.html import _round

    got = _round(pd.DataFrame({"p50": [0.0123456789, -98765.4321, 0.0, np.nan], "epoch": [1.5] * 4}))
    assert got["p50"].tolist()[:3] == [0.012346, -98765.0, 0.0] and np.isnan(got["p50"].iloc[3])
    assert got["epoch"].tolist() == [1.5] * 4


def test_report_bad_input(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r.html")]) == 2
    assert "does not exist" in one_error_line(capsys)
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r.html")]) == 2
    assert "no run stores under" in one_error_line(capsys)

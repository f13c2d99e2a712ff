"""Adversarial cases: hostile run stores (issue 19, items 13, 14 and 15).

* a zip-bomb chunk: a valid, checksummed chunk of a few kB whose chunk grid claims hundreds of
  millions of elements (gigabytes once decoded), and other shapes no wcviz store has;
* Markdown in run names and store attributes (links, images that make the browser fetch);
* a chunk swapped for a hard link after the dashboard first checked the store; a store with
  very many layers on the Distributions page.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

import _fixture_runs as fx
from _engines import framework
from wcviz.errors import WcvizError
from wcviz.record.reader import open_run, read_arrays
from wcviz.record.schema import MAX_CHUNK_ELEMENTS

# ---------------------------------------------------------------- item 14: shapes and grids


def _zstd_zeros(n_bytes: int) -> bytes:
    """A zstd frame that decodes to ``n_bytes`` zero bytes, from RLE blocks of 128 KiB (4
    bytes each): what a zip bomb is made of (RFC 8878, frame and block headers)."""
    frame = bytearray((0xFD2FB528).to_bytes(4, "little"))
    frame += bytes([0xE0]) + n_bytes.to_bytes(8, "little")  # 8-byte content size, one segment
    block = 128 * 1024
    left = n_bytes
    while left:
        size = min(block, left)
        left -= size
        header = (1 if not left else 0) | (1 << 1) | (size << 3)  # last?, RLE, size
        frame += header.to_bytes(3, "little") + b"\0"
    return bytes(frame)


def _with_crc(data: bytes) -> bytes:
    import google_crc32c

    return data + google_crc32c.value(data).to_bytes(4, "little")


def _meta(store: Path, name: str) -> dict:
    return json.loads((store / name / "zarr.json").read_text())


def _set_meta(store: Path, name: str, **changes) -> None:
    doc = _meta(store, name)
    if "shape" in changes:
        doc["shape"] = changes["shape"]
    if "chunks" in changes:
        doc["chunk_grid"]["configuration"]["chunk_shape"] = changes["chunks"]
    if "dims" in changes:
        doc["dimension_names"] = changes["dims"]
    (store / name / "zarr.json").write_text(json.dumps(doc))


def _bomb(store: Path, name: str = "weight_std", elements: int = 375_000_000) -> int:
    """Make ``name`` (epoch, layer) claim one chunk of about ``elements`` float64 zeros, its
    chunk file a valid, checksummed zstd frame of a few hundred kB. Returns the file's size."""
    rows = _meta(store, name)["shape"][0]
    width = -(-elements // rows)
    _set_meta(store, name, shape=[rows, width], chunks=[rows, width])
    chunk = store / name / "c" / "0" / "0"
    chunk.write_bytes(_with_crc(_zstd_zeros(rows * width * 8)))
    return chunk.stat().st_size


def _store(tmp_path) -> Path:
    return fx.baseline_run(tmp_path / "runs" / "run", n_epochs=3) / "record.zarr"


def _shape_tricks():
    return {
        "grid larger than the array": ("weight_std", {"chunks": [128, 4096]}, "chunks of 4,096"),
        "epoch chunk not a divisor of epoch_chunk": ("val_acc", {"chunks": [96]},
                                                     "chunks of 96 along 'epoch'"),
        "dimensions renamed": ("weight_quantile", {"dims": ["epoch", "layer", "bin"]},
                               "the schema gives"),
        "layers disagree": ("near_zero_fraction", {"shape": [128, 5, 4], "chunks": [128, 5, 4]},
                            "has 5 along 'layer'"),
        "a million-layer claim": ("layer_numel", {"shape": [2 ** 21], "chunks": [2 ** 21]},
                                  "2,097,152 along 'layer'"),
    }


@pytest.mark.parametrize("trick", list(_shape_tricks()))
def test_shapes_the_schema_never_writes_are_refused_before_decoding(tmp_path, trick):
    store = _store(tmp_path)
    name, change, match = _shape_tricks()[trick]
    _set_meta(store, name, **change)
    with pytest.raises(WcvizError, match=f"refused run store .*{name!r}.*{match}") as err:
        open_run(store.parent)
    assert "\n" not in str(err.value)


def test_a_bomb_chunk_is_refused_by_open_and_by_the_dashboards_reads(tmp_path):
    store = _store(tmp_path)
    size = _bomb(store)
    assert size < 400_000  # a few hundred kB on disk ...
    assert _meta(store, "weight_std")["shape"][1] * 128 > MAX_CHUNK_ELEMENTS  # ... GBs decoded
    for read in (lambda: open_run(store.parent),
                 lambda: read_arrays(store.parent, ["weight_std"]),
                 lambda: read_arrays(store.parent, ["val_acc", "weight_std"])):
        with pytest.raises(WcvizError, match="refused run store .*'weight_std'"):
            read()


def test_a_bomb_in_the_layer_names_is_refused_on_the_dashboard(tmp_path):
    from wcviz.app import data

    store = _store(tmp_path)
    _set_meta(store, "layer", chunks=[2 ** 24])  # its chunk claims 16 M names
    run = data.scan(store.parent.parent).runs[0]
    with pytest.raises(WcvizError, match="refused run store .*'layer'.*chunks of 16,777,216"):
        data.layers(run)


@pytest.mark.slow
def test_inspect_of_a_bomb_is_one_line_and_small(tmp_path):
    store = _store(tmp_path)
    _bomb(store)  # 375 M float64: 3 GB once decoded
    proc = subprocess.run([sys.executable, "-m", "wcviz", "inspect", str(store.parent)],
                          capture_output=True, text=True, timeout=300)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused run store" in lines[0] and "weight_std" in lines[0]
    assert peak_mb < 1500, f"inspect peaked at {peak_mb:.0f} MB"


def test_real_stores_of_every_layout_still_open(tmp_path):
    # The shape check accepts what the writer makes: no thresholds, other quantiles, another
    # epoch_chunk, a learnable run, one record.
    from wcviz.record.store import RunStore
    import numpy as np

    store = RunStore.create(tmp_path / "odd", layers=["a", "b"], layer_kinds=["Linear"] * 2,
                            layer_numel=[4, 6], bin_edges=np.tile(np.linspace(-1, 1, 4), (2, 1)),
                            thresholds=[], quantiles=[0.1, 0.5, 0.9], epoch_chunk=7)
    store.append(0.0, 0, {}, {"val/acc": 0.5})
    store.finish("finished")
    assert open_run(tmp_path / "odd").sizes["threshold"] == 0
    assert read_arrays(tmp_path / "odd", ["layer", "weight_quantile"])["layer"].tolist() == ["a", "b"]
    fx.learnable_run(tmp_path / "learn", n_epochs=1)
    assert open_run(tmp_path / "learn").sizes["epoch"] == 1


# ---------------------------------------------------------------- item 13: Markdown as text

LINK_NAME = "[Re-login](https:attacker.example)"
IMAGE_NAME = "![px](https:attacker.example)"


@pytest.mark.parametrize("text", [LINK_NAME, IMAGE_NAME, "![x](http://127.0.0.1:1/leak.png)",
                                  "**bold** _it_ `code` <b>html</b> :red[x] :material/home: $x$",
                                  "www.attacker.example and https://attacker.example",
                                  "line\n# heading\n\n| a | b |", "back\\slash"])
def test_md_escapes_every_markdown_construct(text):
    from wcviz.app.ui import md

    MarkdownIt = framework("markdown_it").MarkdownIt  # noqa: N806 - the class

    html = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(md(text))
    assert "<a " not in html and "<img" not in html and "<h1" not in html
    assert "<strong" not in html and "<em" not in html and "<code" not in html
    assert "<table" not in html and "<b>" not in html
    # what shows is the text itself (control characters as spaces)
    shown = MarkdownIt("commonmark").render(md(text))
    import html as html_lib
    import re

    plain = html_lib.unescape(re.sub(r"<[^>]+>", "", shown)).strip()
    assert plain == text.replace("\n", " ").strip()


def _leak_server():
    """A local HTTP server that records every request (an image the browser would fetch)."""
    import http.server
    import threading

    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, hits


@pytest.mark.slow
def test_dashboard_shows_markdown_in_names_and_attributes_as_text(tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    from _cli import free_port
    from test_app import write_run
    from test_dash_e2e import (PAGE_WAIT_S, _browser_or_skip, _charts_drawn, _chrome,
                               _choose_runs, _go, _settle, _stop, _wait_healthy)

    chromium, chromedriver = _browser_or_skip()
    leak, hits = _leak_server()
    leak_url = f"http://127.0.0.1:{leak.server_address[1]}/leak.png"
    root = tmp_path / "runs"
    write_run(root / LINK_NAME, n_records=3)
    write_run(root / IMAGE_NAME, n_records=3)
    write_run(root / "leaky", n_records=3, method=f"![x]({leak_url})")
    port, log = free_port(), tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "wcviz", "dash", str(root), "--port",
                                 str(port)], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    driver = None
    try:
        url = f"http://localhost:{port}"
        _wait_healthy(url, proc, log)
        driver = _chrome(chromium, chromedriver, tmp_path / "chrome-profile")
        wait = WebDriverWait(driver, PAGE_WAIT_S)
        driver.get(url)
        wait.until(EC.presence_of_element_located((By.XPATH, '//h1[normalize-space()="Runs"]')))
        _go(driver, wait, "Compander")  # names each run that is not learnable, with its method
        _choose_runs(driver, wait, root, LINK_NAME, IMAGE_NAME, "leaky")
        _settle(driver, wait)
        caption = wait.until(EC.presence_of_element_located(
            (By.XPATH, '//*[@data-testid="stCaptionContainer"][contains(., "Not learnable")]')))
        assert LINK_NAME in caption.text and IMAGE_NAME in caption.text
        assert f"![x]({leak_url})" in caption.text
        _go(driver, wait, "Distributions")  # status lines name each run
        _charts_drawn(driver, wait)
        status = driver.find_elements(By.XPATH, '//*[@data-testid="stCaptionContainer"]'
                                                '[contains(., "records")]')
        assert any(LINK_NAME in s.text for s in status)
        _settle(driver, wait)
        links = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "a")]
        images = [i.get_attribute("src") for i in driver.find_elements(By.CSS_SELECTOR, "img")]
        assert not [h for h in links if h and ("attacker" in h or "leak" in h)], links
        assert not [s for s in images if s and ("attacker" in s or "leak" in s)], images
        assert not hits, f"the browser fetched {hits}"
    finally:
        if driver is not None:
            driver.quit()
        _stop(proc)
        leak.shutdown()


# ---------------------------------------------------------------- item 15: cache, many layers


def test_dashboard_rechecks_a_chunk_swapped_after_the_first_view(tmp_path):
    import os

    from test_app import write_run
    from wcviz.app import data

    write_run(tmp_path / "outside" / "secret", n_records=2, seed=4242).finish()
    root = tmp_path / "root"
    write_run(root / "tricked", n_records=2).finish()
    run = data.scan(root).by_id()["tricked"]
    data.dataset(run)  # the first view: checked and opened
    data.distributions([run], "conv1")
    chunk = root / "tricked" / "record.zarr" / "val_acc" / "c" / "0"
    chunk.unlink()  # ... then a chunk becomes a hard link to a file outside the root
    os.link(tmp_path / "outside" / "secret" / "record.zarr" / "val_acc" / "c" / "0", chunk)
    with pytest.raises(WcvizError, match="2 hard links"):
        data.metrics([run])
    with pytest.raises(WcvizError, match="2 hard links"):
        data.dataset(run)
    assert data.scan(root).by_id()["tricked"].key == run.key  # same listing: the cache key alone
    chunk.unlink()  # the store's own file again (a copy): readable again
    chunk.write_bytes((tmp_path / "outside" / "secret" / "record.zarr" / "val_acc" / "c" / "0")
                      .read_bytes())
    assert len(data.metrics([run]))


def test_a_chunk_swapped_for_a_symlink_changes_the_fingerprint_even_on_its_old_inode(tmp_path):
    """ext4 and others give a new symlink the inode number its unlinked chunk just freed: the
    path and inode alone then fingerprint the swapped store as the checked one."""
    from test_app import write_run
    from wcviz.record.integrity import tree_fingerprint

    write_run(tmp_path / "run", n_records=2).finish()
    store = tmp_path / "run" / "record.zarr"
    chunk = store / "val_acc" / "c" / "0"
    before = tree_fingerprint(store)
    chunk.unlink()
    chunk.symlink_to(tmp_path / "elsewhere")
    assert tree_fingerprint(store) != before


def test_distributions_refuses_a_run_whose_chunk_became_a_link_and_draws_the_others(tmp_path):
    """Layer names cached from a first view do not spare the next layer's read its check."""
    from test_app import write_run
    from wcviz.app import data

    write_run(tmp_path / "outside" / "secret", n_records=2, seed=4242).finish()
    root = tmp_path / "root"
    for name in ("ok", "tricked"):
        write_run(root / name, n_records=2).finish()
    runs = list(data.scan(root).runs)
    assert set(data.distributions(runs, "conv1")["run"]) == {"ok", "tricked"}
    chunk = root / "tricked" / "record.zarr" / "weight_quantile" / "c" / "0" / "0" / "0"
    chunk.unlink()  # the chunk every layer's quantiles come from now leads outside the root
    chunk.symlink_to(tmp_path / "outside" / "secret" / "record.zarr" / "weight_quantile" / "c"
                     / "0" / "0" / "0")
    errors: list[str] = []
    wide = data.distributions(runs, "fc", errors=errors)
    assert set(wide["run"]) == {"ok"}
    assert len(errors) == 1 and errors[0].startswith("tricked: ") and "is a symlink" in errors[0]
    with pytest.raises(WcvizError, match="is a symlink"):
        data.layer_quantiles(runs[1], "block.conv")


def _deep_run(run_dir: Path, n_layers: int) -> None:
    import numpy as np

    from wcviz.record.store import RunStore

    names = [f"block{i}.fc" for i in range(n_layers)]
    store = RunStore.create(run_dir, layers=names, layer_kinds=["Linear"] * n_layers,
                            layer_numel=[10] * n_layers, thresholds=["abs=0.01"],
                            bin_edges=np.tile(np.linspace(-1, 1, 3), (n_layers, 1)),
                            attrs={"model": "deep", "dataset": "synthetic", "seed": 0})
    for epoch in range(2):
        q = np.tile(np.linspace(-1, 1, 9) * (1 + epoch), (n_layers, 1))
        store.append(float(epoch), epoch, {"weight_quantile": q}, {"val_acc": 0.5})
    store.finish("finished")


@pytest.mark.slow
def test_a_deep_store_draws_a_capped_number_of_layers_and_says_so(tmp_path, monkeypatch):
    from test_app import charts, dashboard, select
    from wcviz.app import data

    n = 1500
    _deep_run(tmp_path / "deep", n)
    run = data.scan(tmp_path).runs[0]
    wide = data.all_layers([run])
    drawn = list(dict.fromkeys(wide["layer"]))
    assert len(drawn) == data.MAX_PANELS and drawn[0] == "block0.fc" and drawn[-1] == f"block{n - 1}.fc"
    assert sorted(set(wide["depth"])) == sorted(int(x[5:-3]) for x in drawn)
    assert len(data.layer_choices(data.layers(run))) == data.MAX_LAYER_CHOICES
    assert data.layer_choices(data.layers(run), "K1499") == [f"block{n - 1}.fc"]

    at = dashboard(monkeypatch, tmp_path)
    at.run()
    select(at, "deep", page="distributions")
    assert len(at.selectbox(key="dist_layer").options) == data.MAX_LAYER_CHOICES
    assert any(f"{n:,} layers; the list offers the first" in c.value for c in at.caption)
    at.text_input(key="dist_layer_find").input("block1499").run()
    assert at.selectbox(key="dist_layer").options == [f"block{n - 1}.fc"]
    at.toggle(key="dist_all").set_value(True).run()
    assert not at.exception
    assert any(f"{data.MAX_PANELS} of {n:,} layers drawn" in c.value for c in at.caption)
    assert set(charts(at)[0][1]["layer"].dropna()) == set(drawn)

"""``wcviz figures``, ``wcviz table`` and ``wcviz compare`` on real fixture stores."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import _fixture_runs as fx
import wcviz
from wcviz.cli import main


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    fx.seed_group(root, "baseline", seeds=(0, 1))
    fx.seed_group(root, "wc", seeds=(0, 1))
    fx.violating_wc_run(root / "bad")
    return root


@pytest.mark.slow
def test_figures_writes_each_format(root, tmp_path, capsys):
    out = tmp_path / "figs"
    rc = main(["figures", str(root / "baseline-s0"), str(root / "wc-s0"), "--layer", "layer1.conv",
               "--zoom", "0.5", "--out", str(out), "--format", "pdf,svg"])
    assert rc == 0
    names = {p.name for p in out.iterdir()}
    for stem in ("fig3_bands_layer1.conv", "fig4_bands_zoom_layer1.conv", "near_zero", "metrics"):
        assert {f"{stem}.pdf", f"{stem}.svg"} <= names
    assert (out / "near_zero.pdf").read_bytes().startswith(b"%PDF")
    printed = capsys.readouterr().out
    assert f"wrote {len(names)} files" in printed and "fig3_bands_layer1.conv.pdf" in printed


def test_figures_unknown_layer_lists_layers(root, tmp_path, capsys):
    rc = main(["figures", str(root / "baseline-s0"), "--layer", "conv7", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.strip() == ("wcviz figures: error: no layer 'conv7' in run "
                           f"{wcviz.open_run(root / 'baseline-s0').attrs['run_id']}; "
                           "its layers are: conv1, layer1.conv, layer2.conv, fc")
    assert not any(tmp_path.iterdir())


def test_figures_bad_format_and_missing_run(root, tmp_path, capsys):
    assert main(["figures", str(root / "wc-s0"), "--out", str(tmp_path), "--format", "pdf,gif"]) == 2
    assert "unknown figure format gif" in capsys.readouterr().err
    assert main(["figures", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    assert "no run at" in capsys.readouterr().err


@pytest.mark.slow
def test_figures_subprocess_error_has_no_traceback(root, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-m", "wcviz", "figures", str(root / "wc-s0"),
                           "--layer", "fc2", "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "its layers are: conv1, layer1.conv, layer2.conv, fc" in proc.stderr


@pytest.mark.parametrize("fmt, marker", [("md", "| dataset | model |"), ("tex", "\\begin{tabular}"),
                                         ("csv", "dataset,model,method")])
def test_table_formats(root, capsys, fmt, marker):
    assert main(["table", str(root), "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert out.startswith(marker)
    assert "tinynet" in out


def test_table_to_file(root, tmp_path, capsys):
    target = tmp_path / "t.md"
    assert main(["table", str(root), "--out", str(target)]) == 0
    assert target.read_text() == capsys.readouterr().out


def test_table_empty_root(tmp_path, capsys):
    assert main(["table", str(tmp_path)]) == 2
    assert "no run stores under" in capsys.readouterr().err


def test_compare_one_pair_shows_layers_but_no_verdict_from_one_seed(root, capsys):
    assert main(["compare", str(root / "baseline-s0"), str(root / "wc-s0"), "--strict"]) == 0
    out = capsys.readouterr().out
    assert "(i) WC keeps |w| < aπ/2 in every layer and epoch: INCONCLUSIVE" in out
    assert "(ii) WC leaves fewer near-zero weights: INCONCLUSIVE (" in out
    assert "1 paired seed(s) < 3" in out
    for layer in fx.LAYERS:
        assert f"\n{layer} " in out


def test_compare_a_bound_violation_fails_even_on_one_seed(root, capsys):
    assert main(["compare", str(root / "baseline-s0"), str(root / "bad")]) == 0
    out = capsys.readouterr().out
    assert "(i) WC keeps |w| < aπ/2 in every layer and epoch: FAILS" in out
    assert "(ii) WC leaves fewer near-zero weights: INCONCLUSIVE" in out
    assert main(["compare", str(root / "baseline-s0"), str(root / "bad"), "--strict"]) == 1


def test_compare_groups_over_three_seeds(tmp_path, capsys):
    base = fx.seed_group(tmp_path, "baseline")
    wc = fx.seed_group(tmp_path, "wc")
    csv = tmp_path / "claims.csv"
    rc = main(["compare", "--baseline", *map(str, base), "--wc", *map(str, wc),
               "--threshold", "rel=0.1", "--csv", str(csv), "--strict"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "paired seeds: 0, 1, 2" in out
    assert "(ii) WC leaves fewer near-zero weights: HOLDS (near-zero % |w| < 0.1·σ₀, all weights; n=3" in out
    import pandas as pd

    rows = pd.read_csv(csv)
    assert set(rows["claim"]) == {"(i)", "(ii)", "(iii)"}
    assert (rows["n"] == 3).all()
    assert main(["compare", str(tmp_path)]) == 0  # the root form finds the same pair
    assert "paired seeds: 0, 1, 2" in capsys.readouterr().out


def test_compare_bad_usage(root, capsys):
    assert main(["compare", str(root), str(root / "wc-s0")]) == 2
    assert "no run at" in capsys.readouterr().err
    assert main(["compare", "--baseline", str(root / "baseline-s0")]) == 2
    assert "pass both --baseline" in capsys.readouterr().err
    assert main(["compare", str(root / "wc-s0")]) == 2
    assert "not a runs root" in capsys.readouterr().err


def test_compare_csv_into_a_missing_folder_is_one_line(root, tmp_path, capsys):
    target = tmp_path / "no-such-dir" / "claims.csv"
    rc = main(["compare", str(root / "baseline-s0"), str(root / "wc-s0"), "--csv", str(target)])
    err = capsys.readouterr().err
    assert rc == 2 and "does not exist" in err and "Traceback" not in err
    assert not target.parent.exists()

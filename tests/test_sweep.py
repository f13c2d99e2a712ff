"""``wcviz.report.sweep`` / ``wcviz figures --sweep`` on real fixture stores: one grid per configuration."""

from __future__ import annotations

import pytest

import _fixture_runs as fx
from wcviz.cli import main
from wcviz.errors import WcvizError
from wcviz.report.plots.sweep import sweep_figure


def _grid(root, model="tinynet", method="arctan"):
    for a in (0.5, 0.8):
        fx.wc_run(root / f"{model}-{method}-a{a}", a=a, b=0.5, model=model) \
            if method == "arctan" else \
            fx.write_run(root / f"{model}-{method}-a{a}", method=method, a=a, b=0.5, model=model,
                         scales=lambda e: fx.INIT_SCALE, near_zero=lambda e: fx._nz(fx.INIT_NZ))


def test_sweep_of_one_configuration_draws(tmp_path):
    _grid(tmp_path)
    fx.baseline_run(tmp_path / "base")
    fig = sweep_figure(tmp_path)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[0] == "test acc at best val (%)" and titles[2] == "max|w| / (aπ/2)"
    assert len(titles) == 3 and titles[1].startswith("fraction near zero")
    assert len(fig.axes[0].texts) == 2  # one written cell per (a, b) of the grid


@pytest.mark.parametrize("other", [{"model": "othernet"}, {"method": "arsinh"}])
def test_sweep_mixing_configurations_is_refused(tmp_path, capsys, other):
    # Two grids under one root used to be folded silently into one heatmap: cells of the same
    # (a, b) overwrote each other (arsinh over arctan) or averaged two models' accuracies.
    _grid(tmp_path)
    _grid(tmp_path, **other)
    with pytest.raises(WcvizError, match="one configuration"):
        sweep_figure(tmp_path)
    assert main(["figures", str(tmp_path), "--sweep", "--out", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert "one configuration" in err and "Traceback" not in err


def test_near_zero_panel_names_its_measure(tmp_path):
    # The panel said only "fraction near zero": which of the 8 recorded measures was unknowable.
    import wcviz
    from wcviz.report import analysis

    _grid(tmp_path)
    ds = wcviz.open_run(tmp_path / "tinynet-arctan-a0.5")
    measure = analysis.threshold_text(ds, analysis.select_threshold(ds))
    titles = [ax.get_title() for ax in sweep_figure(tmp_path).axes]
    assert any(t.startswith("fraction near zero") and measure in t for t in titles), titles

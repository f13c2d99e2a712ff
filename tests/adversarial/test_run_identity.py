"""Adversarial cases: same-named runs in two sub-folders of one root (issue 19, items 5 and 6).

``wcviz demo`` writes ``runs/digits-cnn_baseline_s0`` and ``wcviz reproduce digits --quick``
writes ``runs/reproduce-digits-quick/digits-cnn_baseline_s0``: a run was known by its folder's
name alone, so the export merged the two (12 runs, 9 ``run`` values, 3,507 duplicate keys),
figures overwrote each other, TensorBoard got 9 folders for 12 runs, and the accuracy table
showed two look-alike rows. A run's identity is now its path below the root, everywhere.
"""

from __future__ import annotations

import pandas as pd
import pytest

import _fixture_runs as fx
from _engines import framework
from wcviz.app import data
from wcviz.cli import main
from wcviz.record.reader import list_runs, open_run, open_runs, run_key
from wcviz.report import claims, tables

STUDY = "reproduce-digits-quick"
KEYS = ["run", "layer", "epoch", "statistic"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """The demo's runs at the top, a study of the same names but another recipe beside them."""
    root = tmp_path_factory.mktemp("mixed")
    for folder, epochs in ((root, 6), (root / STUDY, 4)):
        config = {"epochs": epochs}
        fx.seed_group(folder, "baseline", seeds=(0, 1), n_epochs=epochs, config=config)
        fx.seed_group(folder, "wc", seeds=(0, 1), n_epochs=epochs, config=config)
        fx.learnable_run(folder / "learnable-s0", n_epochs=epochs, config=config)
    return root


def _ids(root) -> list[str]:
    return [info.run_id for info in list_runs(root)[0]]


def test_a_runs_id_is_its_path_below_the_root(root):
    ids = _ids(root)
    assert len(ids) == len(set(ids)) == 10
    assert f"{STUDY}/baseline-s0" in ids and "baseline-s0" in ids
    assert sorted(str(ds.attrs["run_id"]) for ds in open_runs(root)) == sorted(ids)
    # opened alone (no root): its folder's name, as before
    assert open_run(root / STUDY / "wc-s1").attrs["run_id"] == "wc-s1"
    assert run_key(root, root / STUDY / "wc-s1") == f"{STUDY}/wc-s1"
    assert run_key(root / "wc-s1", root / "wc-s1") == "wc-s1"  # the root is the run


@pytest.mark.parametrize("fmt", ["csv", "parquet", "netcdf"])
def test_export_keeps_every_run_apart(root, tmp_path, fmt, capsys):
    if fmt == "parquet":
        framework("pyarrow")
    out = tmp_path / f"runs.{fmt}"
    assert main(["export", str(root), "--format", fmt, "--out", str(out)]) == 0
    if fmt == "csv":
        table = pd.read_csv(out, keep_default_na=False, na_values=[""])
    elif fmt == "parquet":
        table = pd.read_parquet(out)
    else:
        import xarray as xr
        table = xr.open_dataset(out).to_dataframe()
    assert sorted(table["run"].unique()) == sorted(_ids(root))
    assert not table.duplicated(KEYS).any()


def test_export_refuses_two_named_runs_of_one_name(root, tmp_path, capsys):
    rc = main(["export", str(root / "wc-s0"), str(root / STUDY / "wc-s0"),
               "--out", str(tmp_path / "x.csv")])
    assert rc != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "two runs are named 'wc-s0'" in err[0] and "pass the folder" in err[0]
    assert not (tmp_path / "x.csv").exists()


def test_tensorboard_export_writes_one_folder_per_run(root, tmp_path, capsys):
    framework("tensorboard")
    out = tmp_path / "tb"
    assert main(["export", str(root), "--format", "tensorboard", "--out", str(out),
                 "--no-histogram"]) == 0
    folders = {p.parent.relative_to(out).as_posix() for p in out.rglob("events.out.tfevents.*")}
    assert len(folders) == 10 and folders == set(_ids(root))  # one folder per run


@pytest.mark.slow
def test_figures_write_every_file_they_list(root, tmp_path, capsys):
    out = tmp_path / "figs"
    assert main(["figures", str(root), "--out", str(out), "--format", "png"]) == 0
    listed = [line.strip() for line in capsys.readouterr().out.splitlines()
              if line.strip().endswith(".png")]
    written = sorted(p.name for p in out.iterdir())
    assert len(listed) == len(set(listed)) == len(written)
    # one a/b trajectory per learnable run: both studies' learnable-s0
    assert {"ab_learnable-s0.png", f"ab_{STUDY}--learnable-s0.png"} <= set(written)


def test_dashboard_ids_and_datasets_agree(root):
    scan = data.scan(root)
    ids = [r.run_id for r in scan.runs]
    assert sorted(ids) == sorted(_ids(root))
    run = scan.by_id()[f"{STUDY}/wc-s0"]
    assert data.dataset(run).attrs["run_id"] == f"{STUDY}/wc-s0"
    names = data.names(list(scan.runs))
    assert len(set(names.values())) == len(names)  # no two legend entries alike


def test_table_names_each_study(root):
    table = tables.accuracy_table(root)
    assert sorted(table["study"].unique()) == ["", STUDY]
    assert len(table) == 6  # baseline, WC, learnable WC per study: never merged or refused
    header, cells = tables.display_rows(table)
    assert header[0] == "study"
    assert sorted({row[0] for row in cells}) == [".", STUDY]
    names = [row[header.index("model")] for row in cells]
    assert len(set(zip([row[0] for row in cells], names))) == len(cells)  # no look-alike rows
    # each study's WC gap is taken to its own baseline (both have the same gap: +2 points)
    wc = table[(table["method"] == "arctan") & (table["learnable"] == "")]
    assert sorted(wc["study"]) == ["", STUDY]
    assert wc["delta_best"].tolist() == pytest.approx([2.0, 2.0])


def test_compare_pairs_within_each_study_and_names_it(root):
    found = claims.compare_root(root)
    assert len(found) == 4
    studied = [r for r in found if r.wc.startswith(f"{STUDY}: ")]
    assert len(studied) == 2 and all(r.baseline.startswith(f"{STUDY}: ") for r in studied)
    for r in found:
        if r not in studied:
            assert not r.baseline.startswith(STUDY)


def test_compare_cli_output_tells_studies_apart(root, capsys):
    assert main(["compare", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"{STUDY}: WC a=0.8, b=0.5" in out

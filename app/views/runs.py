"""Runs page: every run under the root in one filterable table; selecting rows selects runs."""

import zlib

import streamlit as st

from wcviz.app import data, ui

#: How a missing cell reads (a run still being read, a run without validation accuracy):
#: empty, as the a, b of a baseline; Streamlit's default writes a literal "None".
EMPTY = ""

st.title("Runs")
scan = ui.page_scan()
if scan.problems:
    with st.expander(f"{len(scan.problems)} unreadable run store(s)", expanded=True,
                     icon=":material/warning:"):
        st.dataframe([{"path": p.path, "error": p.error} for p in scan.problems],
                     hide_index=True, width="stretch", placeholder=EMPTY)
if not scan.runs:
    st.info(f"No runs under {ui.md(scan.root)}. Record some with `wcviz demo` or `wcviz train`.")
    st.stop()

pending = data.prefetch(scan.runs)
table = data.runs_table(scan, accuracy="ready")
cols = st.columns([3, 2, 2, 2, 2])
text = cols[0].text_input("Filter", placeholder="any text: model, method, seed, ...", key="runs_filter")
choices = {}
for col, name in zip(cols[1:], ("status", "method", "model", "dataset")):
    options = sorted(set(table[name]) - {""})
    choices[name] = col.multiselect(name, options, key=f"runs_filter_{name}")
shown = data.filter_table(table, text, **choices).reset_index(drop=True)

shown_ids = list(shown["run"])
# Show the current selection (sidebar or earlier clicks) as selected rows of this table.
chosen = st.session_state.get(ui.SELECTED, [])
rows = [shown_ids.index(i) for i in chosen if i in shown_ids]
# The browser keeps a table's selection itself and reports it back on every rerun, whatever the
# script wrote into its state: a run picked in the sidebar was at once undone by the table's old,
# empty selection. So the table is a new widget (new key) for each (rows shown, rows selected),
# drawn with that selection as its default; only a click in it reports a change.
TABLE_KEY = f"{ui.RUNS_TABLE}_{zlib.crc32(repr((shown_ids, rows)).encode()):08x}"
built_for = list(chosen)  # the selection this table is drawn for


def _on_select() -> None:
    # The rerun a sidebar pick starts may also carry this table's state from before the table
    # took its new default; that report is stale, not a click: the selection it was drawn for
    # has changed since. A click in the table changes nothing else in its rerun.
    if list(st.session_state.get(ui.SELECTED, [])) != built_for:
        return
    rows = st.session_state[TABLE_KEY]["selection"]["rows"]
    picked = [shown_ids[i] for i in rows if i < len(shown_ids)]
    hidden = [i for i in st.session_state.get(ui.SELECTED, []) if i not in shown_ids]
    st.session_state[ui.SELECTED] = hidden + picked  # filtered-out selections stay selected


def _number_text(value) -> str:
    """A cell of a, b as the figures write it (``0.5``), empty where the method has none: a
    NaN cell read as a literal "None"."""
    return "" if value is None or value != value else f"{value:g}"


# Display only (the table's data keeps its numbers): a and b as text, empty for baselines; the
# model and dataset columns only when the runs differ in them (the caption names the one shared),
# so the table fits the page.
display = shown.assign(**{c: shown[c].map(_number_text) for c in ("a", "b")})
shared = {c: table[c].iloc[0] for c in ("model", "dataset") if len(table) and table[c].nunique() == 1}
st.dataframe(
    display, key=TABLE_KEY, on_select=_on_select, selection_mode="multi-row", hide_index=True,
    selection_default={"selection": {"rows": rows, "columns": []}}, placeholder=EMPTY,
    # What tells runs apart first; the accuracy in view without scrolling right.
    column_order=[c for c in ("run", "name", "best_val_test_acc", "status", "last_epoch", "method",
                              "a", "b", "learnable", "seed", "model", "dataset", "records",
                              "best_val_epoch") if c in shown.columns and c not in shared],
    width="stretch",
    column_config={
        "name": st.column_config.TextColumn(help="the run's name in figures and tables"),
        "best_val_test_acc": st.column_config.NumberColumn(
            "test acc at best val (%)", format="%.2f",
            help="test accuracy at the epoch of best validation accuracy, in % (as in "
                 "'wcviz table' and the demo's table)"),
        "best_val_epoch": st.column_config.NumberColumn("best val epoch", format="%g"),
        "records": st.column_config.NumberColumn(help="committed records (epoch 0 included)"),
        "last_epoch": st.column_config.NumberColumn("epochs", format="%g",
                                                    help="last recorded epoch"),
    },
)
st.caption(f"{len(shown)} of {len(table)} runs shown · {len(chosen)} selected"
           + "".join(f" · {c} {v}" for c, v in shared.items() if v) + ". "
           "Select rows (or use the sidebar) to choose the runs the other pages show.")


@st.fragment(run_every=1.0 if pending else None)
def _fill_in() -> None:
    """While stores are being opened in the background, say so; redraw once they all are."""
    left = data.prefetch(scan.runs)
    if left == 0 and pending:
        st.rerun(scope="app")
    if left:
        st.caption(f"Reading epochs and accuracy of {left} run(s) in the background…")


_fill_in()

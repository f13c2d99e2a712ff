"""The ``wcviz`` command: one entry point that dispatches to sub-command modules.

Each sub-command lives in the module that owns its concept and exposes
``<name>_main(argv: list[str], prog: str) -> int``. Modules are imported only when their
command runs, so ``wcviz inspect`` never imports the training package and ``wcviz --help``
is instant. Expected mistakes (:class:`wcviz.errors.WcvizError`) become one line on stderr
and exit status 2.

May import: every library layer (reparam, record, report, integrations); the training and
dashboard packages (:mod:`wcviz.training`, :mod:`wcviz.app`) only inside the command that runs
them.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from importlib.metadata import version

from wcviz.errors import WcvizError

# name -> (module, one-line help). The function called is ``<module>.<name>_main``.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("wcviz.training.cli", "train baseline, WC and learnable-WC nets on built-in data, offline, CPU"),
    "train": ("wcviz.training.cli", "one run of a paper preset (--list-presets shows them)"),
    "sweep": ("wcviz.training.cli", "the paper's a, b grid and seeds as independent runs"),
    "reproduce": ("wcviz.training.reproduce", "a named study (mnist1d, digits): runs, seeds, claims, public figures"),
    "inspect": ("wcviz.cli.runs", "a readable summary of one run store"),
    "export": ("wcviz.cli.runs", "runs as tidy long-form CSV or NetCDF"),
    "figures": ("wcviz.cli.figures", "paper-style figures (bands, near-zero, a/b) from runs"),
    "table": ("wcviz.cli.figures", "mean ± std accuracy table over seeds (md, tex, csv)"),
    "compare": ("wcviz.cli.figures", "the paper's claims over seeds: paired CIs, HOLDS/FAILS/INCONCLUSIVE"),
    "dash": ("wcviz.cli.dash", "start the Streamlit dashboard on a runs root"),
    "report": ("wcviz.cli.share", "one self-contained HTML file of runs, to share (opens offline)"),
    "import": ("wcviz.cli.share", "TensorBoard log dirs as run stores (histograms as quantiles)"),
}


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: wcviz COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run 'wcviz COMMAND --help' for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run one ``wcviz`` sub-command; returns the process exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"wcviz {version('wcviz')}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"wcviz: error: unknown command {name!r}; choose one of: {', '.join(COMMANDS)}",
              file=sys.stderr)
        return 2
    # A warning is one line too (no source path and line), e.g. a damaged run being skipped.
    previous = warnings.formatwarning
    warnings.formatwarning = lambda message, *_args, **_kw: f"wcviz {name}: warning: {message}\n"
    try:
        return _run(name, rest)
    finally:
        warnings.formatwarning = previous


def _run(name: str, rest: list[str]) -> int:
    """One sub-command, with its expected failures turned into one line and an exit status."""
    try:
        # Inside the try: a module that needs a missing extra raises wcviz.extras.MissingExtra.
        module = importlib.import_module(COMMANDS[name][0])
        code = int(getattr(module, f"{name}_main")(rest, prog=f"wcviz {name}") or 0)
        sys.stdout.flush()  # here, so that a closed pipe is caught below, not at exit
        return code
    except BrokenPipeError:
        # The reader went away (``wcviz inspect RUN | head -1``): not an error of ours. Point
        # stdout at devnull so that the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command killed by the pipe
    except WcvizError as err:
        from wcviz.cli.progress import clear

        clear()  # the error starts its own line, not the end of a progress line
        print(f"wcviz {name}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"wcviz {name}: interrupted", file=sys.stderr)
        return 130

"""``wcviz dash [RUNS_ROOT]``: serve the Streamlit dashboard (``app/``) on a runs root.

Streamlit runs in a child process (``python -m streamlit run app/main.py``), headless, without
usage statistics and without a file watcher: the dashboard only reads the stores, and nothing
leaves the machine. The runs root reaches the app through ``$WCVIZ_RUNS_ROOT``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

from wcviz.errors import WcvizError

#: Environment variable through which ``wcviz dash`` hands the runs root to the app; the one
#: definition (``app/`` imports it from here).
ROOT_ENV = "WCVIZ_RUNS_ROOT"

DEFAULT_PORT = 8501  # Streamlit's own default, so habits and firewall rules carry over


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Start the wcviz dashboard (Streamlit) on a runs root; read-only.")
    parser.add_argument("runs_root", nargs="?", default="runs", metavar="RUNS_ROOT",
                        help="directory holding one sub-directory per run (default: ./runs)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"TCP port to serve on (default: {DEFAULT_PORT})")
    parser.add_argument("--host", default="localhost",
                        help="address to bind (default: localhost; 0.0.0.0 serves the network)")
    return parser


def app_entry() -> Path:
    """Path of the dashboard's entry script, ``app/main.py`` of the installed ``app`` package.

    Raises:
        WcvizError: the package is missing (wcviz installed without its ``app/`` directory).
    """
    spec = importlib.util.find_spec("app")
    for location in (spec.submodule_search_locations or []) if spec else []:
        entry = Path(location) / "main.py"
        if entry.is_file():
            return entry
    raise WcvizError("the dashboard package 'app' is not installed; install wcviz from its source "
                     "tree with `pip install -e .`")


def streamlit_command(entry: Path, host: str, port: int) -> list[str]:
    """The child command line: headless, no usage statistics, no file watching, no dev mode."""
    return [sys.executable, "-m", "streamlit", "run", str(entry),
            "--server.headless=true",
            "--browser.gatherUsageStats=false",
            f"--server.address={host}",
            f"--server.port={port}",
            f"--browser.serverAddress={host}",
            f"--browser.serverPort={port}",
            "--server.fileWatcherType=none",
            "--server.runOnSave=false",
            "--global.developmentMode=false",
            "--client.toolbarMode=viewer"]


def dash_main(argv: list[str], prog: str = "wcviz dash") -> int:
    """Run ``wcviz dash``: serve the dashboard until interrupted; returns Streamlit's exit status."""
    args = _parser(prog).parse_args(argv)
    root = Path(args.runs_root).expanduser()
    if not root.is_dir():
        raise WcvizError(f"runs root {str(root)!r} is not a directory; record runs first "
                         "(`wcviz demo` writes ./runs) or pass RUNS_ROOT")
    if not 0 < args.port < 65536:
        raise WcvizError(f"--port {args.port} is not a TCP port; pick one in 1..65535")
    env = {**os.environ, ROOT_ENV: str(root.resolve()),
           "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    print(f"wcviz dash: serving {root.resolve()} at http://{args.host}:{args.port}  "
          "(Ctrl+C stops)", flush=True)
    child = subprocess.Popen(streamlit_command(app_entry(), args.host, args.port), env=env)
    # A SIGTERM to us (a service manager, a test) must stop the server too, not orphan it.
    previous = signal.signal(signal.SIGTERM, lambda *_: child.terminate())
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.terminate()  # the terminal sent SIGINT to both; make sure it ends
        child.wait(timeout=15)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)

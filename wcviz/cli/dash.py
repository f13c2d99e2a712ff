"""``wcviz dash [RUNS_ROOT]``: serve the Streamlit dashboard (:mod:`wcviz.app`) on a runs root.

Streamlit runs in a child process (``python -m streamlit run .../wcviz/app/main.py -- ROOT``),
headless, without usage statistics and without a file watcher: the dashboard only reads the
stores, and nothing leaves the machine. The runs root is the entry script's argument (after
``--``); this module imports nothing of the app, which sits above the command line.
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
from wcviz.extras import require

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
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="another host name the browser may use to reach the server "
                             "(repeatable; the bound address, localhost and this machine's "
                             "names are allowed already)")
    return parser


#: Names of this machine under which a browser on it reaches a local server.
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


def allowed_hosts(host: str, extra=()) -> list[str]:
    """The Host header values the server accepts: a page on another name (DNS rebinding: an
    attacker's name resolving to this machine) gets no WebSocket, so cannot read the runs.

    The bound address and :data:`LOCAL_NAMES`; serving the network (``0.0.0.0``, ``::``) also
    allows this machine's host names and addresses; plus ``extra`` (``--allow-host``).
    """
    import socket

    names = [*LOCAL_NAMES]
    if host not in ("0.0.0.0", "::", ""):
        names.append(host)
    else:
        names += [socket.gethostname(), socket.getfqdn()]
        try:
            names += socket.gethostbyname_ex(socket.gethostname())[2]
        except OSError:  # no resolver entry for our own name: the names above remain
            pass
    names += list(extra)
    return list(dict.fromkeys(n for n in names if n))


def app_entry() -> Path:
    """Path of the dashboard's entry script, ``main.py`` of the installed :mod:`wcviz.app`.

    Located, not imported: the app sits above the command line.

    Raises:
        WcvizError: the package is missing (wcviz installed without its ``app/`` directory).
    """
    spec = importlib.util.find_spec("wcviz.app")
    for location in (spec.submodule_search_locations or []) if spec else []:
        entry = Path(location) / "main.py"
        if entry.is_file():
            return entry
    raise WcvizError("the dashboard package 'wcviz.app' is not installed; install wcviz from its "
                     "source tree with `pip install -e .`")


def streamlit_command(entry: Path, root: Path, host: str, port: int, extra_hosts=()) -> list[str]:
    """The child command line: headless, no usage statistics, no file watching, no dev mode,
    and the safe server options: only :func:`allowed_hosts` in the Host header, CORS and XSRF
    protection on (whatever a config.toml says), no static files, no agent API, and errors
    shown without tracebacks or paths (expected ones are the app's own one-line messages).
    The runs ``root`` goes last, after ``--``: Streamlit passes it to ``entry`` as its
    ``sys.argv[1]``."""
    hosts = [f"--server.allowedHosts={name}" for name in allowed_hosts(host, extra_hosts)]
    return [sys.executable, "-m", "streamlit", "run", str(entry), *hosts,
            "--server.enableCORS=true",
            "--server.enableXsrfProtection=true",
            "--server.enableStaticServing=false",
            "--server.enableAgentApi=false",
            "--client.showErrorDetails=none",
            "--server.headless=true",
            "--browser.gatherUsageStats=false",
            f"--server.address={host}",
            f"--server.port={port}",
            f"--browser.serverAddress={host}",
            f"--browser.serverPort={port}",
            "--server.fileWatcherType=none",
            "--server.runOnSave=false",
            "--global.developmentMode=false",
            "--client.toolbarMode=viewer",
            "--", str(root)]


def dash_main(argv: list[str], prog: str = "wcviz dash") -> int:
    """Run ``wcviz dash``: serve the dashboard until interrupted; returns Streamlit's exit status."""
    args = _parser(prog).parse_args(argv)
    require("dash", needed_by="the dashboard")
    root = Path(args.runs_root).expanduser()
    if not root.is_dir():
        raise WcvizError(f"runs root {str(root)!r} is not a directory; record runs first "
                         "(`wcviz demo` writes ./runs) or pass RUNS_ROOT")
    if not 0 < args.port < 65536:
        raise WcvizError(f"--port {args.port} is not a TCP port; pick one in 1..65535")
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    print(f"wcviz dash: serving {root.resolve()} at http://{args.host}:{args.port}  "
          "(Ctrl+C stops)", flush=True)
    command = streamlit_command(app_entry(), root.resolve(), args.host, args.port,
                                args.allow_host)
    child = subprocess.Popen(command, env=env)
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

"""Where runs execute: this machine (``--executor local``) or a Slurm cluster (``--executor
slurm``, see :mod:`wcviz.training.slurm`; imported only then, so submitit stays optional).

The local executor runs a sweep's runs one after another in this process (``--parallel 1``)
or as ``--parallel N`` subprocesses, each pinned to one visible GPU through
``CUDA_VISIBLE_DEVICES``: the GPU running the fewest of the sweep's runs, the first such in
order, so runs spread round-robin and a GPU freed early takes the next run. This module also
holds the Slurm job options (:class:`SlurmOptions`; no submitit import).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from wcviz.errors import WcvizError
from wcviz.record.atomic import write_atomic
from wcviz.record.locks import writer_alive
from wcviz.record.runfolder import (CANCELLED, FAILED, FINISHED, INTERRUPTED, PENDING,
                                     REQUEUED, RESUME, RUNNING, STORE_NAME)
from wcviz.record.schema import read_root_attrs
from wcviz.record.store import RELEASED
from wcviz.training.sweep import PlannedRun, SweepSpec

EXECUTORS = ("local", "slurm")

# ----------------------------------------------------------------------------- GPU pinning


def visible_gpus(env: dict) -> list[str]:
    """The GPUs this process may hand out: ``CUDA_VISIBLE_DEVICES`` entries when it is set
    (indices, UUIDs or MIG ids, kept as given; empty: none), else ``0..n-1`` for the n GPUs
    torch sees."""
    if "CUDA_VISIBLE_DEVICES" in env:
        return [g.strip() for g in env["CUDA_VISIBLE_DEVICES"].split(",") if g.strip()]
    import torch  # only here: a CPU-only user never pays for CUDA discovery

    return [str(i) for i in range(torch.cuda.device_count())]


def pins(cfg_device: str) -> bool:
    """Whether a run with this ``device`` setting may be pinned: not when it asks for the CPU
    or for an explicit ``cuda:N`` (the index would point past a one-GPU view)."""
    return cfg_device in ("auto", "cuda")


class GpuPool:
    """Hands each starting run the visible GPU with the fewest running runs (first on ties)."""

    def __init__(self, gpus: list[str]):
        self.load = {g: 0 for g in gpus}

    def take(self) -> str | None:
        """The GPU for the next run (None when there are no GPUs); counts it as busy."""
        if not self.load:
            return None
        gpu = min(self.load, key=self.load.get)  # dicts keep order: ties go to the first
        self.load[gpu] += 1
        return gpu

    def give_back(self, gpu: str | None) -> None:
        if gpu is not None:
            self.load[gpu] -= 1


def run_env(base: dict, gpu: str | None) -> dict:
    """The environment of one run's process: ``base`` with ``CUDA_VISIBLE_DEVICES`` pinned."""
    env = dict(base)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    return env


# ----------------------------------------------------------------------------- preconditions


def preflight(todo: list[PlannedRun]) -> None:
    """What every run of a local sweep needs, checked once before any process starts: each
    dataset's files (once per dataset and data root) and CUDA where a run asks for it.

    Raises:
        WcvizError: one line naming the problem and the fix (no run was started).
    """
    from wcviz.training.datasets import check_data

    for dataset, root, download in sorted({(p.cfg.dataset, p.cfg.data_root, p.cfg.download)
                                           for p in todo}):
        try:
            check_data(dataset, root, download)
        except WcvizError as err:
            raise WcvizError(f"{err} (no run was started)") from None
    if any(p.cfg.device.startswith("cuda") for p in todo):
        import torch

        if not torch.cuda.is_available():
            raise WcvizError("the runs ask for --device cuda but CUDA is not available here; "
                             "use --device cpu or auto (no run was started)")


def sweep_lock(plan: list[PlannedRun], runs: Path):
    """Hold a lock for this sweep's runs in ``runs`` while the sweep runs (an open file; closing
    it, or the process ending, releases it). A second identical sweep started meanwhile is
    refused in one line instead of starting the same runs again (and truncating their logs).

    Raises:
        WcvizError: the same sweep is running already.
    """
    import fcntl
    import hashlib

    digest = hashlib.sha1("\n".join(sorted(p.run_id for p in plan)).encode()).hexdigest()[:12]
    path = Path(runs) / f".sweep-{digest}.lock"
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise WcvizError(f"the same sweep is already running in {runs} (it holds {path.name}); "
                         "wait for it to end, then run this again to see its results or "
                         "resume what it left") from None
    return handle


# ----------------------------------------------------------------------------- local executor


def run_command(p: PlannedRun, spec: SweepSpec) -> list[str]:
    """``python -m wcviz.training ...`` for one planned run (resuming it when it was started)."""
    cmd = [sys.executable, "-m", "wcviz.training", "--preset", spec.preset, "--method",
           spec.method, "--seed", str(p.seed), "--runs", str(spec.runs), "--run-id", p.run_id,
           "--no-progress"]
    for s in p.sets:
        cmd += ["--set", s]
    if p.state == RESUME:
        cmd.append("--resume")
    return cmd


def run_local(todo: list[PlannedRun], spec: SweepSpec, parallel: int = 1) -> int:
    """Run the planned runs on this machine, ``parallel`` at a time; returns the number of
    failed runs."""
    if parallel == 1:
        return _run_in_process(todo)
    base = dict(os.environ)  # share the cores among the runs instead of oversubscribing them
    base.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // parallel)))
    pool = GpuPool(visible_gpus(base))
    running, failed, queue = [], 0, list(todo)
    while queue or running:
        while queue and len(running) < parallel:
            p = queue.pop(0)
            gpu = pool.take() if pins(p.cfg.device) else None
            log = open(Path(spec.runs) / f"{p.run_id}.log", "w")
            print(f"[sweep] start {p.run_id} ({p.state})"
                  + (f" on GPU {gpu}" if gpu is not None else ""), flush=True)
            proc = subprocess.Popen(run_command(p, spec), env=run_env(base, gpu), stdout=log,
                                    stderr=subprocess.STDOUT)
            running.append((p, proc, log, gpu))
        time.sleep(0.2)
        for item in list(running):
            p, proc, log, gpu = item
            if proc.poll() is None:
                continue
            running.remove(item)
            log.close()
            pool.give_back(gpu)
            failed += proc.returncode != 0
            print(f"[sweep] {'done' if proc.returncode == 0 else 'FAILED'} {p.run_id}"
                  + (f" (exit {proc.returncode}; log {log.name})" if proc.returncode else ""),
                  flush=True)
    return failed


def _run_in_process(todo: list[PlannedRun]) -> int:
    """One run after another in this process; a failed run (e.g. NaN loss) does not stop
    the sweep."""
    from wcviz.training.loop import run

    failed = 0
    for p in todo:
        print(f"[sweep] start {p.run_id} ({p.state})", flush=True)
        try:
            run(p.cfg, p.run_dir, resume=p.state == RESUME, keep_memory=True)
        except WcvizError as err:
            failed += 1
            print(f"[sweep] FAILED {p.run_id}: {err}", file=sys.stderr, flush=True)
            continue
        print(f"[sweep] done {p.run_id}", flush=True)
    return failed


# ----------------------------------------------------------------------------- Slurm options


def parse_minutes(text: str) -> int:
    """A Slurm time limit as whole minutes: ``90``, ``1:30:00``, ``2-00:00`` (D-HH:MM)."""
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not m:
        raise WcvizError(f"--time expects minutes, HH:MM:SS or D-HH:MM, got {text!r}")
    days, a, b, c = m.groups()
    if days is None and b is None:  # plain minutes
        minutes = int(a)
    elif days is not None:  # D-HH[:MM[:SS]]
        minutes = int(days) * 1440 + int(a) * 60 + int(b or 0) + (1 if c and int(c) else 0)
    else:  # HH:MM[:SS] (sbatch reads a bare MM:SS, which nobody means for a training job)
        minutes = int(a) * 60 + int(b) + (1 if c and int(c) else 0)
    if minutes < 1:
        raise WcvizError(f"--time must be at least one minute, got {text!r}")
    return minutes


def _typed(value: str):
    """``--slurm`` values: integers and true/false as such (submitit's types), else text."""
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


@dataclass(frozen=True)
class SlurmOptions:
    """The Slurm job options of ``wcviz train/sweep --executor slurm`` (the command line's
    ``--partition``, ``--gpus``, ... as plain values; the CLI builds it)."""

    partition: str | None = None
    gpus: int = 0  # per node (train) or per run (sweep); 0: none asked for
    cpus: int | None = None  # per task; also torch's thread count in the job
    mem_gb: float | None = None  # per node, GB
    time_limit: str = "60"  # minutes, HH:MM:SS or D-HH:MM
    account: str | None = None
    qos: str | None = None
    extra: tuple[str, ...] = ()  # KEY=VALUE, any other sbatch option


def slurm_parameters(options: SlurmOptions, valid: set[str]) -> dict:
    """The submitit ``SlurmExecutor.update_parameters`` keywords from the options.

    Args:
        options: the job options.
        valid: the parameter names submitit knows; other ``--slurm`` keys go to sbatch as they
            are (``additional_parameters``), so any sbatch option can be given.
    """
    params: dict = {"time": parse_minutes(options.time_limit)}
    for key, value in (("partition", options.partition), ("cpus_per_task", options.cpus),
                       ("account", options.account), ("qos", options.qos)):
        if value is not None:
            params[key] = value
    if options.gpus:
        params["gpus_per_node"] = options.gpus
    if options.mem_gb is not None:
        params["mem"] = f"{int(options.mem_gb * 1024)}MB"
    extra = {}
    for item in options.extra:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-")
        if not sep or not key:
            raise WcvizError(f"--slurm expects KEY=VALUE (an sbatch option), got {item!r}")
        if key.replace("-", "_") in valid:
            params[key.replace("-", "_")] = _typed(value)
        else:
            extra[key] = value
    if extra:
        params["additional_parameters"] = {**params.get("additional_parameters", {}), **extra}
    return params


# ----------------------------------------------------------------------------- Slurm jobs

#: Under the runs root: submitit's folder and the per-run job records (hidden from run scans).
SLURM_DIR = ".slurm"


def _record_path(runs: Path, run_id: str) -> Path:
    return Path(runs) / SLURM_DIR / "runs" / f"{run_id}.json"


def write_job_record(runs: Path, run_id: str, job_id: str) -> None:
    """Remember which Slurm job trains ``run_id`` (atomically: a reader never sees half)."""
    path = _record_path(runs, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps({"job_id": job_id,
                                   "submitted": time.strftime("%Y-%m-%dT%H:%M:%S%z")}))


def read_job_record(runs: Path, run_id: str) -> dict:
    """The run's job record (``job_id``, ``submitted``), or ``{}`` when it has none."""
    try:
        return json.loads(_record_path(runs, run_id).read_text())
    except (OSError, ValueError):
        return {}


def queue_states() -> dict[str, str] | None:
    """Slurm's queue: job id (array tasks as ``<array>_<task>``, submitit's form) -> state
    (PENDING, RUNNING, ...). None when Slurm cannot be asked (no squeue, controller down)."""
    if shutil.which("squeue") is None:
        return None
    try:
        out = subprocess.run(["squeue", "--noheader", "--array", "--format=%i %T"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return dict(line.split(None, 1) for line in out.stdout.splitlines() if " " in line)


# ----------------------------------------------------------------------------- status


def run_status(run_dir: Path, job_id: str | None, queue: dict | None) -> tuple[str, int | None]:
    """One run's state and committed record count, from its store and its Slurm job.

    States (:data:`wcviz.record.runfolder.JOB_STATES`): ``pending`` (no store yet),
    ``running``, ``finished``, ``failed``, ``requeued`` (started, and its job waits in the
    queue again: preempted or timed out), ``interrupted`` (started, unfinished, and nothing
    runs it any more: rerun the sweep to resume it), ``cancelled`` (its job left the queue
    without ever starting, e.g. ``scancel`` while pending: rerun the sweep to submit it).

    Args:
        run_dir: the run's folder.
        job_id: the Slurm job submitted for it (None: none, e.g. a local sweep).
        queue: :func:`queue_states` (None: Slurm's queue is unknown here).
    """
    store = Path(run_dir) / STORE_NAME
    queued = None if queue is None or job_id is None else queue.get(job_id)
    gone = job_id is not None and queue is not None and queued is None  # left the queue
    if not store.exists():
        if not gone:
            return PENDING, None
        # left the queue before recording: it failed if it ran, else it was cancelled
        return (FAILED if job_started(Path(run_dir).parent, job_id) else CANCELLED), None
    try:
        attrs = read_root_attrs(store)
    except WcvizError as err:
        return f"broken: {err}", None
    status, n = str(attrs.get("status")), int(attrs["n_committed"])
    if status == FINISHED:
        return status, n
    if queued is not None:  # Slurm's own words: PENDING, REQUEUED, RUNNING, ...
        return (REQUEUED if queued.startswith(("PENDING", "REQUEUE")) else RUNNING), n
    if status == RUNNING and (gone or writer_alive(attrs) is False or attrs.get(RELEASED)):
        return INTERRUPTED, n
    return status, n


def job_started(runs: Path, job_id: str) -> bool:
    """Whether Slurm job ``job_id`` ever ran: submitit writes its log files
    (``<runs>/.slurm/<job>/<job>_<task>_log.out``) only once the job starts."""
    folder = Path(runs) / SLURM_DIR / str(job_id)
    return any(folder.glob(f"{job_id}_*_log.*"))


def status_rows(plan: list[PlannedRun], runs: Path) -> list[dict]:
    """``wcviz sweep --status``: per planned run its state, records, Slurm job and queue state."""
    queue = queue_states()
    rows = []
    for p in plan:
        job_id = read_job_record(runs, p.run_id).get("job_id")
        state, n = run_status(p.run_dir, job_id, queue)
        in_queue = None if queue is None or job_id is None else queue.get(job_id, "-")
        rows.append({"run": p.run_id, "state": state, "records": n, "job": job_id,
                     "queue": in_queue})
    return rows


def format_status(rows: list[dict]) -> str:
    """The status rows as an aligned table with a count per state."""
    width = max(len(r["run"]) for r in rows)
    lines = [f"{'run':<{width}}  {'state':<11}  {'records':>7}  {'slurm job':<12}  queue"]
    for r in rows:
        records = "-" if r["records"] is None else str(r["records"])
        lines.append(f"{r['run']:<{width}}  {r['state']:<11}  {records:>7}  "
                     f"{r['job'] or '-':<12}  {r['queue'] or '-'}")
    counts = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    lines.append(f"{len(rows)} runs: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return "\n".join(lines)

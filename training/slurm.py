"""Sweeps and (multi-node) training runs as Slurm jobs, through submitit.

Each run is one Slurm job (a sweep's runs go in one job array) that calls :class:`RunJob` in
the job: it looks at the run folder and starts the run, resumes it from its last checkpoint, or
returns when it is finished. That makes the job restartable as it is, so submitit's
checkpointing hook (:class:`submitit.helpers.Checkpointable`: on the preemption or time-limit
signal, USR2, requeue the same call) makes a preempted or timed-out job continue where its last
checkpoint left off, with every record once (the store resumes at its committed count).

Slurm's files live in ``<runs>/.slurm/``: submitit's job scripts, pickles and logs
(``<job id>/<job id>_<task>_log.{out,err}``) and one small record per run naming its job id
(``runs/<run id>.json``), read by ``wcviz sweep --status``. The runs root must be on a
filesystem that the login node and every compute node share.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
from pathlib import Path

from wcviz.extras import require

# Before the import below: without submitit, one clear line instead of a traceback.
require("slurm", needed_by="wcviz.training.slurm")

import submitit
from submitit.core.utils import FailedJobError

from wcviz.training.executors import (SLURM_DIR, SlurmOptions, queue_states, read_job_record,
                                      slurm_parameters, write_job_record)
from wcviz.training.sweep import PlannedRun, SweepSpec
from wcviz.record.config import run_state
from wcviz.record.runfolder import CONFLICT, DONE, RESUME, read_summary
from wcviz.errors import WcvizError


class RunJob(submitit.helpers.Checkpointable):
    """One training run inside a Slurm job: one task, or one task per DDP process.

    Every start (the first, and each after a requeue) reads the run folder, so the same call
    is right after any interruption: ``checkpoint`` (inherited) resubmits it unchanged.
    """

    def __init__(self, cfg, run_dir: Path):
        self.cfg = cfg
        self.run_dir = Path(run_dir)

    def __call__(self) -> dict:
        from wcviz.training.loop import run

        env = submitit.JobEnvironment()
        if env.num_tasks > 1:  # DDP: MASTER_ADDR/PORT, RANK, WORLD_SIZE, LOCAL_RANK from Slurm
            # All GPUs of the node stay visible; each process takes cuda:LOCAL_RANK.
            submitit.helpers.TorchDistributedEnvironment().export(
                set_cuda_visible_devices=False, overwrite=True)
        _use_allocated_cpus()
        # Every rank decides before any rank writes: rank 0 creates the store only after the
        # process group forms, which needs every rank to have got here.
        state = run_state(self.run_dir, self.cfg.recipe())
        if state == CONFLICT:
            raise WcvizError(f"run {self.run_dir} was recorded with a different config; "
                             "remove it or use another --runs")
        if state == DONE:
            return read_summary(self.run_dir)
        if env.global_rank == 0:
            verb = "resuming" if state == RESUME else "starting"
            print(f"[slurm] job {env.job_id}: {verb} {self.run_dir}", flush=True)
        result = run(self.cfg, self.run_dir, resume=state == RESUME).as_dict()
        if env.global_rank == 0:
            print(f"[slurm] job {env.job_id}: {result['status']} {self.run_dir} "
                  f"({result['epochs']} epochs)", flush=True)
        return result


def _use_allocated_cpus() -> None:
    """torch's thread count = the CPUs Slurm gave the task (else torch counts the node's)."""
    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if cpus and cpus.isdigit():
        import torch

        torch.set_num_threads(int(cpus))


def make_executor(runs: Path, options: SlurmOptions, job_name: str,
                  **resources) -> submitit.SlurmExecutor:
    """A submitit SlurmExecutor writing under ``<runs>/.slurm``, with the job options.

    Raises:
        WcvizError: no ``sbatch`` here, or an option sbatch/submitit refuses.
    """
    # _valid_parameters: submitit's own list of update_parameters keywords (sbatch's names).
    params = {**slurm_parameters(options, submitit.SlurmExecutor._valid_parameters()),
              **resources, "job_name": job_name}
    if shutil.which("sbatch") is None:
        raise WcvizError("--executor slurm needs Slurm's sbatch on the PATH; run on the "
                         "cluster's login node, or use --executor local")
    ex = submitit.SlurmExecutor(folder=Path(runs).resolve() / SLURM_DIR / "%j")
    try:
        ex.update_parameters(**params)
    except ValueError as err:
        first = str(err).splitlines()[0]
        raise WcvizError(f"Slurm option refused: {first}; see 'sbatch --help' and --slurm") \
            from None
    return ex


def submit_sweep(todo: list[PlannedRun], spec: SweepSpec,
                 options: SlurmOptions) -> list[tuple[str, str]]:
    """Submit the runs not already queued, as one job array; returns (run id, job id) pairs.

    A run whose recorded job is still in Slurm's queue is left alone (two jobs must never write
    one run).
    """
    runs = Path(spec.runs)
    queue = queue_states() or {}  # unknown: sbatch will say why it cannot submit either
    fresh = []
    for p in todo:
        job_id = queued_job(runs, p.run_id, queue)
        if job_id is not None:
            print(f"[slurm] {p.run_id}: already queued as job {job_id} "
                  f"({queue[job_id]}); not submitted again", flush=True)
        else:
            fresh.append(p)
    if not fresh:
        return []
    ex = make_executor(runs, options, f"wcviz-{spec.preset}", nodes=1, ntasks_per_node=1)
    jobs = []
    with _sbatch_errors(), ex.batch():  # one job array: a Slurm task per run, same resources
        for p in fresh:
            jobs.append(ex.submit(RunJob(p.cfg, p.run_dir)))
    out = []
    for p, job in zip(fresh, jobs):
        write_job_record(runs, p.run_id, job.job_id)
        out.append((p.run_id, job.job_id))
    return out


def queued_job(runs: Path, run_id: str, queue: dict) -> str | None:
    """The job recorded for the run when it is still in Slurm's queue (else None)."""
    job_id = read_job_record(runs, run_id).get("job_id")
    return job_id if job_id in queue else None


@contextlib.contextmanager
def _sbatch_errors():
    """sbatch's refusal (bad partition, account, option...) as one line, not a traceback.

    submitit prints sbatch's stderr and raises FailedJobError with it; the print is caught so
    that the message appears once.
    """
    printed = io.StringIO()
    try:
        with contextlib.redirect_stderr(printed):
            yield
    except FailedJobError as err:
        lines = [ln for ln in str(err).splitlines() if ln.strip()] or ["(no message)"]
        raise WcvizError(f"sbatch refused the job: {lines[-1].strip()}; check --partition, "
                         "--account, --qos and --slurm") from None
    except BaseException:
        sys.stderr.write(printed.getvalue())
        raise
    sys.stderr.write(printed.getvalue())


def submit_train(cfg, run_dir: Path, options: SlurmOptions, nnodes: int = 1,
                 nproc: int = 1) -> str:
    """Submit one run as one job of ``nnodes`` nodes × ``nproc`` tasks (DDP when more than
    one); returns the job id."""
    runs = run_dir.parent
    job_id = queued_job(runs, run_dir.name, queue_states() or {})
    if job_id is not None:
        raise WcvizError(f"run {run_dir} is already queued as job {job_id}; wait for it, or "
                         f"scancel {job_id} first")
    ex = make_executor(runs, options, f"wcviz-{run_dir.name}", nodes=nnodes,
                       ntasks_per_node=nproc)
    with _sbatch_errors():
        job = ex.submit(RunJob(cfg, run_dir))
    write_job_record(runs, run_dir.name, job.job_id)
    return job.job_id

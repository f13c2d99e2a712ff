"""A real one-node Slurm cluster for the tests, from Debian's ``slurm-wlm`` and ``munge``.

Everything lives in one temporary folder: a fresh munge key and ``munged`` on its own socket,
a ``slurm.conf`` for this host (its core count, free ports), ``slurmctld`` and ``slurmd`` in
the foreground. ``SLURM_CONF`` points the client commands (sbatch, squeue, scontrol, and those
that submitit and the jobs call) at it. Needs root (slurmd starts jobs as their user).
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import time
from pathlib import Path

from _cli import free_port

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "squeue", "scontrol", "scancel", "sinfo")


def missing() -> str | None:
    """Why a cluster cannot start here (None: it can)."""
    absent = [c for c in DAEMONS + CLIENTS if shutil.which(c) is None and
              not Path("/usr/sbin", c).exists()]
    if absent:
        return (f"Slurm test cluster needs Debian's slurm-wlm and munge (missing: "
                f"{', '.join(absent)}); apt-get install slurm-wlm munge")
    if os.geteuid() != 0:
        return "Slurm test cluster needs root (slurmd starts the jobs)"
    return None


def _exe(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))



class Cluster:
    """Start with :meth:`start`, stop with :meth:`stop` (jobs cancelled, daemons by PID)."""

    def __init__(self, folder: Path):
        self.dir = Path(folder)
        self.conf = self.dir / "slurm.conf"
        self.procs: list[subprocess.Popen] = []
        self.node = socket.gethostname().split(".")[0]

    def start(self, timeout: float = 60) -> "Cluster":
        for sub in ("state", "spool", "log"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self._munge()
        self.conf.write_text(self._config())
        os.environ["SLURM_CONF"] = str(self.conf)
        self._daemon("slurmctld", "-D", "-f", str(self.conf))
        self._daemon("slurmd", "-D", "-f", str(self.conf), "-N", self.node)
        self._wait_idle(timeout)
        return self

    def _munge(self) -> None:
        key = self.dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(stat.S_IRUSR | stat.S_IWUSR)  # munged refuses a key others can read
        self.munge_socket = self.dir / "munge.sock"
        self._daemon("munged", "-F", "--force", f"--socket={self.munge_socket}",
                     f"--key-file={key}", f"--pid-file={self.dir / 'munged.pid'}",
                     f"--seed-file={self.dir / 'munged.seed'}",
                     f"--log-file={self.dir / 'log' / 'munged.log'}")
        _wait(lambda: self.munge_socket.exists(), 20, "munged did not create its socket",
              self)

    def _config(self) -> str:
        d = self.dir
        return "\n".join([
            "ClusterName=wcviztest",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={free_port()}", f"SlurmdPort={free_port()}",
            "SlurmUser=root", "SlurmdUser=root",
            "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={d / 'state'}", f"SlurmdSpoolDir={d / 'spool'}",
            f"SlurmctldPidFile={d / 'slurmctld.pid'}", f"SlurmdPidFile={d / 'slurmd.pid'}",
            f"SlurmctldLogFile={d / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={d / 'log' / 'slurmd.log'}",
            # No cgroups in a container: plain process tracking, no task binding.
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "MpiDefault=none",
            "SchedulerType=sched/builtin",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU",  # jobs share by CPU
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none", "JobCompType=jobcomp/none",
            "ReturnToService=2", "KillWait=5", "MinJobAge=600", "InactiveLimit=0",
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} State=UNKNOWN",
            f"PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
            ""])

    def _daemon(self, name: str, *args: str) -> None:
        log = open(self.dir / "log" / f"{name}.out", "w")
        self.procs.append(subprocess.Popen([_exe(name), *args], stdout=log,
                                           stderr=subprocess.STDOUT))
        log.close()

    def _wait_idle(self, timeout: float) -> None:
        def idle() -> bool:
            out = subprocess.run(["sinfo", "--noheader", "--format=%T"], capture_output=True,
                                 text=True)
            return out.returncode == 0 and out.stdout.strip() == "idle"

        _wait(idle, timeout, "the Slurm node did not become idle", self)

    def logs(self) -> str:
        """The daemons' last lines (for a failing test's message)."""
        out = []
        for f in sorted((self.dir / "log").glob("*")):
            out.append(f"== {f.name}\n" + "\n".join(f.read_text(errors="replace")
                                                     .splitlines()[-15:]))
        return "\n".join(out)

    def stop(self) -> None:
        """Cancel every job of this private cluster, then end the daemons by PID."""
        subprocess.run(["scancel", "--full", "--user=root"], capture_output=True)
        try:
            _wait(lambda: subprocess.run(["squeue", "--noheader"], capture_output=True,
                                         text=True).stdout.strip() == "", 30, "", None)
        except AssertionError:
            pass  # leave it to the daemons' shutdown
        for proc in reversed(self.procs):  # slurmd, slurmctld, munged
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if os.environ.get("SLURM_CONF") == str(self.conf):
            del os.environ["SLURM_CONF"]


def _wait(ready, timeout: float, message: str, cluster: Cluster | None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if ready():
            return
        time.sleep(0.2)
    raise AssertionError(message + ("\n" + cluster.logs() if cluster else ""))

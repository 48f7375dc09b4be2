"""A real one-node Slurm cluster for the tests (Debian's slurm-wlm + munge), started as root.

:func:`start_cluster` writes a munge key and a ``slurm.conf`` (this host as the only node,
``CPUs=2``, every state/spool/log/socket file in one temporary folder, free ports, no
accounting) and starts ``munged``, ``slurmctld`` and ``slurmd`` in the foreground as children of
this process; :meth:`SlurmCluster.stop` stops exactly those PIDs (TERM, then KILL). Clients
(``sbatch``, ``squeue``, parsl's ``SlurmProvider``) find the cluster through ``SLURM_CONF``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel")


def why_not_available() -> str | None:
    """None when a one-node Slurm can be started here, else the reason."""
    if os.environ.get("BONDML_NO_SLURM") == "1":
        return "BONDML_NO_SLURM=1"
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "a one-node Slurm needs root (munged/slurmd); run the suite as root (CI does)"
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        return f"Slurm/munge binaries missing ({', '.join(missing)}): run scripts/install-system-deps.sh as root"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SlurmCluster:
    """A running one-node cluster: ``conf`` (the slurm.conf), ``env`` (with ``SLURM_CONF``)."""

    root: Path
    conf: Path
    node: str
    partition: str
    env: dict[str, str]
    procs: list[subprocess.Popen] = field(default_factory=list)

    def run(self, *cmd: str, check: bool = True, timeout: float = 30) -> str:
        """A Slurm client command against this cluster; its stdout."""
        r = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
        return r.stdout

    def jobs(self) -> list[dict[str, str]]:
        """Jobs in the queue: id, name, state."""
        out = self.run("squeue", "--noheader", "--format=%i|%j|%T")
        return [dict(zip(("id", "name", "state"), ln.split("|"), strict=True)) for ln in out.splitlines() if ln.strip()]

    def logs(self) -> str:
        """The daemons' log tails (for failure messages)."""
        parts = []
        for name in ("munged.log", "slurmctld.log", "slurmd.log"):
            p = self.root / name
            if p.is_file():
                parts.append(f"--- {name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(parts)

    def stop(self) -> None:
        """Cancel every job, then stop the daemons this cluster started, by PID (TERM, then KILL)."""
        try:
            self.run("scancel", "--user=root", check=False, timeout=10)
            t0 = time.monotonic()  # let slurmd end the jobs' steps before it stops
            while time.monotonic() - t0 < 15 and any(j["state"] in ("RUNNING", "COMPLETING", "PENDING")
                                                     for j in self.jobs()):
                time.sleep(0.3)
        except (OSError, subprocess.SubprocessError, RuntimeError):
            pass
        for p in reversed(self.procs):  # slurmd, slurmctld, munged
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=10)
        self.procs.clear()


SLURM_CONF = """\
ClusterName=bondmltest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SrunPortRange={srun_lo}-{srun_hi}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=2
MinJobAge=300
SlurmctldParameters=enable_configless
NodeName={node} NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName={partition} Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


def start_cluster(root: Path, partition: str = "debug", timeout_s: float = 60.0) -> SlurmCluster:
    """Start munged, slurmctld and slurmd under ``root``; return once ``sinfo`` shows the node idle.

    On any failure the daemons already started are stopped and a RuntimeError carries their logs.
    """
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    for d in ("state", "spool"):
        (root / d).mkdir(exist_ok=True)
    node = socket.gethostname().split(".")[0]
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    srun_lo = _free_port()
    conf = root / "slurm.conf"
    conf.write_text(SLURM_CONF.format(node=node, root=root, partition=partition, ctld_port=_free_port(),
                                      slurmd_port=_free_port(), srun_lo=srun_lo, srun_hi=srun_lo + 20))
    env = dict(os.environ, SLURM_CONF=str(conf))
    cluster = SlurmCluster(root, conf, node, partition, env)
    with open(root / "daemons.out", "ab") as log:
        try:
            cluster.procs.append(subprocess.Popen(
                ["munged", "-F", "--force", f"--socket={root}/munge.socket", f"--key-file={key}",
                 f"--pid-file={root}/munged.pid", f"--log-file={root}/munged.log", f"--seed-file={root}/munged.seed"],
                stdout=log, stderr=log, env=env))
            _wait(lambda: (root / "munge.socket").exists(), 15, "munged socket", cluster)
            cluster.procs.append(subprocess.Popen(["slurmctld", "-D", "-i", "-f", str(conf)], stdout=log, stderr=log,
                                                  env=env))
            _wait(lambda: subprocess.run(["scontrol", "ping"], env=env, capture_output=True, text=True,
                                         timeout=10).stdout.count("UP") > 0, timeout_s, "slurmctld", cluster)
            cluster.procs.append(subprocess.Popen(["slurmd", "-D", "-N", node, "-f", str(conf)], stdout=log, stderr=log,
                                                  env=env))

            def idle() -> bool:
                out = subprocess.run(["sinfo", "--noheader", "--format=%T", "--nodes", node], env=env,
                                     capture_output=True, text=True, timeout=10).stdout
                return "idle" in out

            _wait(idle, timeout_s, "node idle in sinfo", cluster)
        except BaseException:
            cluster.stop()
            raise
    return cluster


def _wait(ok, timeout_s: float, what: str, cluster: SlurmCluster) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        for p in cluster.procs:
            if p.poll() is not None:
                raise RuntimeError(f"{p.args[0]} exited ({p.returncode}) while waiting for {what}\n{cluster.logs()}")
        try:
            if ok():
                return
        except (OSError, subprocess.SubprocessError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}\n{cluster.logs()}")

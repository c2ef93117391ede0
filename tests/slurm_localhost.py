"""A real one-node SLURM cluster on localhost, for tests (root only).

``LocalSlurm(state_dir)`` writes a munge key and a ``slurm.conf`` into ``state_dir``, starts
``munged``, ``slurmctld`` and ``slurmd`` in the foreground (children of the test, so their
ids are known), waits until the node accepts jobs, and stops every process it started --
job steps (``slurmstepd``) included -- on :meth:`stop`. Clients find the cluster through
``SLURM_CONF`` in :attr:`env`. Debian's ``slurm-wlm`` and ``munge`` packages; settings that
need no cgroups or accounting daemon: ``ProctrackType=proctrack/linuxproc``,
``TaskPlugin=task/none``, ``SelectType=select/cons_tres``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo")
APT_PACKAGES = ("slurm-wlm", "munge")


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if shutil.which(b) is None
            and not Path("/usr/sbin", b).exists()]


def _binary(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalSlurm:
    """munged + slurmctld + slurmd on this machine, state and logs under ``state_dir``."""

    def __init__(self, state_dir: Path, cpus: int = 2, memory_mb: int = 8192) -> None:
        self.dir = Path(state_dir).absolute()
        self.cpus, self.memory_mb = cpus, memory_mb
        self.node = socket.gethostname().split(".")[0]
        self.conf = self.dir / "slurm.conf"
        self.socket = self.dir / "munge" / "munge.socket"
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        for key in [k for k in self.env if k.startswith(("SLURM_", "SBATCH_", "SALLOC_"))]:
            if key != "SLURM_CONF":
                del self.env[key]

    # ------------------------------------------------------------------ set-up
    def _write_files(self) -> None:
        for sub in ("munge", "ctld", "spool", "log"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        key = self.dir / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        lines = [
            "ClusterName=bidsstroketest",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.socket}",
            f"StateSaveLocation={self.dir / 'ctld'}",
            f"SlurmdSpoolDir={self.dir / 'spool'}",
            f"SlurmctldPidFile={self.dir / 'slurmctld.pid'}",
            f"SlurmdPidFile={self.dir / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.dir / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={self.dir / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "MpiDefault=none",
            "ReturnToService=2",
            "SchedulerType=sched/backfill",
            "MinJobAge=3600",
            "SlurmdTimeout=60",
            "MailProg=/bin/true",
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} "
            f"RealMemory={self.memory_mb} State=UNKNOWN",
            "PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.dir / "log" / f"{name}.stdout").open("w")
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                            env=self.env, start_new_session=True)

    def start(self, timeout: float = 60.0) -> LocalSlurm:
        self._write_files()
        self._spawn("munged", [
            _binary("munged"), "--foreground", "--force",
            f"--socket={self.socket}", f"--key-file={self.dir / 'munge' / 'munge.key'}",
            f"--pid-file={self.dir / 'munge' / 'munged.pid'}",
            f"--seed-file={self.dir / 'munge' / 'munged.seed'}",
            f"--log-file={self.dir / 'log' / 'munged.log'}",
        ])
        self._wait(lambda: self.socket.exists(), timeout, "munged socket")
        self._spawn("slurmctld", [_binary("slurmctld"), "-D", "-i", "-f", str(self.conf)])
        self._spawn("slurmd", [_binary("slurmd"), "-D", "-N", self.node, "-f", str(self.conf)])
        self._wait(self._node_ready, timeout, "an idle SLURM node")
        return self

    def _node_ready(self) -> bool:
        proc = subprocess.run([_binary("sinfo"), "-h", "-N", "-o", "%T"], env=self.env,
                              capture_output=True, text=True, timeout=30)
        return proc.returncode == 0 and proc.stdout.strip() in ("idle", "mixed", "allocated")

    def _wait(self, ready, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited ({proc.returncode}) before {what} was "
                                       f"ready:\n{self.logs()}")
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"no {what} after {timeout:.0f} s:\n{self.logs()}")

    # ------------------------------------------------------------------ use
    def run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(argv, env=self.env, capture_output=True, text=True,
                              timeout=60, **kwargs)

    def job_info(self, job_id: str) -> dict[str, str]:
        """``scontrol show job`` as key=value pairs (first record of an array)."""
        out = self.run([_binary("scontrol"), "show", "job", "-o", job_id]).stdout
        first = out.splitlines()[0] if out.strip() else ""
        return dict(tok.split("=", 1) for tok in first.split() if "=" in tok)

    def wait_jobs(self, timeout: float) -> bool:
        """True once the queue is empty (every job ended), False on timeout."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            proc = self.run([_binary("squeue"), "-h", "-o", "%i"])
            if proc.returncode == 0 and not proc.stdout.strip():
                return True
            time.sleep(2)
        return False

    def logs(self, tail: int = 3000) -> str:
        parts = []
        for path in sorted((self.dir / "log").glob("*")):
            text = path.read_text(errors="replace")[-tail:]
            parts.append(f"--- {path.name}\n{text}")
        return "\n".join(parts)

    # ------------------------------------------------------------------ tear-down
    def our_processes(self) -> list[int]:
        """Pids of live processes started for this cluster: the daemons, job steps and jobs,
        i.e. every process whose environment holds this cluster's ``SLURM_CONF`` (never this
        process or its ancestors)."""
        mark = f"SLURM_CONF={self.conf}".encode() + b"\0"
        skip, pid = set(), os.getpid()
        while pid > 1:  # this process and its ancestors
            skip.add(pid)
            try:
                with open(f"/proc/{pid}/stat", "rb") as fh:
                    pid = int(fh.read().rsplit(b")", 1)[1].split()[1])
            except OSError:
                break
        pids = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or int(entry.name) in skip:
                continue
            try:
                with open(f"/proc/{entry.name}/environ", "rb") as fh:
                    environ = fh.read() + b"\0"
                with open(f"/proc/{entry.name}/stat", "rb") as fh:
                    state = fh.read().rsplit(b")", 1)[1].split()[0]
            except OSError:
                continue
            if state != b"Z" and (b"\0" + mark in b"\0" + environ):
                pids.append(int(entry.name))
        return pids

    def stop(self, grace: float = 10.0) -> list[int]:
        """Stop the daemons and their job steps; returns the pids still alive (should be [])."""
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        end = time.monotonic() + grace
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pid in self.our_processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        while self.our_processes() and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.our_processes()

"""The few Slurm client calls ``jobs slurm --submit`` makes (no stability guarantee), each
bounded in time and failing as a :class:`~toolchain.errors.ClusterError` (``docs/scale-out.md``)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from toolchain.errors import ClusterError, os_error_text

__all__ = ["FAILED_STATES", "JobState", "SlurmCLI", "SlurmClient", "parse_show_job"]

FAILED_STATES = frozenset({
    "BOOT_FAIL", "CANCELLED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
    "REVOKED", "TIMEOUT",
})  # fmt: skip
"""Terminal states other than COMPLETED (``man squeue``, JOB STATE CODES)."""

_CALL_TIMEOUT = 60.0
_INSTALL_HINT = (
    "run this on a Slurm login node, or install the Slurm client tools and point "
    "SLURM_CONF at your cluster's slurm.conf (to try it on one machine: .ci/slurm.sh start)"
)


@dataclass(frozen=True, kw_only=True, slots=True)
class JobState:
    """One job, or one task of an array job, as the controller reports it."""

    job_id: str
    """``A_I`` for task I of array job A, or the plain job id."""
    state: str
    reason: str = ""
    exit_code: str = ""
    """``status:signal``, as Slurm prints it."""
    std_out: str = ""


def parse_show_job(text: str) -> list[JobState]:
    """Parse ``scontrol show job --oneliner`` output: one record per line."""
    jobs = []
    for line in text.splitlines():
        fields = dict(_pairs(line))
        if "JobId" not in fields:
            continue
        array, task = fields.get("ArrayJobId"), fields.get("ArrayTaskId")
        job_id = f"{array}_{task}" if array and task else fields["JobId"]
        jobs.append(
            JobState(
                job_id=job_id,
                state=fields.get("JobState", "UNKNOWN"),
                reason=fields.get("Reason", ""),
                exit_code=fields.get("ExitCode", ""),
                std_out=fields.get("StdOut", ""),
            )
        )
    return jobs


def _pairs(line: str) -> list[tuple[str, str]]:
    # Values hold no spaces except Command= and a few paths; those are not read here.
    out = []
    for word in line.split():
        key, sep, value = word.partition("=")
        if sep:
            out.append((key, value))
    return out


class SlurmClient(Protocol):
    """What ``jobs slurm --submit`` needs from Slurm."""

    def sbatch(self, args: Sequence[str], *, cwd: Path) -> str:
        """Submit; returns the job id (``sbatch --parsable``)."""
        ...

    def jobs(self, job_id: str) -> list[JobState]:
        """The job's records (one per array task); [] once the controller forgot it."""
        ...

    def cancel(self, job_ids: Sequence[str]) -> None: ...

    def nodes(self) -> list[str]:
        """The host names of the cluster's nodes, each once."""
        ...


class SlurmCLI:
    """The Slurm client tools on PATH (``SLURM_CONF`` selects the cluster)."""

    def __init__(self, env: Mapping[str, str] | None = None, timeout: float = _CALL_TIMEOUT):
        self._env = dict(os.environ if env is None else env)
        self._timeout = timeout

    def _run(
        self, argv: Sequence[str], *, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        program = argv[0]
        if shutil.which(program, path=self._env.get("PATH")) is None:
            raise ClusterError(
                f"Slurm is not installed here: `{program}` is not on PATH", hint=_INSTALL_HINT
            )
        try:
            return subprocess.run(
                list(argv),
                cwd=cwd,
                env=self._env,
                capture_output=True,
                text=True,
                timeout=self._timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ClusterError(
                f"Slurm did not answer: `{' '.join(argv[:3])}` took more than "
                f"{self._timeout:.0f} s",
                hint="check that slurmctld runs and answers (`sinfo`), and SLURM_CONF",
            ) from None
        except OSError as e:
            raise ClusterError(
                f"cannot run Slurm's `{program}`: {os_error_text(e)}", hint=_INSTALL_HINT
            ) from None

    def sbatch(self, args: Sequence[str], *, cwd: Path) -> str:
        proc = self._run(["sbatch", "--parsable", *args], cwd=cwd)
        job_id = proc.stdout.strip().split(";")[0]
        if proc.returncode != 0 or not job_id.isdigit():
            raise ClusterError(
                f"Slurm refused the job: sbatch said {_last_line(proc.stderr)!r}",
                hint="check that the controller answers (`sinfo`) and the partition and "
                "limits in the script fit your cluster",
            )
        return job_id

    def jobs(self, job_id: str) -> list[JobState]:
        proc = self._run(["scontrol", "--oneliner", "show", "job", job_id])
        if proc.returncode != 0:
            if "Invalid job id" in proc.stderr:
                return []
            raise ClusterError(
                f"Slurm did not report job {job_id}: scontrol said {_last_line(proc.stderr)!r}",
                hint="check that slurmctld runs and answers (`sinfo`), and SLURM_CONF",
            )
        return parse_show_job(proc.stdout)

    def cancel(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            self._run(["scancel", *job_ids])

    def nodes(self) -> list[str]:
        proc = self._run(["sinfo", "--noheader", "--Node", "--format=%n"])
        if proc.returncode != 0:
            raise ClusterError(
                f"Slurm did not list its nodes: sinfo said {_last_line(proc.stderr)!r}",
                hint="check that slurmctld runs and answers (`sinfo`), and SLURM_CONF",
            )
        return sorted({ln.strip() for ln in proc.stdout.splitlines() if ln.strip()})


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(nothing)"

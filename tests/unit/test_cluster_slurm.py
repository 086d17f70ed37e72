"""toolchain.cluster.slurm: ``scontrol show job`` parsed, and every way the Slurm client tools
fail turned into a ClusterError that names Slurm (against stand-in tools on PATH)."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolchain.cluster.slurm import FAILED_STATES, JobState, SlurmCLI, parse_show_job
from toolchain.errors import ClusterError


def _tool(bin_dir: Path, name: str, script: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / name).write_text("#!/bin/sh\n" + script)
    (bin_dir / name).chmod(0o755)


def _slurm(bin_dir: Path, timeout: float = 30) -> SlurmCLI:
    return SlurmCLI(env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, timeout=timeout)


def test_parse_show_job_reads_array_tasks() -> None:
    text = (
        "JobId=12 ArrayJobId=11 ArrayTaskId=1 JobName=adv JobState=CANCELLED Reason=None "
        "ExitCode=0:15 StdOut=/w/adv-11_1.log\n"
        "JobId=11 ArrayJobId=11 ArrayTaskId=2-3 JobName=adv JobState=PENDING Reason=Resources\n"
        "JobId=13 JobName=adv-merge JobState=PENDING Reason=Dependency ExitCode=0:0\n"
    )
    jobs = parse_show_job(text)
    assert [(j.job_id, j.state) for j in jobs] == [
        ("11_1", "CANCELLED"), ("11_2-3", "PENDING"), ("13", "PENDING"),
    ]  # fmt: skip
    assert jobs[0].std_out == "/w/adv-11_1.log" and jobs[0].exit_code == "0:15"


def test_parse_show_job_skips_what_is_not_a_job_and_defaults_the_rest() -> None:
    text = "\nslurm_load_jobs error: nothing\nJobId=5 JobName=x Command=/a b/c.sh\n"
    assert parse_show_job(text) == [JobState(job_id="5", state="UNKNOWN")]
    assert parse_show_job("") == []


def test_failed_states_are_the_terminal_ones_other_than_completed() -> None:
    assert {"FAILED", "TIMEOUT", "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL"} <= FAILED_STATES
    assert not {"COMPLETED", "RUNNING", "PENDING", "COMPLETING"} & FAILED_STATES


def test_sbatch_returns_the_job_id_of_a_parsable_answer(tmp_path: Path) -> None:
    _tool(tmp_path, "sbatch", 'echo "$*" > "$0.args"; echo "4242;cluster"\n')
    assert _slurm(tmp_path).sbatch(["--array=0-3", "job.sbatch"], cwd=tmp_path) == "4242"
    assert (tmp_path / "sbatch.args").read_text() == "--parsable --array=0-3 job.sbatch\n"


def test_a_refused_submission_quotes_sbatch(tmp_path: Path) -> None:
    _tool(tmp_path, "sbatch", 'echo "warning: x" >&2; echo "sbatch: error: Invalid partition" >&2; '
                              "exit 1\n")  # fmt: skip
    with pytest.raises(ClusterError) as e:
        _slurm(tmp_path).sbatch(["job.sbatch"], cwd=tmp_path)
    assert (
        e.value.message == "Slurm refused the job: sbatch said 'sbatch: error: Invalid partition'"
    )
    assert "sinfo" in (e.value.hint or "")


def test_missing_tools_name_the_tool_and_how_to_get_slurm(tmp_path: Path) -> None:
    with pytest.raises(
        ClusterError, match="Slurm is not installed here: `scontrol` is not on"
    ) as e:
        SlurmCLI(env={"PATH": str(tmp_path)}).jobs("7")
    assert "SLURM_CONF" in (e.value.hint or "") and e.value.exit_code == 4


def test_a_silent_controller_is_an_error_within_the_timeout(tmp_path: Path) -> None:
    _tool(tmp_path, "scontrol", "exec sleep 30\n")
    with pytest.raises(ClusterError, match=r"Slurm did not answer: `scontrol --oneliner show`"):
        _slurm(tmp_path, timeout=0.5).jobs("7")


def test_jobs_the_controller_forgot_are_no_jobs_and_other_errors_are_errors(
    tmp_path: Path,
) -> None:
    _tool(tmp_path, "scontrol", 'echo "slurm_load_jobs error: Invalid job id specified" >&2; '
                                "exit 1\n")  # fmt: skip
    assert _slurm(tmp_path).jobs("7") == []
    _tool(tmp_path, "scontrol", "exit 1\n")
    with pytest.raises(ClusterError, match=r"did not report job 7: scontrol said '\(nothing\)'"):
        _slurm(tmp_path).jobs("7")
    _tool(tmp_path, "scontrol", 'echo "JobId=7 JobState=COMPLETED ExitCode=0:0"\n')
    assert _slurm(tmp_path).jobs("7") == [JobState(job_id="7", state="COMPLETED", exit_code="0:0")]


def test_cancel_calls_scancel_only_with_jobs(tmp_path: Path) -> None:
    _tool(tmp_path, "scancel", 'echo "$*" >> "$0.args"\n')
    slurm = _slurm(tmp_path)
    slurm.cancel([])
    assert not (tmp_path / "scancel.args").exists()
    slurm.cancel(["7", "8"])
    assert (tmp_path / "scancel.args").read_text() == "7 8\n"


def test_nodes_are_listed_once_each_and_a_silent_sinfo_is_an_error(tmp_path: Path) -> None:
    _tool(tmp_path, "sinfo", 'echo "$*" > "$0.args"; printf "node2\\nnode1\\nnode2\\n\\n"\n')
    assert _slurm(tmp_path).nodes() == ["node1", "node2"]  # node2 is in two partitions
    assert (tmp_path / "sinfo.args").read_text() == "--noheader --Node --format=%n\n"
    _tool(tmp_path, "sinfo", 'echo "sinfo: error: Unable to contact slurm controller" >&2; '
                             "exit 1\n")  # fmt: skip
    with pytest.raises(ClusterError, match=r"did not list its nodes: sinfo said 'sinfo: error"):
        _slurm(tmp_path).nodes()

"""toolchain.cli.jobs: ``jobs k8s`` and ``jobs slurm`` through Click (files, option rules)."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.cli import no_traceback, run_cli
from toolchain.cluster.preflight import LOCAL_FILESYSTEMS, mount_of
from toolchain.errors import ExitCode


def test_jobs_cli_writes_parsable_files(tmp_path: Path) -> None:
    out = tmp_path / "adv.yaml"
    r = run_cli("jobs", "k8s", "--name", "adv", "--shards", "5", "--original", "val-pvc", "--out",
                "adv-pvc", "--write", out, "--", "generate", "--recipe", "adversarial",
                "--original", "/original", "--out", "/out")  # fmt: skip
    assert r.exit_code == 0, r.output
    job = next(yaml.safe_load_all(out.read_text()))
    assert job["spec"]["completions"] == 5 and job["spec"]["completionMode"] == "Indexed"
    r = run_cli("jobs", "slurm", "--name", "Bad Name", "--shards", "2", "--original", "a",
                "--out", "b", "--", "generate")  # fmt: skip
    assert r.exit_code == 3 and "job name" in r.output


def test_submit_without_slurm_installed_is_an_environment_error(tmp_path: Path) -> None:
    r = run_cli(
        "jobs", "slurm", "--name", "adv", "--shards", "2", "--runtime", "none", "--out",
        tmp_path / "out", "--write", tmp_path / "adv.sbatch", "--submit", "--",
        "generate", "--recipe", "identity", "--original", "/o", "--out", tmp_path / "out",
        env={"PATH": str(tmp_path)},
    )  # fmt: skip
    assert r.exit_code == 4, r.output
    assert "Slurm is not installed here: `sbatch` is not on PATH" in r.output
    assert (tmp_path / "adv.sbatch").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--submit"], "--submit needs --write"),
        (["--wait"], "--wait needs --submit"),
        (["--tasks", "1"], "--tasks needs --submit"),
    ],
)
def test_submit_options_need_each_other(args: list[str], message: str) -> None:
    r = run_cli("jobs", "slurm", "--name", "adv", "--shards", "2", "--original", "/o",
                "--out", "/p", *args, "--", "generate")  # fmt: skip
    assert r.exit_code == 2 and message in r.output


def test_without_write_the_job_file_goes_to_stdout() -> None:
    image = "reg/br@sha256:" + "e" * 64
    r = run_cli("jobs", "slurm", "--name", "adv", "--shards", "3", "--runtime", "docker",
                "--original", "/shared/val", "--out", "/shared/adv", "--image", image, "--",
                "generate", "--recipe", "adversarial", "--original", "/original", "--out",
                "/out")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("#!/bin/bash\n") and "#SBATCH --job-name=adv" in r.stdout
    assert image in r.stdout and r.stderr == ""
    r = run_cli("jobs", "k8s", "--name", "adv", "--shards", "3", "--original", "val-pvc",
                "--out", "adv-pvc", "--", "generate")  # fmt: skip
    assert r.exit_code == 0 and [d["kind"] for d in yaml.safe_load_all(r.stdout)] == ["Job"] * 2


def test_submit_reports_the_jobs_sbatch_gave(tmp_path: Path) -> None:
    """A stand-in ``sbatch`` on PATH: the array first, then the merge that depends on it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(
        "#!/bin/sh\n"
        'n=$(cat "$0.count" 2>/dev/null || echo 100); n=$((n + 1)); echo "$n" > "$0.count"\n'
        'echo "$*" >> "$0.log"; echo "$n;cluster"\n'
    )
    sbatch.chmod(0o755)
    script = tmp_path / "adv.sbatch"
    r = run_cli(
        "jobs", "slurm", "--name", "adv", "--shards", "4", "--runtime", "none", "--out",
        tmp_path / "out", "--write", script, "--submit", "--tasks", "1,3", "--json",
        "--", "generate", "--recipe", "identity", "--original", "/o", "--out", tmp_path / "out",
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"merge_job": "102", "shards_job": "101", "tasks": "1,3"}
    array, merge = (bin_dir / "sbatch.log").read_text().splitlines()
    assert array == f"--parsable --array=1,3 {script}"
    assert "--dependency=afterok:101" in merge and f"--wrap=bash {script} merge" in merge
    assert f"wrote {script}" in r.stderr


# -- What --submit checks first, and the default runtime ------------------------------------


def _dead_engine(tmp_path: Path) -> str:
    """A Docker socket that does not answer: bound once, nobody listening."""
    path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(path))
    return f"unix://{path}"


def _logging_tool(bin_dir: Path, name: str, output: str = "") -> Path:
    """A stand-in Slurm tool that logs its arguments (and prints ``output``)."""
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / name
    tool.write_text(f'#!/bin/sh\necho "$*" >> "$0.log"\nprintf "{output}"\n')
    tool.chmod(0o755)
    return tool.with_name(f"{name}.log")


def test_submit_with_docker_and_no_engine_fails_before_submitting(tmp_path: Path) -> None:
    host = _dead_engine(tmp_path)
    sbatch_log = _logging_tool(tmp_path / "bin", "sbatch", "101;cluster\\n")
    out = tmp_path / "out"
    r = no_traceback(run_cli(
        "jobs", "slurm", "--name", "adv", "--shards", "2", "--runtime", "docker",
        "--original", tmp_path, "--out", out, "--write", tmp_path / "adv.sbatch", "--submit",
        "--", "generate", "--recipe", "identity", "--original", "/original", "--out", "/out",
        env={"DOCKER_HOST": host, "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"},
    ))  # fmt: skip
    assert r.exit_code == ExitCode.ENVIRONMENT, r.output
    assert (
        "error: --runtime docker: every shard task runs `docker run` on its node, and on this "
        f"one no Docker engine answers at {host} (" in r.stderr
    )
    assert "hint: start an engine on the nodes and here" in r.stderr
    assert "--runtime none with benchmark-regen installed on every node" in r.stderr
    assert not sbatch_log.exists() and not out.exists()  # nothing submitted, nothing made


def test_without_an_engine_the_runtime_defaults_to_none_unless_original_is_given(
    tmp_path: Path,
) -> None:
    host = _dead_engine(tmp_path)
    r = run_cli("jobs", "slurm", "--name", "adv", "--shards", "2", "--out", "/shared/adv",
                "--", "generate", "--recipe", "identity", "--original", "/shared/val",
                "--out", "/shared/adv", env={"DOCKER_HOST": host})  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "# Generated by `benchmark-regen jobs slurm --runtime none`" in r.stdout
    assert "docker" not in r.stdout
    assert r.stderr.startswith(f"note: no Docker engine answers at {host} (")
    assert "so the tasks run the benchmark-regen on each node's PATH (--runtime none)" in r.stderr
    r = run_cli("jobs", "slurm", "--name", "adv", "--shards", "2", "--original", "/shared/val",
                "--out", "/shared/adv", "--", "generate", "--recipe", "identity", "--original",
                "/original", "--out", "/out", env={"DOCKER_HOST": host})  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "# Generated by `benchmark-regen jobs slurm --runtime docker`" in r.stdout
    assert "with --original the tasks run the pinned image" in r.stderr


def test_submit_refuses_an_out_on_this_nodes_disk_when_the_cluster_has_others(
    tmp_path: Path,
) -> None:
    mount = mount_of(tmp_path)
    if mount is None or mount.fstype not in LOCAL_FILESYSTEMS:
        pytest.skip(f"the test folder is not on a local filesystem here ({mount})")
    bin_dir = tmp_path / "bin"
    sbatch_log = _logging_tool(bin_dir, "sbatch", "101;cluster\\n")
    _logging_tool(bin_dir, "sinfo", "node1\\nnode2\\nnode3\\n")
    out = tmp_path / "out"
    r = no_traceback(run_cli(
        "jobs", "slurm", "--name", "adv", "--shards", "2", "--runtime", "none", "--out", out,
        "--write", tmp_path / "adv.sbatch", "--submit", "--json", "--", "generate",
        "--recipe", "identity", "--original", "/o", "--out", out,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
    ))  # fmt: skip
    assert r.exit_code == ExitCode.ENVIRONMENT, r.output
    error = json.loads(r.stdout)["error"]
    assert error["kind"] == "ClusterError"
    assert f"--out {out} is on this node's own disk ({mount.fstype} at " in error["message"]
    assert "the merge job would not find the shard manifests" in error["message"]
    assert "every node mounts at the same path" in error["hint"]
    assert not sbatch_log.exists()


# -- Hostile arguments (issue #23, item 6) ---------------------------------------------------


def test_an_original_name_that_runs_a_command_is_passed_on_byte_for_byte(tmp_path: Path) -> None:
    """The issue's `--original-name 'x $(touch F)'` (and its `${`, which used to leave it
    unquoted), through `jobs slurm --write`, then run by bash as a task would be."""
    names = ["x ${IFS}$(touch F)", "$(touch F)", "`touch F`", "\x1b]0;owned\x07"]
    out = tmp_path / "out"
    command = ["generate", "--recipe", "identity", "--original", "/o", "--out", str(out)]
    for name in names:
        command += ["--original-name", name]
    script = tmp_path / "adv.sbatch"
    r = no_traceback(run_cli("jobs", "slurm", "--name", "adv", "--shards", "2", "--runtime",
                             "none", "--out", out, "--write", script, "--", *command))  # fmt: skip
    assert r.exit_code == 0, r.output
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_in = bin_dir / "benchmark-regen"
    stand_in.write_text(f"#!/bin/sh\nprintf '%s\\0' \"$@\" > {bin_dir}/args\n")
    stand_in.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SLURM_ARRAY_TASK_ID": "1"}
    proc = subprocess.run(["bash", str(script)], env=env, cwd=tmp_path, capture_output=True,
                          timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "F").exists()
    received = (bin_dir / "args").read_bytes().split(b"\0")[:-1]
    assert received == [a.encode() for a in [*command, "--shard", "1/2", "--resume"]]
    # Printed instead of written: the terminal gets no escape sequence from the script.
    r = run_cli("jobs", "slurm", "--name", "adv", "--shards", "2", "--runtime", "none",
                "--out", out, "--", *command)  # fmt: skip
    assert r.exit_code == 0 and "$(touch F)" in r.stdout
    assert "\x1b" not in r.stdout and "$'\\x1b]0;owned\\x07'" in r.stdout

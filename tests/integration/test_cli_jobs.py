"""toolchain.cli.jobs: ``jobs k8s`` and ``jobs slurm`` through Click (files, option rules)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.cli import run_cli


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
    r = run_cli("jobs", "slurm", "--name", "adv", "--shards", "3", "--original", "/shared/val",
                "--out", "/shared/adv", "--image", image, "--", "generate", "--recipe",
                "adversarial", "--original", "/original", "--out", "/out")  # fmt: skip
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

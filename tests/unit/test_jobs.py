from __future__ import annotations

import shlex

import pytest
import yaml

from toolchain.errors import InputError
from toolchain.jobs import JobSpec, k8s_indexed_job, slurm_array_script

SPEC = JobSpec(
    name="adv-bench",
    shards=16,
    image="benchmark-regen@sha256:" + "a" * 64,
    command=("generate", "--recipe", "adversarial", "--original", "/original", "--out", "/out"),
    original="imagenet-val",
    out="adv-out",
)


def test_k8s_indexed_job_parses_and_is_indexed() -> None:
    docs = list(yaml.safe_load_all(k8s_indexed_job(SPEC)))
    job, merge = docs
    assert job["kind"] == "Job" and job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == 16
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == SPEC.image
    args = container["args"]
    assert args[args.index("--shard") + 1] == "$(JOB_COMPLETION_INDEX)/16"
    assert "--resume" in args
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/original"]["readOnly"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert merge["metadata"]["name"] == "adv-bench-merge"
    margs = merge["spec"]["template"]["spec"]["containers"][0]["args"]
    assert margs[:2] == ["manifest", "merge"] and len([a for a in margs if "shard-" in a]) == 16


def test_slurm_script_is_an_array_with_a_merge_step() -> None:
    script = slurm_array_script(SPEC)
    assert script.startswith("#!/bin/bash\n")
    assert "#SBATCH --array=0-15" in script
    shard_line = script.strip().splitlines()[-1]
    words = shlex.split(shard_line.replace('"$(id -u):$(id -g)"', "UID"))
    assert words[:2] == ["docker", "run"] and "--network" in words and "none" in words
    assert words[words.index("--shard") + 1] == "${SLURM_ARRAY_TASK_ID}/16"
    assert "imagenet-val:/original:ro" in words
    assert "manifest merge" in script


def test_writers_are_deterministic() -> None:
    assert k8s_indexed_job(SPEC) == k8s_indexed_job(SPEC)
    assert slurm_array_script(SPEC) == slurm_array_script(SPEC)


@pytest.mark.parametrize(("name", "shards"), [("Bad_Name", 2), ("ok", 0)])
def test_bad_job_specs(name: str, shards: int) -> None:
    with pytest.raises(InputError):
        JobSpec(name=name, shards=shards, image="x", command=("generate",), original="o", out="p")


def test_jobs_cli_writes_parsable_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from toolchain.cli import cli

    out = tmp_path / "adv.yaml"
    r = CliRunner().invoke(cli, ["jobs", "k8s", "--name", "adv", "--shards", "5", "--original",
                                 "val-pvc", "--out", "adv-pvc", "--write", str(out), "--",
                                 "generate", "--recipe", "adversarial", "--original", "/original",
                                 "--out", "/out"])  # fmt: skip
    assert r.exit_code == 0, r.output
    job = next(yaml.safe_load_all(out.read_text()))
    assert job["spec"]["completions"] == 5 and job["spec"]["completionMode"] == "Indexed"
    r = CliRunner().invoke(cli, ["jobs", "slurm", "--name", "Bad Name", "--shards", "2",
                                 "--original", "a", "--out", "b", "--", "generate"])  # fmt: skip
    assert r.exit_code == 3 and "job name" in r.output

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from toolchain._internal.terminal import printable
from toolchain.cluster.jobs import (
    JobSpec,
    SlurmSubmission,
    k8s_indexed_job,
    slurm_array_script,
    submit_slurm,
    wait_slurm,
)
from toolchain.cluster.slurm import JobState
from toolchain.errors import ClusterError, InputError
from toolchain.run import runkey

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
    shard_line = [ln for ln in script.splitlines() if ln.startswith("docker run")][-1]
    words = shlex.split(shard_line.removesuffix(" &").replace('"$(id -u):$(id -g)"', "UID"))
    assert words[:2] == ["docker", "run"] and "--network" in words and "none" in words
    assert words[words.index("--shard") + 1] == "$shard"
    assert 'shard="${SLURM_ARRAY_TASK_ID}/16"' in script.splitlines()
    assert "imagenet-val:/original:ro" in words
    assert "manifest merge" in script


def test_writers_are_deterministic() -> None:
    assert k8s_indexed_job(SPEC) == k8s_indexed_job(SPEC)
    assert slurm_array_script(SPEC) == slurm_array_script(SPEC)


@pytest.mark.parametrize(("name", "shards"), [("Bad_Name", 2), ("ok", 0)])
def test_bad_job_specs(name: str, shards: int) -> None:
    with pytest.raises(InputError):
        JobSpec(name=name, shards=shards, image="x", command=("generate",), original="o", out="p")


# -- Kubernetes: the OpenAPI schema, offline ---------------------------------------------

K8S_VERSIONS = ["1.31", "1.33", kubernetes_validate.latest_version()]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("diff", [None, "diff-pvc"])
def test_k8s_jobs_validate_against_the_kubernetes_schema(version: str, diff: str | None) -> None:
    spec = dataclasses.replace(SPEC, diff=diff)
    docs = list(yaml.safe_load_all(k8s_indexed_job(spec)))
    assert [d["metadata"]["name"] for d in docs] == ["adv-bench", "adv-bench-merge"]
    for doc in docs:
        # strict: an unknown or misspelt field is an error, not silently dropped
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_schema_check_catches_a_misspelt_field() -> None:
    """The validation above can fail: the same Job with one field misspelt is refused."""
    job = next(yaml.safe_load_all(k8s_indexed_job(SPEC)))
    job["spec"]["completionMod"] = job["spec"].pop("completionMode")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, K8S_VERSIONS[-1], strict=True)
    job = next(yaml.safe_load_all(k8s_indexed_job(SPEC)))
    job["spec"]["completions"] = "16"  # a string where the API wants an integer
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, K8S_VERSIONS[-1], strict=True)


def test_a_kubernetes_shard_keeps_its_run_keys_on_the_output_claim_beside_the_benchmark(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A replaced pod finds the run keys of the one before (the output claim is mounted
    again), and they are outside the benchmark folder."""
    job, merge = yaml.safe_load_all(k8s_indexed_job(SPEC))
    pod = job["spec"]["template"]["spec"]
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
    assert claims["out"] == SPEC.out
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    on_claim = {m["mountPath"]: m["subPath"] for m in container["volumeMounts"]
                if m["name"] == "out"}  # fmt: skip
    assert on_claim == {"/out": "out", "/state": "state"}  # two folders, side by side
    # The run in the pod, with the pod's environment, keeps its keys under /state.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert runkey.key_folder().as_posix() == "/state/benchmark-regen"
    # The image's user makes both folders first: Kubernetes would make them owned by root.
    (init,) = pod["initContainers"]
    assert init["image"] == SPEC.image and init["securityContext"]["runAsNonRoot"] is True
    assert init["volumeMounts"] == [{"name": "out", "mountPath": "/volume"}]
    assert init["command"] == ["mkdir", "-p", "/volume/out", "/volume/state"]
    # The merge reads the benchmark folder only.
    mpod = merge["spec"]["template"]["spec"]
    (mcontainer,) = mpod["containers"]
    assert "env" not in mcontainer
    assert [m for m in mcontainer["volumeMounts"] if m["name"] == "out"] == [
        {"name": "out", "mountPath": "/out", "subPath": "out"}
    ]
    assert mpod["initContainers"] == pod["initContainers"]


def test_k8s_merge_is_started_apart_from_the_shards() -> None:
    """`kubectl apply --selector benchmark-regen/step=...` starts one Job at a time."""
    text = k8s_indexed_job(SPEC)
    job, merge = yaml.safe_load_all(text)
    assert job["metadata"]["labels"]["benchmark-regen/step"] == "shards"
    assert merge["metadata"]["labels"]["benchmark-regen/step"] == "merge"
    assert "--selector benchmark-regen/step=shards" in text
    assert "--selector benchmark-regen/step=merge" in text
    with pytest.raises(InputError, match="Slurm only"):
        k8s_indexed_job(dataclasses.replace(SPEC, runtime="none", original=None, out="/out"))


# -- Slurm scripts -------------------------------------------------------------------------

NATIVE = JobSpec(
    name="adv",
    shards=4,
    image="unused",
    runtime="none",
    command=(
        "generate",
        "--recipe",
        "adversarial",
        "--original",
        "/shared/my val",
        "--out",
        "/shared/adv",
        "--workers",
        "2",
    ),
    out="/shared/adv",
    time_limit="2:00:00",
)


def _bash_syntax_ok(script: str, tmp_path: Path) -> None:
    path = tmp_path / "job.sbatch"
    path.write_text(script)
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


def test_native_slurm_script_uses_the_paths_as_they_are(tmp_path: Path) -> None:
    script = slurm_array_script(NATIVE)
    _bash_syntax_ok(script, tmp_path)
    assert "docker" not in script
    assert "#SBATCH --cpus-per-task=2" in script  # one CPU per --workers process
    assert "#SBATCH --time=2:00:00" in script
    *_, merge_line, _fi, set_shard, shard_line = script.strip().splitlines()
    assert set_shard == 'shard="${SLURM_ARRAY_TASK_ID}/4"'
    shard = shlex.split(shard_line)
    assert shard[:3] == ["exec", "benchmark-regen", "generate"]
    assert shard[shard.index("--original") + 1] == "/shared/my val"
    assert shard[-3:] == ["--shard", "$shard", "--resume"]
    merge = shlex.split(merge_line)
    assert merge[:4] == ["exec", "benchmark-regen", "manifest", "merge"]
    assert merge[4:8] == [f"/shared/adv/manifest.shard-{i}-of-4.json" for i in range(4)]
    assert merge[-2:] == ["--out", "/shared/adv/manifest.json"]


def _stand_in(bin_dir: Path, name: str, script: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / name).write_text("#!/bin/sh\n" + script)
    (bin_dir / name).chmod(0o755)


def test_the_merge_step_refuses_when_the_shards_are_not_where_it_runs(tmp_path: Path) -> None:
    """What the merge job sees on a node that does not share --out: exit 4 and why, not
    `manifest merge`'s complaint about a missing file."""
    out = tmp_path / "shared adv"
    spec = dataclasses.replace(NATIVE, out=str(out), command=("generate", "--out", str(out)))
    script = tmp_path / "adv.sbatch"
    script.write_text(slurm_array_script(spec))
    _stand_in(tmp_path / "bin", "benchmark-regen", 'echo "ran: $*"\n')
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"}

    def merge() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(script), "merge"], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    out.mkdir()
    for i in (0, 2):
        (out / f"manifest.shard-{i}-of-4.json").write_text("{}")
    proc = merge()
    assert proc.returncode == 4 and proc.stdout == ""
    assert f"error: 2 of the 4 shard manifests are not in {out} on " in proc.stderr
    assert "every node mounts at the same path" in proc.stderr
    for i in (1, 3):
        (out / f"manifest.shard-{i}-of-4.json").write_text("{}")
    proc = merge()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"ran: manifest merge {out}/manifest.shard-0-of-4.json ")
    # With the image, the host path is looked into before the merge container starts; a
    # named volume cannot be, from the host's shell.
    docker = slurm_array_script(dataclasses.replace(SPEC, out="/shared/adv"))
    _bash_syntax_ok(docker, tmp_path)
    merge_step = docker[docker.index("= merge ]; then") : docker.index("    docker run")]
    assert '[ -e /shared/adv/manifest.shard-"$i"-of-16.json ]' in merge_step
    assert "missing=0" in merge_step and "missing=0" not in slurm_array_script(SPEC)


def test_docker_slurm_script_kills_its_container_with_the_task(tmp_path: Path) -> None:
    script = slurm_array_script(SPEC)
    _bash_syntax_ok(script, tmp_path)
    assert 'cname="adv-bench-${SLURM_JOB_ID:-$$}"' in script
    assert """trap 'docker kill "$cname" >/dev/null 2>&1 || true' TERM INT""" in script
    assert script.count('--name "$cname"') == 2 and script.count("wait $!") == 2


# -- Hostile arguments: quoted, always (issue #23, item 6) ----------------------------------

HOSTILE = (
    "$(touch F)",
    "x ${IFS}$(touch F)",
    "x $(touch F)",
    "`touch F`",
    "${HOME}",
    "$HOME",
    "$((6*7))",
    "; touch F",
    "&& touch F #",
    'it\'s "quoted"',
    "back\\slash\\",
    "*",
    "~",
    "!!",
    "",
    " lead and trail ",
    "line\nbreak",
    "tab\there",
    "\x1b]0;owned\x07",
    "\x1b]52;c;b3duZWQ=\x07",
    "\u009b31m\u009d0;t\u009c",
    "\u202eevil",
    "caf\u00e9 $(touch F)",
    "\udcff not UTF-8",
    "--shard",
    "$(JOB_COMPLETION_INDEX)",
    "$$",
    "${SLURM_ARRAY_TASK_ID}",
)
"""Words a shell (or Kubernetes) would act on: none may run anything or change."""


def _recording_stand_in(bin_dir: Path, name: str) -> Path:
    """A stand-in ``name`` that writes its arguments, NUL-separated, to ``name.args``."""
    _stand_in(bin_dir, name, f"printf '%s\\0' \"$@\" > {shlex.quote(str(bin_dir))}/{name}.args\n")
    return bin_dir / f"{name}.args"


def _run_script(
    script: str, tmp_path: Path, *args: str, home: bool = True
) -> subprocess.CompletedProcess[bytes]:
    """Run the script as a task: with ``home``, its state folder in ``tmp_path/state``."""
    path = tmp_path / "job.sbatch"
    path.write_text(script)
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
           "SLURM_ARRAY_TASK_ID": "3", "SLURM_JOB_ID": "77"}  # fmt: skip
    if home:
        env["XDG_STATE_HOME"] = str(tmp_path / "state")
    return subprocess.run(["bash", str(path), *args], env=env, cwd=tmp_path,
                          capture_output=True, timeout=60)  # fmt: skip


def _received(args_file: Path) -> list[bytes]:
    return args_file.read_bytes().split(b"\0")[:-1]


def _raw(words: Sequence[str]) -> list[bytes]:
    return [w.encode("utf-8", "surrogateescape") for w in words]


def test_hostile_arguments_reach_a_native_task_byte_for_byte(tmp_path: Path) -> None:
    """The issue's `--original-name 'x $(touch F)'` and every other word a shell acts on:
    the task and the merge get each argument byte for byte, and nothing else runs."""
    out = str(tmp_path / "out $(touch F) `touch F`")
    command = ("generate", "--original", "/o", "--out", out,
               *[w for h in HOSTILE for w in ("--original-name", h)])  # fmt: skip
    spec = JobSpec(name="adv", shards=4, image="unused", runtime="none", command=command, out=out)
    script = slurm_array_script(spec)
    _bash_syntax_ok(script, tmp_path)
    received = _recording_stand_in(tmp_path / "bin", "benchmark-regen")
    proc = _run_script(script, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "F").exists()
    assert _received(received) == _raw([*command, "--shard", "3/4", "--resume"])
    Path(out).mkdir()
    for i in range(4):
        (Path(out) / f"manifest.shard-{i}-of-4.json").write_text("{}")
    proc = _run_script(script, tmp_path, "merge")
    assert proc.returncode == 0, proc.stderr
    assert _received(received) == _raw(spec.merge_argv()[1:])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "job.sbatch", Path(out).name]
    # One printable line per command: a script printed to a terminal carries no escape.
    assert all(printable(line) == line for line in script.splitlines())


def test_hostile_arguments_reach_a_docker_task_byte_for_byte(tmp_path: Path) -> None:
    original, out, diff = "/shared/val $(touch F)", "/shared/o`touch F`", "/d\n$(touch F)"
    command = ("diff", "apply", "--original", "/original", "--diff", "/diff", "--out", "/out",
               *[w for h in HOSTILE for w in ("--original-name", h)])  # fmt: skip
    spec = JobSpec(name="adv", shards=16, image="img $(touch F)", command=command,
                   original=original, out=out, diff=diff)  # fmt: skip
    script = slurm_array_script(spec)
    _bash_syntax_ok(script, tmp_path)
    received = _recording_stand_in(tmp_path / "bin", "docker")
    proc = _run_script(script, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "F").exists()
    user = f"{os.getuid()}:{os.getgid()}"
    keys = tmp_path / "state" / "benchmark-regen"  # the run keys outlive the container
    head = ["run", "--rm", "--name", "adv-77", "--network", "none", "--cap-drop", "ALL",
            "--user", user, "-v", f"{original}:/original:ro", "-v", f"{out}:/out",
            "-v", f"{diff}:/diff:ro", "-v", f"{keys}:/state/benchmark-regen",
            "-e", "XDG_STATE_HOME=/state", "img $(touch F)"]  # fmt: skip
    assert _received(received) == _raw([*head, *command, "--shard", "3/16", "--resume"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "job.sbatch", "state"]
    assert keys.stat().st_mode & 0o777 == 0o700
    assert all(printable(line) == line for line in script.splitlines())
    received.unlink()
    proc = _run_script(script, tmp_path, home=False)  # no home, no state folder: no mount
    assert proc.returncode == 0, proc.stderr
    assert "/state/benchmark-regen" not in str(_received(received))


def _k8s_expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' expansion of container args (third_party/forked/golang/expansion):
    ``$(VAR)`` of a defined variable is its value, ``$$`` is ``$``, anything else stays."""
    out, i = [], 0
    while i < len(text):
        if text[i] != "$" or i + 1 == len(text):
            out.append(text[i])
            i += 1
        elif text[i + 1] == "$":
            out.append("$")
            i += 2
        elif text[i + 1] == "(" and ")" in text[i + 2 :]:
            name = text[i + 2 : text.index(")", i + 2)]
            out.append(env.get(name, f"$({name})"))
            i += len(name) + 3
        else:
            out.append(text[i : i + 2])
            i += 2
    return "".join(out)


def test_hostile_arguments_reach_a_kubernetes_pod_unexpanded() -> None:
    utf8 = [h for h in HOSTILE if "\udcff" not in h]  # YAML holds text, not bytes
    command = ("generate", "--original", "/original", "--out", "/out",
               *[w for h in utf8 for w in ("--original-name", h)])  # fmt: skip
    job, merge = yaml.safe_load_all(k8s_indexed_job(dataclasses.replace(SPEC, command=command)))
    env = {"JOB_COMPLETION_INDEX": "5", "HOME": "/root", "SLURM_ARRAY_TASK_ID": "9"}
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [_k8s_expand(a, env) for a in args] == [*command, "--shard", "5/16", "--resume"]
    margs = merge["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [_k8s_expand(a, env) for a in margs] == SPEC.merge_argv()[1:]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"runtime": "podman"}, "--runtime"),
        ({"runtime": "none", "original": None, "out": "/elsewhere"}, "the command writes to"),
        ({"runtime": "none"}, "--original only applies to --runtime docker"),
        ({"runtime": "none", "original": None, "diff": "/d"}, "--diff only applies"),
        ({"original": None}, "--original is required with --runtime docker"),
        ({"time_limit": "2 hours"}, "not a Slurm time"),
    ],
)
def test_bad_slurm_specs(changes: dict[str, object], message: str) -> None:
    base = dict(
        name="adv", shards=2, image="i", command=("generate", "--out", "/shared/adv"),
        original="/shared/val", out="/shared/adv",
    )  # fmt: skip
    with pytest.raises(InputError, match=re.escape(message)):
        JobSpec(**{**base, **changes})  # type: ignore[arg-type]


# -- Slurm submission and waiting, against a fake Slurm ------------------------------------


@dataclasses.dataclass
class FakeSlurm:
    """Answers like Slurm's client tools; ``states`` scripts what each poll sees."""

    states: dict[str, list[list[JobState]]] = dataclasses.field(default_factory=dict)
    submitted: list[list[str]] = dataclasses.field(default_factory=list)
    cancelled: list[str] = dataclasses.field(default_factory=list)
    refuse_after: int = 99

    def sbatch(self, args: Sequence[str], *, cwd: Path) -> str:
        if len(self.submitted) >= self.refuse_after:
            raise ClusterError("Slurm refused the job")
        self.submitted.append(list(args))
        return str(100 + len(self.submitted))

    def jobs(self, job_id: str) -> list[JobState]:
        polls = self.states.get(job_id, [[]])
        return polls.pop(0) if len(polls) > 1 else polls[0]

    def cancel(self, job_ids: Sequence[str]) -> None:
        self.cancelled += job_ids

    def nodes(self) -> list[str]:
        return ["node1"]


def test_submit_makes_the_merge_depend_on_every_shard(tmp_path: Path) -> None:
    fake = FakeSlurm()
    sub = submit_slurm(tmp_path / "adv.sbatch", NATIVE, slurm=fake)
    assert (sub.shards_job, sub.merge_job, sub.tasks) == ("101", "102", "0-3")
    array, merge = fake.submitted
    assert array == ["--array=0-3", str(tmp_path / "adv.sbatch")]
    assert "--dependency=afterok:101" in merge and "--kill-on-invalid-dep=yes" in merge
    assert f"--wrap=bash {tmp_path / 'adv.sbatch'} merge" in merge
    # A rerun of two shards: the merge also waits for what is left of the first job.
    fake = FakeSlurm()
    submit_slurm(tmp_path / "adv.sbatch", NATIVE, tasks="1,3", after=["101"], slurm=fake)
    assert fake.submitted[0][0] == "--array=1,3"
    assert "--dependency=afterok:101,afterany:101" in fake.submitted[1]


def test_submit_refuses_bad_tasks_and_cancels_shards_without_a_merge(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="below 4"):
        submit_slurm(tmp_path / "s", NATIVE, tasks="2,4", slurm=FakeSlurm())
    fake = FakeSlurm(refuse_after=1)
    with pytest.raises(ClusterError):
        submit_slurm(tmp_path / "s", NATIVE, slurm=fake)
    assert fake.cancelled == ["101"]


def _task(job: str, state: str, exit_code: str = "0:0") -> JobState:
    return JobState(job_id=job, state=state, exit_code=exit_code, std_out=f"/logs/{job}.log")


SUB = SlurmSubmission(shards_job="7", merge_job="8", tasks="0-3")


def test_wait_returns_the_merged_manifest(small_original: Path, tmp_path: Path) -> None:
    from toolchain.run.generate import generate_benchmark

    result = generate_benchmark(small_original, "identity", tmp_path / "out")
    spec = dataclasses.replace(NATIVE, out=str(tmp_path / "out"), command=())
    running = [_task(f"7_{i}", "RUNNING") for i in range(4)]
    done = [_task(f"7_{i}", "COMPLETED") for i in range(4)]
    fake = FakeSlurm(states={
        "7": [running, running, done],
        "8": [[_task("8", "PENDING")], [_task("8", "RUNNING")], [_task("8", "COMPLETED")]],
    })  # fmt: skip
    slept: list[float] = []
    manifest = wait_slurm(SUB, spec, timeout=60, slurm=fake, sleep=slept.append)
    assert manifest.root == result.root and len(slept) == 2


def test_wait_names_the_failed_shards_and_how_to_rerun_them() -> None:
    fake = FakeSlurm(states={
        "7": [[_task("7_0", "COMPLETED"), _task("7_3", "TIMEOUT", "0:15"),
               _task("7_1", "FAILED", "3:0"), _task("7_2", "RUNNING")]],
        "8": [[_task("8", "PENDING")]],
    })  # fmt: skip
    with pytest.raises(ClusterError) as e:
        wait_slurm(SUB, NATIVE, timeout=60, slurm=fake, sleep=lambda _: None)
    text = e.value.diagnostics()
    assert "7_1 FAILED (exit 3:0), 7_3 TIMEOUT (exit 0:15)" in text
    assert "no manifest.json was written" in text and "/logs/7_1.log" in text
    assert "--submit --tasks 1,3 --after 7" in text
    assert e.value.exit_code == 4


def test_wait_reports_a_failed_merge_and_a_forgotten_job() -> None:
    fake = FakeSlurm(
        states={"7": [[_task("7_0", "COMPLETED")]], "8": [[_task("8", "FAILED", "3:0")]]}
    )
    with pytest.raises(ClusterError, match="merge job 8 ended FAILED"):
        wait_slurm(SUB, NATIVE, timeout=60, slurm=fake, sleep=lambda _: None)
    fake = FakeSlurm(states={"7": [[]], "8": [[]]})
    with pytest.raises(ClusterError, match="merge job 8 ended UNKNOWN"):
        wait_slurm(SUB, NATIVE, timeout=60, slurm=fake, sleep=lambda _: None)


def test_wait_is_bounded_in_time() -> None:
    fake = FakeSlurm(states={"7": [[_task("7_0", "RUNNING")]], "8": [[_task("8", "PENDING")]]})
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(ClusterError) as e:
        wait_slurm(SUB, NATIVE, timeout=30, poll=2, slurm=fake, clock=lambda: now[0], sleep=sleep)
    assert "did not finish within 30 s" in e.value.message and "scancel 7 8" in (e.value.hint or "")
    assert 30 <= now[0] <= 32

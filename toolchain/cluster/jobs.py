"""Batch-scheduler job files that run a benchmark shard by shard (Slurm array scripts,
Kubernetes Indexed Jobs), written deterministically; Slurm submission and waiting
(``docs/scale-out.md``)."""

from __future__ import annotations

import json
import posixpath
import re
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from toolchain._internal.argv import option_value
from toolchain._internal.terminal import printable
from toolchain.cluster.slurm import FAILED_STATES, SlurmCLI, SlurmClient
from toolchain.container.config import CONTAINER_OUT, KEY_MOUNT
from toolchain.errors import ClusterError, InputError
from toolchain.model.manifest import MANIFEST_NAME, Manifest, load_manifest
from toolchain.run.runkey import KEY_FOLDER_NAME, STATE_VARIABLE

__all__ = [
    "RUNTIMES",
    "JobSpec",
    "SlurmSubmission",
    "k8s_indexed_job",
    "slurm_array_script",
    "submit_slurm",
    "wait_slurm",
]

RUNTIMES = ("docker", "none")
"""How a Slurm task runs benchmark-regen: in the pinned image, or natively from PATH."""

_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?")
# Slurm's --time: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
_TIME = re.compile(r"\d+(:\d{1,2}){0,2}|\d+-\d+(:\d{1,2}){0,2}")


@dataclass(frozen=True, kw_only=True)
class JobSpec:
    """What every shard runs: ``benchmark-regen <command…> --shard I/N --resume``."""

    name: str
    shards: int
    image: str
    command: tuple[str, ...]
    """Arguments after ``benchmark-regen``: container paths with the docker runtime,
    the shared paths themselves with ``runtime="none"``."""
    out: str
    """Shared path (or volume) of the output: mounted at /out, or used as it is."""
    original: str | None = None
    """Shared host path (or volume) of the original, mounted read-only at /original."""
    diff: str | None = None
    runtime: str = "docker"
    time_limit: str | None = None
    """Slurm's per-task ``--time`` (e.g. ``2:00:00``); none means the partition's limit."""

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise InputError(
                f"job name {self.name!r} must be lowercase letters, digits and '-' (max 52)"
            )
        if not 1 <= self.shards <= 10_000:
            raise InputError(f"--shards {self.shards} must be between 1 and 10000")
        if self.runtime not in RUNTIMES:
            raise InputError(f"--runtime {self.runtime!r} must be one of {', '.join(RUNTIMES)}")
        if self.time_limit is not None and not _TIME.fullmatch(self.time_limit):
            raise InputError(
                f"--time {self.time_limit!r} is not a Slurm time",
                hint="use minutes, H:M:S or D-H:M:S, e.g. --time 2:00:00",
            )
        if self.runtime == "docker" and not self.original:
            raise InputError(
                "--original is required with --runtime docker",
                hint="give the shared path of the original; it is mounted read-only at "
                "/original (or --runtime none, to use the command's paths as they are)",
            )
        if self.runtime == "none":
            for option, value in (("--original", self.original), ("--diff", self.diff)):
                if value:
                    raise InputError(
                        f"{option} only applies to --runtime docker (it names a mount)",
                        hint="with --runtime none the command's own paths are used as they are",
                    )
            given = option_value(self.command, "--out")
            if given is not None and posixpath.normpath(given) != posixpath.normpath(self.out):
                raise InputError(
                    f"the command writes to {given!r} but --out is {self.out!r}",
                    hint="with --runtime none they must be the same path: the merge step "
                    "reads the shard manifests from --out",
                )

    @property
    def out_dir(self) -> str:
        """The output folder as the job sees it."""
        return "/out" if self.runtime == "docker" else self.out

    @property
    def cpus_per_task(self) -> int:
        """One CPU per worker process of a shard (``--workers W`` in the command)."""
        value = option_value(self.command, "--workers")
        return int(value) if value and value.isdigit() and int(value) > 0 else 1

    def shard_argv(self, index: str) -> list[str]:
        return ["benchmark-regen", *self.command, "--shard", f"{index}/{self.shards}", "--resume"]

    def shard_manifests(self) -> list[str]:
        return [
            posixpath.join(self.out_dir, f"manifest.shard-{i}-of-{self.shards}.json")
            for i in range(self.shards)
        ]

    def merge_argv(self) -> list[str]:
        target = posixpath.join(self.out_dir, MANIFEST_NAME)
        return ["benchmark-regen", "manifest", "merge", *self.shard_manifests(), "--out", target]

    def merge_check(self) -> list[str]:
        """Shell lines of the merge step that refuse (exit 4) when shard manifests are not
        where the merge runs: the merge job starts only once every shard task completed,
        so a missing one means ``--out`` is not shared by the nodes."""
        if not self.out.startswith("/") and self.runtime == "docker":
            return []  # a named Docker volume: not visible from the host's shell
        folder = _quote(self.out)
        return [
            "    missing=0",
            f"    for i in $(seq 0 {self.shards - 1}); do",
            f'        [ -e {folder}/manifest.shard-"$i"-of-{self.shards}.json ] || '
            "missing=$((missing + 1))",
            "    done",
            '    if [ "$missing" -gt 0 ]; then',
            f'        echo "error: $missing of the {self.shards} shard manifests are not in" \\',
            f'            {folder}" on $(hostname), where this merge runs:" \\',
            '            "--out must be on a filesystem every node mounts at the same path" \\',
            '            "(docs/scale-out.md, Shared storage); if shards are missing, rerun" \\',
            '            "them with --submit --tasks" >&2',
            "        exit 4",
            "    fi",
        ]


def _quote(word: str) -> str:
    """One bash word that is ``word`` byte for byte and expands nothing, on one printable
    line: control characters and bytes that are not UTF-8 as ``$'\\xNN'``."""
    if printable(word) == word:
        return shlex.quote(word)
    out = []
    for b in word.encode("utf-8", "surrogateescape"):
        c = chr(b)
        out.append("\\" + c if c in "'\\" else c if 0x20 <= b < 0x7F else f"\\x{b:02x}")
    return "$'" + "".join(out) + "'"


_SHARD_VARIABLE = "shard"
"""The one variable a Slurm script expands in a command line: the shard ``I/N``, which it
sets itself from ``SLURM_ARRAY_TASK_ID``."""


def _shell_words(argv: Sequence[str], *, shard: bool = False) -> str:
    """Every argument quoted: nothing a user wrote is expanded when the job runs. With
    ``shard``, ``argv`` ends like :meth:`JobSpec.shard_argv` (``--shard I/N --resume``) and
    its ``I/N`` is ``"$shard"``."""
    words = [_quote(a) for a in argv]
    if shard:
        assert argv[-3] == "--shard", argv
        words[-2] = f'"${_SHARD_VARIABLE}"'
    return " ".join(words)


def _docker_run(spec: JobSpec, argv: Sequence[str], *, shard: bool = False) -> str:
    """The task's ``docker run``; a shard's also mounts the run-key folder (``$keymount``,
    set by :data:`_SLURM_KEY_MOUNT`), so that a resubmitted task resumes in its new
    container."""
    mounts = ["-v", f"{spec.original}:/original:ro", "-v", f"{spec.out}:/out"]
    if spec.diff:
        mounts += ["-v", f"{spec.diff}:/diff:ro"]
    user = '"$(id -u):$(id -g)"'
    head = ["docker", "run", "--rm", "--name", '"$cname"', "--network", "none"]
    head += ["--cap-drop", "ALL", "--user", user, *[_quote(m) for m in mounts]]
    if shard:
        head.append('${keymount[@]+"${keymount[@]}"}')
    head.append(_quote(spec.image))
    return " ".join([*head, _shell_words(argv[1:], shard=shard)])


_SLURM_KEY_MOUNT = (
    "# The run keys that let --resume trust the journal live outside --out, in the user's",
    "# state folder (docs/output-folder.md): mounted, so that they outlive the container.",
    "keymount=()",
    # runkey.key_folder's rule, on the node: an absolute XDG_STATE_HOME, else the home's.
    f'case "${{{STATE_VARIABLE}:-}}" in',
    f'    /*) keys="${STATE_VARIABLE}/{KEY_FOLDER_NAME}" ;;',
    f'    *) keys="${{HOME:+$HOME/.local/state/{KEY_FOLDER_NAME}}}" ;;',
    "esac",
    'if [ -n "$keys" ] && mkdir -p "$keys" && chmod 700 "$keys"; then',
    f'    keymount=(-v "$keys:{KEY_MOUNT.target}"'
    + "".join(f" -e {_quote(f'{k}={v}')}" for k, v in KEY_MOUNT.env.items())
    + ")",
    "fi",
)


def _set_shard(spec: JobSpec) -> str:
    return f'{_SHARD_VARIABLE}="${{SLURM_ARRAY_TASK_ID}}/{spec.shards}"'


def slurm_array_script(spec: JobSpec) -> str:
    """A Slurm array script: task ``i`` runs shard ``i``; ``bash SCRIPT merge`` merges."""
    script = f"{spec.name}.sbatch"
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={spec.name}",
        f"#SBATCH --array=0-{spec.shards - 1}",
        f"#SBATCH --cpus-per-task={spec.cpus_per_task}",
        "#SBATCH --output=%x-%A_%a.log",
    ]
    if spec.time_limit:
        lines.append(f"#SBATCH --time={spec.time_limit}")
    lines += [
        f"# Generated by `benchmark-regen jobs slurm --runtime {spec.runtime}`. Submit with",
        f"#   benchmark-regen jobs slurm ... --write {script} --submit --wait",
        "# or by hand:",
        f"#   jid=$(sbatch --parsable {script})",
        "#   sbatch --dependency=afterok:$jid --kill-on-invalid-dep=yes \\",
        f"#       --job-name={spec.name}-merge --wrap 'bash {script} merge'",
        "# Every task resumes its shard: after a failure, `sbatch --array=I SCRIPT` redoes",
        "# only what shard I is missing; then submit the merge again.",
        "set -euo pipefail",
    ]
    if spec.runtime == "docker":
        lines += [
            "# The container is named after the task and killed with it (scancel, --time):",
            "# `docker run` alone would leave it running.",
            f'cname="{spec.name}-${{SLURM_JOB_ID:-$$}}"',
            """trap 'docker kill "$cname" >/dev/null 2>&1 || true' TERM INT""",
            'if [ "${1:-}" = merge ]; then',
            *spec.merge_check(),
            f"    {_docker_run(spec, spec.merge_argv())} &",
            "    wait $!",
            "    exit",
            "fi",
            *_SLURM_KEY_MOUNT,
            _set_shard(spec),
            f"{_docker_run(spec, spec.shard_argv('I'), shard=True)} &",
            "wait $!",
            "",
        ]
    else:
        lines += [
            "if ! command -v benchmark-regen >/dev/null; then",
            '    echo "benchmark-regen is not on PATH on $(hostname): install it on" \\',
            '        "every node, or submit from its virtualenv (sbatch passes PATH on)" >&2',
            "    exit 4",
            "fi",
            'if [ "${1:-}" = merge ]; then',
            *spec.merge_check(),
            f"    exec {_shell_words(spec.merge_argv())}",
            "fi",
            _set_shard(spec),
            f"exec {_shell_words(spec.shard_argv('I'), shard=True)}",
            "",
        ]
    return "\n".join(lines)


def _q(value: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(value)


_K8S_OUT = "out"
"""The output claim's folder that holds the benchmark, mounted at /out."""
_K8S_STATE = "state"
"""The output claim's folder that holds the shards' run keys: outside the benchmark, and
on the storage a replacement pod mounts again (docs/scale-out.md)."""
_K8S_CLAIM = "/volume"
"""Where the init container mounts the output claim's root."""


def k8s_indexed_job(spec: JobSpec) -> str:
    """A Kubernetes Indexed Job (one pod per shard) and the merge Job, as YAML.

    The two Jobs carry the label ``benchmark-regen/step`` (``shards`` or
    ``merge``) so that ``kubectl apply --selector`` starts the merge only after
    the shards completed.
    """
    if spec.runtime != "docker":
        raise InputError("Kubernetes runs the pinned image: --runtime none is for Slurm only")

    def security(indent: str) -> list[str]:
        return [
            f"{indent}  securityContext:",
            f"{indent}    runAsNonRoot: true",
            f"{indent}    allowPrivilegeEscalation: false",
            f'{indent}    capabilities: {{drop: ["ALL"]}}',
        ]

    def init_container(indent: str) -> list[str]:
        # Kubernetes makes a missing subPath folder itself, owned by root: made here by the
        # image's user instead, who can then write them.
        folders = [posixpath.join(_K8S_CLAIM, f) for f in (_K8S_OUT, _K8S_STATE)]
        return [
            f"{indent}- name: output-folders",
            f"{indent}  image: {_q(spec.image)}",
            f"{indent}  command: [{', '.join(_q(w) for w in ('mkdir', '-p', *folders))}]",
            *security(indent),
            f"{indent}  volumeMounts:",
            f"{indent}    - {{name: out, mountPath: {_K8S_CLAIM}}}",
        ]

    def container(argv: Sequence[str], indent: str, *, shard: bool = False) -> list[str]:
        # Kubernetes expands `$(VAR)` in args and reads `$$` as `$`: every `$` of the
        # command is doubled, so only the shard's $(JOB_COMPLETION_INDEX) expands.
        args = [a.replace("$", "$$") for a in argv[1:]]
        if shard:
            args[-2] = argv[-2]
        out = [
            f"{indent}- name: benchmark-regen",
            f"{indent}  image: {_q(spec.image)}",
            f"{indent}  args:",
            *[f"{indent}    - {_q(a)}" for a in args],
        ]
        if shard:
            out.append(f"{indent}  env:")
            out += [
                f"{indent}    - {{name: {_q(k)}, value: {_q(v)}}}" for k, v in KEY_MOUNT.env.items()
            ]
        out += [
            *security(indent),
            f"{indent}  volumeMounts:",
            f"{indent}    - {{name: original, mountPath: /original, readOnly: true}}",
            f"{indent}    - {{name: out, mountPath: {CONTAINER_OUT}, subPath: {_K8S_OUT}}}",
        ]
        if shard:  # the run keys, so that a replaced pod resumes its shard
            out.append(
                f"{indent}    - {{name: out, mountPath: {KEY_MOUNT.state_home}, "
                f"subPath: {_K8S_STATE}}}"
            )
        if spec.diff:
            out.append(f"{indent}    - {{name: diff, mountPath: /diff, readOnly: true}}")
        return out

    def volumes(indent: str) -> list[str]:
        assert spec.original is not None  # JobSpec requires it with the docker runtime
        vols = [
            f"{indent}- name: original",
            f"{indent}  persistentVolumeClaim: {{claimName: {_q(spec.original)}, readOnly: true}}",
            f"{indent}- name: out",
            f"{indent}  persistentVolumeClaim: {{claimName: {_q(spec.out)}}}",
        ]
        if spec.diff:
            vols += [
                f"{indent}- name: diff",
                f"{indent}  persistentVolumeClaim: {{claimName: {_q(spec.diff)}, readOnly: true}}",
            ]
        return vols

    def metadata(name: str, step: str) -> list[str]:
        return [
            "metadata:",
            f"  name: {name}",
            "  labels:",
            "    app.kubernetes.io/name: benchmark-regen",
            f"    benchmark-regen/job: {spec.name}",
            f"    benchmark-regen/step: {step}",
        ]

    shard_argv = spec.shard_argv("$(JOB_COMPLETION_INDEX)")
    lines = [
        "# Generated by `benchmark-regen jobs k8s`. Start the shards, wait, then merge:",
        f"#   kubectl apply -f {spec.name}.yaml --selector benchmark-regen/step=shards",
        f"#   kubectl wait --for=condition=complete job/{spec.name} --timeout=24h",
        f"#   kubectl apply -f {spec.name}.yaml --selector benchmark-regen/step=merge",
        f"#   kubectl wait --for=condition=complete job/{spec.name}-merge --timeout=1h",
        "# Original, output and diff are PersistentVolumeClaims shared by every pod; the",
        "# image runs as uid 10001, which must be able to write the output volume. It holds",
        f"# {_K8S_OUT}/ (the benchmark, at {CONTAINER_OUT}) and {_K8S_STATE}/ "
        f"(the shards' run keys, at {KEY_MOUNT.state_home}).",
        "apiVersion: batch/v1",
        "kind: Job",
        *metadata(spec.name, "shards"),
        "spec:",
        "  completionMode: Indexed",
        f"  completions: {spec.shards}",
        f"  parallelism: {spec.shards}",
        "  backoffLimitPerIndex: 3",
        "  maxFailedIndexes: 0",
        "  template:",
        "    spec:",
        "      restartPolicy: Never",
        "      initContainers:",
        *init_container("        "),
        "      containers:",
        *container(shard_argv, "        ", shard=True),
        "      volumes:",
        *volumes("        "),
        "---",
        "apiVersion: batch/v1",
        "kind: Job",
        *metadata(f"{spec.name}-merge", "merge"),
        "spec:",
        "  completions: 1",
        "  backoffLimit: 2",
        "  template:",
        "    spec:",
        "      restartPolicy: Never",
        "      initContainers:",
        *init_container("        "),
        "      containers:",
        *container(spec.merge_argv(), "        "),
        "      volumes:",
        *volumes("        "),
        "",
    ]
    return "\n".join(lines)


# -- Slurm submission ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SlurmSubmission:
    """The two Slurm jobs of one submission: the shard array and its merge job."""

    shards_job: str
    merge_job: str
    tasks: str
    """The array indices submitted (``0-N-1``, or the ones given to rerun)."""


def submit_slurm(
    script: Path,
    spec: JobSpec,
    *,
    tasks: str | None = None,
    after: Sequence[str] = (),
    slurm: SlurmClient | None = None,
) -> SlurmSubmission:
    """Submit ``script`` (written from ``spec``) and a merge job that runs when it succeeded.

    ``tasks`` submits only these array indices (``"1,3"``) to redo failed shards;
    ``after`` names earlier jobs the merge must also wait for (``afterany``).
    The merge job is cancelled by Slurm if a shard fails, so nothing is merged
    from an incomplete run.
    """
    client = slurm if slurm is not None else SlurmCLI()
    array = tasks or f"0-{spec.shards - 1}"
    if not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", array) or any(
        int(i) >= spec.shards for i in re.findall(r"\d+", array)
    ):
        raise InputError(
            f"--tasks {array!r} must list shard indices below {spec.shards}, e.g. 1,3 or 0-7"
        )
    if any(not a.isdigit() for a in after):
        raise InputError(f"--after {', '.join(after)}: Slurm job ids are numbers")
    folder = script.resolve().parent
    shards_job = client.sbatch([f"--array={array}", str(script.resolve())], cwd=folder)
    dependency = ",".join([f"afterok:{shards_job}", *[f"afterany:{a}" for a in after]])
    try:
        merge_job = client.sbatch(
            [
                f"--dependency={dependency}",
                "--kill-on-invalid-dep=yes",
                f"--job-name={spec.name}-merge",
                "--output=%x-%j.log",
                f"--wrap=bash {shlex.quote(str(script.resolve()))} merge",
            ],
            cwd=folder,
        )
    except ClusterError:
        client.cancel([shards_job])  # shards without their merge would be a half-run
        raise
    return SlurmSubmission(shards_job=shards_job, merge_job=merge_job, tasks=array)


def _index(task: str) -> int:
    return int(task) if task.isdigit() else -1


def wait_slurm(
    submission: SlurmSubmission,
    spec: JobSpec,
    *,
    timeout: float,
    poll: float = 2.0,
    slurm: SlurmClient | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Manifest:
    """Follow a submission until its merge job completed; returns the merged manifest.

    Raises :class:`ClusterError` (exit 4) when a shard task or the merge ends in
    any state but COMPLETED, or when ``timeout`` seconds pass first. Neither
    leaves a ``manifest.json``: the merge job only runs once every shard
    succeeded, and writes the manifest atomically.
    """
    client = slurm if slurm is not None else SlurmCLI()
    deadline = clock() + timeout
    ids = f"{submission.shards_job} (shards) and {submission.merge_job} (merge)"
    while True:
        failed = sorted(
            (t for t in client.jobs(submission.shards_job) if t.state in FAILED_STATES),
            key=lambda t: _index(t.job_id.rpartition("_")[2]),
        )
        if failed:
            names = ", ".join(f"{t.job_id} {t.state} (exit {t.exit_code})" for t in failed[:8])
            logs = ", ".join(t.std_out for t in failed[:3] if t.std_out)
            indices = ",".join(t.job_id.rpartition("_")[2] for t in failed)
            raise ClusterError(
                f"Slurm shard task(s) {names} did not complete; the merge job "
                f"{submission.merge_job} will not run, so no manifest.json was written"
                + (f"; see {logs}" if logs else ""),
                hint=f"fix the cause, then rerun only those shards (each resumes its own work): "
                f"--submit --tasks {indices} --after {submission.shards_job}",
            )
        merge = client.jobs(submission.merge_job)
        state = merge[0].state if merge else "UNKNOWN"
        if state == "COMPLETED":
            break
        if state in FAILED_STATES or not merge:
            log = f"; see {merge[0].std_out}" if merge and merge[0].std_out else ""
            raise ClusterError(
                f"the Slurm merge job {submission.merge_job} ended {state}"
                f"{f' (exit {merge[0].exit_code})' if merge else ''}{log}",
                hint="run the merge by hand once every shard manifest is there: "
                f"benchmark-regen manifest merge {spec.out}/manifest.shard-*-of-{spec.shards}"
                f".json --out {spec.out}/{MANIFEST_NAME}",
            )
        if clock() >= deadline:
            raise ClusterError(
                f"the Slurm jobs {ids} did not finish within {timeout:.0f} s (merge job {state})",
                hint=f"they keep running: follow them with `squeue -j {submission.shards_job},"
                f"{submission.merge_job}`, or stop them with `scancel {submission.shards_job} "
                f"{submission.merge_job}` (the shards resume when resubmitted)",
            )
        sleep(poll)
    target = Path(spec.out) / MANIFEST_NAME
    try:
        return load_manifest(target)
    except (OSError, InputError) as e:
        raise ClusterError(
            f"the Slurm merge job {submission.merge_job} completed, but {target} cannot be "
            f"read here: {e}",
            hint="wait with --wait on a machine that mounts --out at the same path",
        ) from None

"""The Docker engine behind a small interface (:class:`ContainerBackend`, faked in tests/fakes.py),
its docker SDK implementation (failures raise ContainerError), and the line sinks its output goes
to. No stability guarantee."""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from toolchain.errors import ContainerError, os_error_text

__all__ = [
    "BuildRequest",
    "ContainerBackend",
    "DockerSDKBackend",
    "ImageInfo",
    "LineSink",
    "Mount",
    "RunRequest",
    "open_backend",
    "print_err",
    "print_out",
]

LineSink = Callable[[str], None]
"""Where a line of output goes (a progress message, a line a container printed)."""

_START_HINT = (
    'start one with `eval "$(bash .ci/dockerd.sh start)"`, or point DOCKER_HOST at a '
    "running engine (see docker/README.md)"
)


@dataclass(frozen=True, kw_only=True)
class Mount:
    """A bind mount of a host path into a container."""

    source: Path
    target: str
    read_only: bool

    def __str__(self) -> str:
        return f"{self.source}:{self.target}:{'ro' if self.read_only else 'rw'}"


@dataclass(frozen=True, kw_only=True)
class ImageInfo:
    """What we read back from an image: its ID, layers and runtime config."""

    id: str
    diff_ids: tuple[str, ...]
    env: tuple[str, ...]
    labels: Mapping[str, str]
    architecture: str
    os: str


@dataclass(frozen=True, kw_only=True)
class BuildRequest:
    """``docker build`` of ``dockerfile`` (relative to ``context``)."""

    context: Path
    dockerfile: str
    tag: str
    build_args: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    no_cache: bool = False


@dataclass(frozen=True, kw_only=True)
class RunRequest:
    """One confined container run; the defaults are the confinement we insist on."""

    image: str
    argv: tuple[str, ...]
    mounts: tuple[Mount, ...] = ()
    user: str | None = None
    network: str = "none"
    cap_drop: tuple[str, ...] = ("ALL",)
    env: Mapping[str, str] = field(default_factory=dict)
    entrypoint: tuple[str, ...] | None = None


class ContainerBackend(Protocol):
    """The engine operations benchmark-regen uses."""

    def engine(self) -> str:
        """Where the engine answers (for messages), e.g. ``unix:///run/docker.sock``."""
        ...

    def inspect(self, ref: str) -> ImageInfo | None:
        """The image ``ref`` (tag or ID), or ``None`` when the engine has none."""
        ...

    def build(self, request: BuildRequest, *, on_line: LineSink) -> str:
        """Build an image and return its ID (``sha256:…``)."""
        ...

    def save(self, ref: str, dest: Path) -> None:
        """Write ``docker save ref`` (the classic tar layout) to ``dest``."""
        ...

    def load(self, archive: Path) -> None:
        """``docker load`` an archive in the ``docker save`` layout."""
        ...

    def tag(self, image_id: str, tag: str) -> None:
        """Point ``tag`` (``repo:tag``) at ``image_id``."""
        ...

    def remove_image(self, ref: str) -> None:
        """Remove an image (a no-op when it does not exist)."""
        ...

    def run(self, request: RunRequest, *, on_stdout: LineSink, on_stderr: LineSink) -> int:
        """Run a container to completion, stream its output, return its exit code."""
        ...


def _split_lines(buffer: str, chunk: str, sink: LineSink) -> str:
    """Feed complete lines of ``buffer + chunk`` to ``sink``; return the incomplete rest."""
    buffer += chunk
    *lines, rest = buffer.split("\n")
    for line in lines:
        sink(line)
    return rest


class DockerSDKBackend:
    """:class:`ContainerBackend` over the docker SDK (``docker.from_env()``)."""

    def __init__(self, client: Any = None) -> None:
        self._client = client

    def engine(self) -> str:
        return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"

    def close(self) -> None:
        """Close the connection pool (its sockets would otherwise leak)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> DockerSDKBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def client(self) -> Any:
        if self._client is None:
            import docker

            self._probe_unix_socket()
            client = None
            try:
                client = docker.from_env(timeout=600)
                client.ping()
            except docker.errors.DockerException as exc:
                if client is not None:
                    client.close()
                raise ContainerError(
                    f"no Docker engine answers at {self.engine()} ({exc})", hint=_START_HINT
                ) from exc
            self._client = client
        return self._client

    def _probe_unix_socket(self) -> None:
        """Connect to a unix socket ourselves first: when nothing listens, the
        SDK leaks the half-made socket (a ResourceWarning) before raising."""
        host = self.engine()
        if not host.startswith("unix://"):
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            try:
                sock.connect(host.removeprefix("unix://"))
            except OSError as exc:
                raise ContainerError(
                    f"no Docker engine answers at {host} ({os_error_text(exc)})",
                    hint=_START_HINT,
                ) from exc

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        import requests

        import docker

        try:
            yield
        except docker.errors.ImageNotFound as exc:
            raise ContainerError(
                f"{what}: image not found ({exc.explanation})",
                hint="build it with `benchmark-regen image build`",
            ) from exc
        except docker.errors.BuildError as exc:
            raise ContainerError(
                f"{what}: the image build failed: {exc.msg}",
                hint="the lines above show the failing Dockerfile step",
            ) from exc
        except docker.errors.APIError as exc:
            raise ContainerError(f"{what}: the Docker engine refused: {exc.explanation}") from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise ContainerError(
                f"{what}: lost the Docker engine at {self.engine()} ({exc})", hint=_START_HINT
            ) from exc

    def inspect(self, ref: str) -> ImageInfo | None:
        import docker

        with self._errors(f"inspecting image {ref}"):
            try:
                attrs = self.client.api.inspect_image(ref)
            except docker.errors.ImageNotFound:
                return None
        config = attrs.get("Config") or {}
        return ImageInfo(
            id=attrs["Id"],
            diff_ids=tuple(attrs.get("RootFS", {}).get("Layers") or ()),
            env=tuple(config.get("Env") or ()),
            labels=dict(config.get("Labels") or {}),
            architecture=attrs.get("Architecture", "amd64"),
            os=attrs.get("Os", "linux"),
        )

    def build(self, request: BuildRequest, *, on_line: LineSink) -> str:
        with self._errors(f"building {request.tag}"):
            image_id: str | None = None
            rest = ""
            for chunk in self.client.api.build(
                path=str(request.context),
                dockerfile=request.dockerfile,
                tag=request.tag,
                buildargs=dict(request.build_args),
                labels=dict(request.labels) or None,
                nocache=request.no_cache,
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
            ):
                if "error" in chunk:
                    raise ContainerError(
                        f"building {request.tag}: {chunk['error'].strip()}",
                        hint="the lines above show the failing Dockerfile step",
                    )
                if "stream" in chunk:
                    rest = _split_lines(rest, chunk["stream"], on_line)
                aux = chunk.get("aux") or {}
                if "ID" in aux:
                    image_id = aux["ID"]
            if rest:
                on_line(rest)
            if image_id is None:
                info = self.inspect(request.tag)
                if info is None:
                    raise ContainerError(f"building {request.tag}: the engine reported no image")
                image_id = info.id
            return image_id

    def save(self, ref: str, dest: Path) -> None:
        with self._errors(f"saving {ref}"), dest.open("wb") as f:
            for chunk in self.client.api.get_image(ref, chunk_size=1 << 20):
                f.write(chunk)

    def load(self, archive: Path) -> None:
        with self._errors(f"loading {archive.name}"), archive.open("rb") as f:
            for chunk in self.client.api.load_image(f):
                if "error" in chunk:
                    raise ContainerError(f"loading {archive.name}: {chunk['error']}")

    def tag(self, image_id: str, tag: str) -> None:
        repo, _, name = tag.rpartition(":")
        if not repo or "/" in name:
            repo, name = tag, "latest"
        with self._errors(f"tagging {image_id} as {tag}"):
            self.client.api.tag(image_id, repo, name, force=True)

    def remove_image(self, ref: str) -> None:
        import docker

        with self._errors(f"removing {ref}"), suppress(docker.errors.ImageNotFound):
            self.client.api.remove_image(ref, noprune=False)

    def _follow(self, cid: str, channel: str, sink: LineSink) -> None:
        stream = self.client.api.logs(
            cid, stdout=channel == "stdout", stderr=channel == "stderr", stream=True, follow=True
        )
        rest = ""
        try:
            for chunk in stream:
                rest = _split_lines(rest, chunk.decode("utf-8", "replace"), sink)
        finally:
            stream.close()
        if rest:
            sink(rest)

    def run(self, request: RunRequest, *, on_stdout: LineSink, on_stderr: LineSink) -> int:
        api = self.client.api
        with self._errors(f"running {request.image}"):
            host_config = api.create_host_config(
                binds=[str(m) for m in request.mounts],
                network_mode=request.network,
                cap_drop=list(request.cap_drop),
                security_opt=["no-new-privileges"],
            )
            container = api.create_container(
                image=request.image,
                command=list(request.argv),
                entrypoint=list(request.entrypoint) if request.entrypoint is not None else None,
                user=request.user or "",
                environment=dict(request.env),
                host_config=host_config,
                network_disabled=request.network == "none",
                labels={"io.benchmark-regen.run": "1"},
            )
            cid = container["Id"]
            try:
                api.start(cid)
                # One followed log stream per channel (stderr on a thread):
                # unlike attach, these streams can be closed, so no socket leaks.
                err_thread = threading.Thread(
                    target=self._follow, args=(cid, "stderr", on_stderr), daemon=True
                )
                err_thread.start()
                self._follow(cid, "stdout", on_stdout)
                err_thread.join()
                status = api.wait(cid)
                return int(status.get("StatusCode", 1))
            finally:
                api.remove_container(cid, force=True)


@contextmanager
def open_backend(backend: ContainerBackend | None) -> Iterator[ContainerBackend]:
    """The caller's backend, or a Docker SDK one that is closed afterwards."""
    if backend is not None:
        yield backend
        return
    with DockerSDKBackend() as owned:
        yield owned


def print_out(line: str) -> None:
    """The default sink of a container's standard output: this process's stdout."""
    print(line, flush=True)


def print_err(line: str) -> None:
    """The default sink of progress and of a container's standard error: this process's stderr."""
    print(line, file=sys.stderr, flush=True)

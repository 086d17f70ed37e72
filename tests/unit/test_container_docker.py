"""toolchain.container.docker: without an engine, the error names it and no socket
leaks; against a fake docker API, images, tags, builds and confined runs map as documented.

The real engine is used by the ``docker``-marked tests in tests/integration/test_container.py.
"""

from __future__ import annotations

import gc
import socket
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import docker
from tests.fakes import FakeBackend
from toolchain.container.docker import (
    BuildRequest,
    DockerSDKBackend,
    ImageInfo,
    Mount,
    RunRequest,
    _split_lines,
    open_backend,
    print_err,
    print_out,
)
from toolchain.errors import ContainerError


def _no_engine_error(host: str) -> ContainerError:
    """The error of connecting to ``host``, with every socket closed (no ResourceWarning)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ContainerError) as e, DockerSDKBackend() as backend:
            backend.client  # noqa: B018 - connects
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks
    return e.value


def test_nothing_listening_names_the_socket_and_how_to_start_an_engine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    host = f"unix://{tmp_path}/docker.sock"
    monkeypatch.setenv("DOCKER_HOST", host)
    err = _no_engine_error(host)
    assert err.message.startswith(f"no Docker engine answers at {host} (")
    assert "dockerd.sh start" in (err.hint or "") and "DOCKER_HOST" in (err.hint or "")
    assert err.exit_code == 4


def test_a_socket_that_is_no_docker_engine_is_refused_without_a_leak(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "not-docker.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                try:
                    if conn.recv(65536):
                        conn.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: 2\r\n"
                                     b"Connection: close\r\n\r\nno")  # fmt: skip
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    try:
        err = _no_engine_error(f"unix://{path}")
    finally:
        server.shutdown(socket.SHUT_RDWR)
        server.close()
        thread.join(5)
    assert f"no Docker engine answers at unix://{path}" in err.message


def test_engine_defaults_to_the_standard_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert DockerSDKBackend().engine() == "unix:///var/run/docker.sock"
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.1:2375")
    assert DockerSDKBackend().engine() == "tcp://10.0.0.1:2375"


def test_mounts_print_as_docker_binds() -> None:
    assert str(Mount(source=Path("/data/val"), target="/original", read_only=True)) == (
        "/data/val:/original:ro"
    )
    assert str(Mount(source=Path("/b"), target="/out", read_only=False)) == "/b:/out:rw"


def test_run_requests_default_to_confinement() -> None:
    r = RunRequest(image="i", argv=("env",))
    assert (r.network, r.cap_drop, r.user, r.mounts) == ("none", ("ALL",), None, ())


def test_lines_are_split_across_chunks() -> None:
    lines: list[str] = []
    rest = _split_lines("", "one\ntw", lines.append)
    rest = _split_lines(rest, "o\n\nthr", lines.append)
    assert (lines, rest) == (["one", "two", ""], "thr")


# -- against a fake docker API -----------------------------------------------------------


@dataclass
class FakeAPI:
    """The low-level ``docker.APIClient`` calls the backend makes, recorded."""

    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    logs_out: list[bytes] = field(default_factory=list)
    logs_err: list[bytes] = field(default_factory=list)
    status: int = 0
    fail_start: bool = False
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def inspect_image(self, ref: str) -> dict[str, Any]:
        if ref not in self.images:
            raise docker.errors.ImageNotFound(f"no such image: {ref}")
        return self.images[ref]

    def tag(self, image: str, repo: str, tag: str, force: bool) -> None:
        self.calls.append(("tag", (image, repo, tag)))

    def remove_image(self, ref: str, noprune: bool) -> None:
        self.calls.append(("remove_image", ref))
        if ref not in self.images:
            raise docker.errors.ImageNotFound(f"no such image: {ref}")

    def build(self, **kw: Any) -> Iterator[dict[str, Any]]:
        self.calls.append(("build", kw))
        yield {"stream": "Step 1/2 : FROM x\nStep 2"}
        yield {"stream": "/2 : RUN y\n"}
        if kw["tag"] == "broken:1":
            yield {"error": "The command '/bin/sh -c y' returned a non-zero code: 1\n"}
        yield {"aux": {"ID": "sha256:" + "f" * 64}}
        yield {"stream": "Successfully built ffff"}

    def create_host_config(self, **kw: Any) -> dict[str, Any]:
        return kw

    def create_container(self, **kw: Any) -> dict[str, str]:
        self.calls.append(("create_container", kw))
        return {"Id": "c1"}

    def start(self, cid: str) -> None:
        if self.fail_start:
            raise docker.errors.APIError("cannot start", explanation="no such file: /entry")

    def logs(self, cid: str, *, stdout: bool, stderr: bool, stream: bool, follow: bool) -> Any:
        return _Stream(self.logs_out if stdout else self.logs_err)

    def wait(self, cid: str) -> dict[str, int]:
        return {"StatusCode": self.status}

    def remove_container(self, cid: str, force: bool) -> None:
        self.calls.append(("remove_container", cid))


class _Stream:
    def __init__(self, chunks: list[bytes]):
        self.chunks, self.closed = chunks, False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeClient:
    api: FakeAPI

    def close(self) -> None:
        pass


def _backend(api: FakeAPI) -> DockerSDKBackend:
    return DockerSDKBackend(client=FakeClient(api))


def test_inspect_reads_id_layers_and_config_or_none() -> None:
    api = FakeAPI(images={"x:1": {
        "Id": "sha256:" + "a" * 64, "RootFS": {"Layers": ["sha256:" + "1" * 64]},
        "Config": {"Env": ["LANG=C.UTF-8"], "Labels": {"k": "v"}}, "Architecture": "arm64",
    }})  # fmt: skip
    info = _backend(api).inspect("x:1")
    assert info == ImageInfo(
        id="sha256:" + "a" * 64, diff_ids=("sha256:" + "1" * 64,), env=("LANG=C.UTF-8",),
        labels={"k": "v"}, architecture="arm64", os="linux",
    )  # fmt: skip
    assert _backend(api).inspect("missing:1") is None
    bare = FakeAPI(images={"y": {"Id": "sha256:" + "b" * 64, "Config": None}})
    assert _backend(bare).inspect("y") == ImageInfo(
        id="sha256:" + "b" * 64, diff_ids=(), env=(), labels={}, architecture="amd64", os="linux"
    )


@pytest.mark.parametrize(
    ("tag", "repo", "name"),
    [
        ("benchmark-regen:latest", "benchmark-regen", "latest"),
        ("registry:5000/team/br:1.0", "registry:5000/team/br", "1.0"),
        ("registry:5000/team/br", "registry:5000/team/br", "latest"),  # a port, not a tag
        ("br", "br", "latest"),
    ],
)
def test_tag_splits_repository_and_tag(tag: str, repo: str, name: str) -> None:
    api = FakeAPI()
    _backend(api).tag("sha256:" + "a" * 64, tag)
    assert api.calls == [("tag", ("sha256:" + "a" * 64, repo, name))]


def test_removing_a_missing_image_is_a_no_op() -> None:
    api = FakeAPI()
    _backend(api).remove_image("gone:1")
    assert api.calls == [("remove_image", "gone:1")]


def test_build_streams_whole_lines_and_returns_the_id(tmp_path: Path) -> None:
    api = FakeAPI()
    lines: list[str] = []
    request = BuildRequest(context=tmp_path, dockerfile="Dockerfile", tag="br:1",
                           build_args={"A": "1"}, labels={"l": "v"})  # fmt: skip
    assert _backend(api).build(request, on_line=lines.append) == "sha256:" + "f" * 64
    assert lines == ["Step 1/2 : FROM x", "Step 2/2 : RUN y", "Successfully built ffff"]
    [(_, kw)] = api.calls
    assert (kw["pull"], kw["rm"], kw["forcerm"], kw["buildargs"]) == (False, True, True, {"A": "1"})


def test_a_failed_build_step_is_a_container_error() -> None:
    request = BuildRequest(context=Path("."), dockerfile="Dockerfile", tag="broken:1")
    with pytest.raises(ContainerError, match="building broken:1: The command") as e:
        _backend(FakeAPI()).build(request, on_line=lambda _: None)
    assert "failing Dockerfile step" in (e.value.hint or "")


def test_run_is_confined_streams_both_channels_and_always_removes_the_container() -> None:
    api = FakeAPI(logs_out=[b'{"root": ', b'"sha256:00"}\nlast'], logs_err=[b"warn\n"], status=3)
    out: list[str] = []
    err: list[str] = []
    request = RunRequest(
        image="br:1", argv=("generate", "--out", "/out"),
        mounts=(Mount(source=Path("/h/out"), target="/out", read_only=False),),
        user="1000:1000", env={"A": "1"},
    )  # fmt: skip
    assert _backend(api).run(request, on_stdout=out.append, on_stderr=err.append) == 3
    assert out == ['{"root": "sha256:00"}', "last"] and err == ["warn"]
    (name, kw), removed = api.calls
    assert name == "create_container" and removed == ("remove_container", "c1")
    host = kw["host_config"]
    assert host["binds"] == ["/h/out:/out:rw"] and host["network_mode"] == "none"
    assert host["cap_drop"] == ["ALL"] and host["security_opt"] == ["no-new-privileges"]
    assert kw["network_disabled"] is True and kw["user"] == "1000:1000"
    assert kw["command"] == ["generate", "--out", "/out"] and kw["entrypoint"] is None


def test_an_engine_refusal_is_a_container_error_and_the_container_is_removed() -> None:
    api = FakeAPI(fail_start=True)
    with pytest.raises(ContainerError, match="running br:1: the Docker engine refused: no such"):
        _backend(api).run(RunRequest(image="br:1", argv=()), on_stdout=print, on_stderr=print)
    assert api.calls[-1] == ("remove_container", "c1")


def test_close_is_idempotent() -> None:
    backend = _backend(FakeAPI())
    backend.close()
    backend.close()


def test_sdk_backend_without_engine_names_the_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/benchmark-regen.sock")
    with pytest.raises(ContainerError) as exc:
        DockerSDKBackend().inspect("benchmark-regen:latest")
    text = exc.value.diagnostics()
    assert "unix:///nonexistent/benchmark-regen.sock" in text and "dockerd.sh" in text


def test_open_backend_lends_the_callers_backend_or_opens_and_closes_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeBackend()
    with open_backend(fake) as engine:
        assert engine is fake
    closed: list[bool] = []
    monkeypatch.setattr(DockerSDKBackend, "close", lambda self: closed.append(True))
    with open_backend(None) as engine:
        assert isinstance(engine, DockerSDKBackend) and not closed
    assert closed == [True]


def test_the_default_sinks_print_whole_lines(capsys: pytest.CaptureFixture[str]) -> None:
    print_out("to stdout")
    print_err("to stderr")
    assert capsys.readouterr() == ("to stdout\n", "to stderr\n")

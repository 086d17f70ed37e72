"""Test doubles: a container backend that records calls instead of talking to an engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolchain.container.docker import (
    BuildRequest,
    ImageInfo,
    LineSink,
    RunRequest,
)
from toolchain.errors import ContainerError

__all__ = ["FakeBackend"]


@dataclass(kw_only=True)
class FakeBackend:
    """A :class:`ContainerBackend` that records calls, for unit tests.

    ``images`` maps refs to :class:`ImageInfo`; ``run_output`` is printed by
    every run and ``exit_code`` returned; ``fail`` makes every call raise.
    """

    images: dict[str, ImageInfo] = field(default_factory=dict)
    exit_code: int = 0
    run_output: Sequence[str] = ()
    fail: ContainerError | None = None
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def _record(self, name: str, arg: Any) -> None:
        self.calls.append((name, arg))
        if self.fail is not None:
            raise self.fail

    def engine(self) -> str:
        return "fake://"

    def inspect(self, ref: str) -> ImageInfo | None:
        self._record("inspect", ref)
        return self.images.get(ref)

    def build(self, request: BuildRequest, *, on_line: LineSink) -> str:
        self._record("build", request)
        image_id = "sha256:" + "b" * 64
        self.images[request.tag] = self.images[image_id] = ImageInfo(
            id=image_id, diff_ids=(), env=(), labels=dict(request.labels),
            architecture="amd64", os="linux",
        )  # fmt: skip
        on_line("Successfully built fake")
        return image_id

    def save(self, ref: str, dest: Path) -> None:
        self._record("save", ref)

    def load(self, archive: Path) -> None:
        self._record("load", archive)

    def tag(self, image_id: str, tag: str) -> None:
        self._record("tag", (image_id, tag))
        if image_id in self.images:
            self.images[tag] = self.images[image_id]

    def remove_image(self, ref: str) -> None:
        self._record("remove_image", ref)

    def run(self, request: RunRequest, *, on_stdout: LineSink, on_stderr: LineSink) -> int:
        self._record("run", request)
        for line in self.run_output:
            on_stdout(line)
        return self.exit_code

    @property
    def runs(self) -> list[RunRequest]:
        return [arg for name, arg in self.calls if name == "run"]

"""toolchain.hub._client: the real huggingface_hub, offline: a snapshot laid out in its cache is
found, and every failure (missing repo or revision, the Hub unreachable, a push offline) is
our error naming the repo, the revision and what to do."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from tests.hf_cases import hf_offline
from tests.hub_cases import lay_out
from tests.hub_snapshots import hub_offline
from toolchain.errors import ExitCode, InputError, OutputError, SourceError
from toolchain.hub import _client

__all__ = ["hf_offline", "hub_offline"]

COMMIT = "5e" * 20


@pytest.fixture
def files(tmp_path: Path) -> Path:
    root = tmp_path / "files"
    (root / "data").mkdir(parents=True)
    (root / "data" / "x.txt").write_text("x\n")
    return root


def test_repo_ids() -> None:
    assert _client.is_repo_id("org/name") and _client.is_repo_id("a-b/c.d_e")
    for bad in ("name", "org/name/x", "/abs", "org/..", "../x", "org/", "org name/x", ""):
        assert not _client.is_repo_id(bad), bad


def test_fetch_finds_the_cached_snapshot_offline(hub_offline: Path, files: Path) -> None:
    snapshot = lay_out(hub_offline, "org/data", files, COMMIT)
    assert _client.hub_cache() == hub_offline
    for revision in (None, "main", COMMIT):
        got = _client.fetch(
            "org/data", revision=revision, what="the original", error=SourceError, hint="h"
        )
        assert got == snapshot and (got / "data" / "x.txt").read_text() == "x\n"


def test_push_offline_is_an_output_error_that_keeps_the_folder(
    hub_offline: Path, files: Path
) -> None:
    with pytest.raises(OutputError) as e:
        _client.upload(files, "org/data", private=True, revision=None, message="m")
    assert e.value.exit_code == ExitCode.ENVIRONMENT
    assert "cannot push" in e.value.message and "offline mode is on" in e.value.message
    assert "huggingface-cli login" in (e.value.hint or "") and (files / "data" / "x.txt").exists()


def test_push_without_a_network_names_the_transport_error(
    hf_offline: Path, files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants as hub_constants

    # Online mode, on a machine that reaches no Hub: an endpoint nothing listens on.
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub_constants, "ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(OutputError, match=r"cannot push .* org/data: \w*Error") as e:
        _client.upload(files, "org/data", private=False, revision="v1", message="m")
    assert e.value.exit_code == ExitCode.ENVIRONMENT


def _gated(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the Hub answers for a gated repo whose terms the user has not accepted (the
    Hub is unreachable here: its error is raised as huggingface_hub raises it)."""
    import huggingface_hub
    from huggingface_hub import errors

    # the HTTP library huggingface_hub's errors carry a response of (its name varies)
    http = importlib.import_module(errors.HfHubHTTPError.__mro__[1].__module__.split(".")[0])
    url = "https://huggingface.co/api/datasets/org/gated/revision/abc"
    response = http.Response(403, request=http.Request("GET", url))

    def gated(*args: object, **kwargs: object) -> str:
        raise errors.GatedRepoError("Access to dataset org/gated is restricted", response=response)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", gated)


@pytest.mark.parametrize(
    ("repo", "revision", "what", "error", "says"),
    [
        pytest.param(
            "org/data", "v2", "the original", SourceError,
            ["the original org/data at revision v2 is not in the Hugging Face cache",
             "offline mode is on (HF_HUB_OFFLINE=1)", "https://huggingface.co/datasets/org/data"],
            id="missing revision",
        ),
        pytest.param(
            "org/none", None, "the publication", InputError,
            ["the publication org/none is not in the Hugging Face cache"],
            id="missing repo",
        ),
        pytest.param(
            "org/gated", "abc", "the original", SourceError,
            ["the original org/gated at revision abc is gated",
             "accept its terms on https://huggingface.co/datasets/org/gated"],
            id="gated repo",
        ),
    ],
)  # fmt: skip
def test_a_repo_that_cannot_be_fetched_is_named_with_its_revision_and_the_fix(
    hub_offline: Path, files: Path, monkeypatch: pytest.MonkeyPatch,
    repo: str, revision: str | None, what: str, error: type[InputError], says: list[str],
) -> None:  # fmt: skip
    lay_out(hub_offline, "org/data", files, COMMIT)  # the repo, at another revision
    if repo == "org/gated":
        _gated(monkeypatch)
    with pytest.raises(error) as e:
        _client.fetch(repo, revision=revision, what=what, error=error, hint="or pass original=")
    assert type(e.value) is error
    text = e.value.diagnostics()
    for part in says:
        assert part in text
    assert "huggingface-cli login" in text and text.endswith("or pass original=")
    assert e.value.exit_code == ExitCode.BAD_INPUT

"""``diff create``: seal a verified benchmark against its original into one ``.bdiff``.

The pipeline::

    verify the benchmark → read its canonical manifest bytes → benchmark id
        → per entry: read original → decode → check source_pixels → decode target
          → check pixels → pack (delta or full) → key material → HKDF key → seal
        → write the container (deterministic: same inputs, same bytes)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from toolchain._internal.executor import run_ordered
from toolchain.decode import decode
from toolchain.diff.codec import pack_payload
from toolchain.diff.crypto import derive_key, fingerprint, pixels_key_material, seal_payload
from toolchain.diff.format import Header, KeyOn, PayloadKind, SealedEntry, benchmark_id, write_diff
from toolchain.errors import DecodeError, InputError, Interrupted, ManifestError
from toolchain.hashing import pixel_digest
from toolchain.manifest import MANIFEST_NAME, ManifestEntry, dump_manifest, parse_manifest
from toolchain.source import Source, open_source
from toolchain.verify import verify_benchmark

__all__ = ["CreateResult", "create_diff"]


@dataclass(frozen=True, kw_only=True)
class CreateResult:
    out: Path
    header: Header
    kinds: tuple[PayloadKind, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "bytes": self.header.file_length,
            "delta": sum(k is PayloadKind.DELTA for k in self.kinds),
            "full": sum(k is PayloadKind.FULL for k in self.kinds),
            "key_on": str(self.header.key_on),
            "out": str(self.out),
            "samples": self.header.entry_count,
        }


@dataclass(frozen=True)
class _SealJob:
    """Seal one sample; picklable, sent once to each worker."""

    source: Source
    benchmark: Path
    key_on: KeyOn
    salt: bytes

    def __call__(self, entry: ManifestEntry) -> SealedEntry:
        data = self.source.read(entry.id)
        try:
            original = decode(data)
            target = decode((self.benchmark / entry.path).read_bytes())
        except DecodeError as e:
            e.sample = entry.id
            raise
        if pixel_digest(original) != entry.source_pixels:
            raise InputError(
                "this original decodes to other pixels than the benchmark was made from",
                sample=entry.id,
                hint="create the diff from the exact original (and decoder) used by generate",
            )
        if pixel_digest(target) != entry.pixels:
            raise InputError(f"{entry.path} does not match the manifest", sample=entry.id)
        kind, plaintext = pack_payload(original, target)
        ikm = data if self.key_on is KeyOn.FILE else pixels_key_material(original)
        key = derive_key(ikm, salt=self.salt, key_on=self.key_on, sample_id=entry.id)
        return SealedEntry(
            kind=kind,
            fingerprint=fingerprint(ikm, key_on=self.key_on),
            sealed=seal_payload(key, kind, plaintext),
        )


def _verified_manifest_bytes(benchmark: Path) -> bytes:
    report = verify_benchmark(benchmark)
    if not report.ok:
        raise InputError(
            f"the benchmark in {benchmark} does not verify ({len(report.problems)} problems)",
            hint=f"run `benchmark-regen verify {benchmark}` and fix it before making a diff",
        )
    data = (benchmark / MANIFEST_NAME).read_bytes()
    if dump_manifest(parse_manifest(data)) != data:
        raise ManifestError(
            f"{benchmark / MANIFEST_NAME} is not in canonical form",
            hint="use the manifest exactly as generate wrote it",
        )
    return data


def create_diff(
    original: str | os.PathLike[str],
    benchmark: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    key_on: str = "file",
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> CreateResult:
    """Write ``out``, a ``.bdiff`` that rebuilds ``benchmark`` for holders of ``original``.

    Refuses a benchmark that does not verify. The output is byte-identical for
    the same original, benchmark, ``key_on`` and zstd version.
    """
    try:
        mode = KeyOn(key_on)
    except ValueError:
        raise InputError(f"key_on must be 'file' or 'pixels', not {key_on!r}") from None
    bench = Path(benchmark)
    manifest_bytes = _verified_manifest_bytes(bench)
    manifest = parse_manifest(manifest_bytes)
    source = open_source(original)
    present = set(source.listing().ids)
    absent = [e.id for e in manifest.entries if e.id not in present]
    if absent:
        raise InputError(
            f"{len(absent)} samples of the benchmark are not in the original, e.g. {absent[0]!r}",
            hint="create the diff from the original the benchmark was generated from",
        )
    job = _SealJob(
        source=source, benchmark=bench.resolve(), key_on=mode, salt=benchmark_id(manifest_bytes)
    )
    entries = list(manifest.entries)
    kinds: list[PayloadKind] = []

    def sealed() -> Iterator[SealedEntry]:
        with run_ordered(job, entries, workers=workers) as run:
            for s in run:
                kinds.append(s.kind)
                if progress:
                    progress(len(kinds), len(entries))
                yield s

    try:
        header = write_diff(
            Path(out),
            key_on=mode,
            manifest_bytes=manifest_bytes,
            entries=sealed(),
            entry_count=len(entries),
        )
    except KeyboardInterrupt:
        raise Interrupted(
            "interrupted; no diff was written", hint="run the same command again"
        ) from None
    finally:
        source.close()
    return CreateResult(out=Path(out), header=header, kinds=tuple(kinds))

"""File manifests of built artefacts: sizes and block checksums written at build, verified at load.

Every artefact directory except the graph (the text index, the statistics index) holds an
``artefacts.json`` written last by its build::

    {"format_version": 1, "kind": "text index", "rebuild": "kgrag build-text-index",
     "written_at": "...", "block_size": 67108864,
     "files": {"faiss.index": {"size": 35719725, "sha256": ["<hex of bytes 0..64 MiB>", ...]}, ...}}

Each file has its size and the SHA-256 of each 64 MiB block (a small file has one block, the
SHA-256 of the whole file; SHA-256 runs at ~1 GB/s here, faster than BLAKE2 on CPUs with SHA
extensions). :func:`verify` always checks that every file is there with its size (a few ``stat``
calls) and, with ``full=True``, every block's checksum; a file modified after the manifest was
written is always checked in full. :func:`verify_on_load` is what loaders call: full checksums
when the artefact is small (up to 128 MiB, ~0.1 s) or when an interrupted build was found beside
it, sizes only otherwise. A problem is an :class:`~kgrag.errors.ArtefactError` naming the file,
what is wrong, and the command that rebuilds it. :func:`kgrag.health.verify_all` checks every
artefact under a home and returns one :class:`ArtefactCheck` per artefact instead of raising.

Example::

    from kgrag.indexes.artefacts import verify, write_manifest
    write_manifest(index_dir, kind="text index", rebuild="kgrag build-text-index")   # at the end of a build
    verify(index_dir, full=False)   # sizes: raises ArtefactError naming a truncated or missing file
    verify(index_dir, full=True)    # and checksums: catches same-size damage
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from kgrag.errors import ArtefactError


ARTEFACTS_FILE = "artefacts.json"
FORMAT_VERSION = 1
BLOCK_SIZE = 64 << 20
FULL_ON_LOAD_MAX_BYTES = 128 << 20
READ_CHUNK = 8 << 20
SWAP_WAIT_S = 2.0  # how long a reader waits for a build's second rename

TEXT_INDEX_KIND = "text index"
TEXT_INDEX_REBUILD = "kgrag build-text-index"
STATS_INDEX_KIND = "statistics index"
STATS_INDEX_REBUILD = "kgrag build-stats-index"
EMBEDDING_CACHE_KIND = "embedding cache"

CheckStatus = Literal["ok", "damaged", "missing", "unverifiable"]


class FileEntry(BaseModel):
    """One file of an artefact: its size in bytes and the SHA-256 of each block."""

    size: int = Field(ge=0)
    sha256: list[str]


class ArtefactManifest(BaseModel):
    """The files of an artefact directory, written last by its build (``artefacts.json``)."""

    format_version: int = FORMAT_VERSION
    kind: str
    rebuild: str
    written_at: str
    block_size: int = Field(default=BLOCK_SIZE, gt=0)
    files: dict[str, FileEntry]

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self.files.values())


class ArtefactCheck(BaseModel):
    """The result of checking one artefact: what was checked, how, and what is wrong."""

    kind: str
    path: str
    status: CheckStatus
    full: bool
    problems: list[str] = Field(default_factory=list)
    rebuild: str
    files: int = 0
    bytes_checked: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def block_checksums(path: Path, block_size: int = BLOCK_SIZE) -> list[str]:
    """SHA-256 hex digests of consecutive ``block_size`` blocks of ``path`` (one for an empty file)."""
    digests: list[str] = []
    with path.open("rb") as handle:
        while True:
            digest, read = hashlib.sha256(), 0
            while read < block_size:
                chunk = handle.read(min(READ_CHUNK, block_size - read))
                if not chunk:
                    break
                digest.update(chunk)
                read += len(chunk)
            if read == 0 and digests:
                return digests
            digests.append(digest.hexdigest())
            if read < block_size:
                return digests


def artefact_files(directory: Path) -> list[str]:
    """Every regular file under ``directory`` (relative POSIX paths, sorted), the manifest itself excepted."""
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*")
                  if p.is_file() and p.name != ARTEFACTS_FILE)


def write_manifest(directory: Path, files: Sequence[str] | None = None, *, kind: str, rebuild: str,
                   block_size: int = BLOCK_SIZE) -> ArtefactManifest:
    """Describe ``files`` (default: every file) of ``directory`` in its ``artefacts.json``; call it last in a build."""
    directory = Path(directory)
    names = list(files) if files is not None else artefact_files(directory)
    entries = {name: FileEntry(size=(directory / name).stat().st_size,
                               sha256=block_checksums(directory / name, block_size)) for name in names}
    manifest = ArtefactManifest(kind=kind, rebuild=rebuild, block_size=block_size, files=entries,
                                written_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    tmp = directory / f".{ARTEFACTS_FILE}.tmp"
    tmp.write_text(manifest.model_dump_json(indent=1))
    os.replace(tmp, directory / ARTEFACTS_FILE)
    return manifest


def read_artefact_manifest(directory: Path, *, kind: str, rebuild: str) -> ArtefactManifest | None:
    """The ``artefacts.json`` of ``directory``; None when there is none (built before manifests)."""
    path = Path(directory) / ARTEFACTS_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ArtefactError(f"{kind} at {directory}: cannot read {path} ({exc}); rebuild it with `{rebuild}`") from None
    try:
        return ArtefactManifest.model_validate_json(text)
    except ValidationError:
        raise ArtefactError(f"{kind} at {directory} is damaged: {path} is not a valid file manifest; "
                            f"rebuild it with `{rebuild}`") from None


def _file_problems(directory: Path, name: str, entry: FileEntry, *, full: bool, block_size: int,
                   manifest_mtime: float) -> tuple[list[str], int]:
    """What is wrong with one file (empty when nothing), and how many bytes were hashed."""
    path = directory / name
    try:
        stat = path.stat()
    except FileNotFoundError:
        return [f"{path}: missing"], 0
    if stat.st_size != entry.size:
        return [f"{path}: size {stat.st_size} bytes, expected {entry.size} (truncated or overwritten)"], 0
    if not (full or stat.st_mtime > manifest_mtime):
        return [], 0
    actual = block_checksums(path, block_size)
    bad = [i for i, (a, b) in enumerate(zip(actual, entry.sha256)) if a != b]
    if len(actual) != len(entry.sha256):
        bad = bad or [min(len(actual), len(entry.sha256))]
    if not bad:
        return [], stat.st_size
    first = bad[0] * block_size
    return [f"{path}: checksum mismatch in {len(bad)} of {len(entry.sha256)} block(s) "
            f"(the first starts at byte {first}): same size, different content"], stat.st_size


def check(directory: Path, *, full: bool, kind: str, rebuild: str | None = None) -> ArtefactCheck:
    """Check ``directory`` against its manifest without raising: sizes always, checksums when ``full``.

    ``rebuild`` (the command to name) defaults to the one the manifest recorded.
    """
    directory = Path(directory)
    started = time.perf_counter()
    result = ArtefactCheck(kind=kind, path=str(directory), status="ok", full=full,
                           rebuild=rebuild or "the build command")
    if not directory.is_dir():
        result.status, result.problems = "missing", [f"{directory}: no {kind} (not built)"]
        return result
    try:
        manifest = read_artefact_manifest(directory, kind=kind, rebuild=result.rebuild)
    except ArtefactError as exc:
        result.status, result.problems = "damaged", [str(exc)]
        return result
    if manifest is None:
        result.status = "unverifiable"
        result.problems = [f"{directory}: no {ARTEFACTS_FILE} (built before file manifests); rebuild it with "
                           f"`{result.rebuild}` to make it verifiable"]
        return result
    result.rebuild = rebuild or manifest.rebuild
    manifest_mtime = (directory / ARTEFACTS_FILE).stat().st_mtime
    for name, entry in manifest.files.items():
        problems, hashed = _file_problems(directory, name, entry, full=full, block_size=manifest.block_size,
                                          manifest_mtime=manifest_mtime)
        result.problems.extend(problems)
        result.bytes_checked += hashed
    result.files = len(manifest.files)
    result.status = "damaged" if result.problems else "ok"
    result.seconds = round(time.perf_counter() - started, 4)
    return result


def _raise_if_damaged(result: ArtefactCheck) -> None:
    if result.status in ("damaged", "missing"):
        raise ArtefactError(f"{result.kind} at {result.path} is damaged: {'; '.join(result.problems)}; "
                            f"rebuild it with `{result.rebuild}`")


def verify(directory: Path, *, full: bool, kind: str = "artefact", rebuild: str | None = None,
           required: bool = True) -> ArtefactCheck:
    """Raise :class:`ArtefactError` if a file of ``directory`` is missing, of the wrong size or (``full``) checksum.

    With ``required=False`` an artefact without a manifest passes (status ``unverifiable``).
    """
    result = check(directory, full=full, kind=kind, rebuild=rebuild)
    if result.status == "unverifiable" and required:
        raise ArtefactError(f"{kind} at {directory} has no {ARTEFACTS_FILE}; rebuild it with `{result.rebuild}`")
    _raise_if_damaged(result)
    return result


def verify_on_load(directory: Path, *, kind: str, rebuild: str, interrupted: Sequence[Path] = (),
                   full_max_bytes: int | None = None) -> ArtefactCheck:
    """The check a loader makes: full checksums when the artefact is at most ``full_max_bytes`` or an
    ``interrupted`` build lies beside it, sizes (and files newer than the manifest) otherwise.

    An artefact built before manifests loads with a warning on stderr that it cannot be verified.
    """
    limit = FULL_ON_LOAD_MAX_BYTES if full_max_bytes is None else full_max_bytes
    manifest = read_artefact_manifest(directory, kind=kind, rebuild=rebuild)
    full = bool(interrupted) or (manifest is not None and manifest.total_bytes <= limit)
    result = verify(directory, full=full, kind=kind, rebuild=rebuild, required=False)
    if result.status == "unverifiable":
        print(f"warning: {result.problems[0]}", file=sys.stderr)
    return result


def swap_aside_name(directory: Path) -> Path:
    """Where a build moves the artefact it replaces, between its two renames: ``.<name>-old-<ns>``."""
    return directory.with_name(f".{directory.name}-old-{time.time_ns()}")


def staging_siblings(directory: Path, prefix: str) -> list[Path]:
    """Build staging folders beside ``directory`` whose names start with ``prefix`` (a build running
    now, or one killed before its swap); folders set aside by a swap are not counted."""
    parent = directory.parent
    if not parent.is_dir():
        return []
    return sorted(p for p in parent.iterdir() if p.name.startswith(prefix) and "-old-" not in p.name)


def wait_for_swap(directory: Path, *, kind: str, rebuild: str, timeout_s: float | None = None) -> None:
    """Return when ``directory`` exists or no build is replacing it; wait up to ``timeout_s`` for one that is.

    A build renames the old artefact to :func:`swap_aside_name` and then its staging folder to
    ``directory``; between the two renames the artefact is absent. If it stays absent with an old
    one beside it, the build died between the renames: an :class:`ArtefactError` says where the old one is.
    """
    deadline = time.monotonic() + (SWAP_WAIT_S if timeout_s is None else timeout_s)
    while not directory.exists():
        parent = directory.parent
        old = sorted(p for p in parent.iterdir() if p.name.startswith(f".{directory.name}-old-")) \
            if parent.is_dir() else []
        if not old:
            return  # never built: the caller says so
        if time.monotonic() > deadline:
            raise ArtefactError(f"no {kind} at {directory}, but {old[-1]} is there: a build was interrupted while "
                                f"replacing it. Rename {old[-1].name} back to {directory.name}, or rebuild with "
                                f"`{rebuild}`")
        time.sleep(0.05)

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

Publishing (every builder: text index, statistics index, edge vectors, vLLM export; the graph build
takes the same lock): :func:`staged_artefact` holds the one build lock (:func:`build_lock`,
``<name>.build.lock``), puts back an artefact a killed build set aside, yields a staging folder, and
:func:`publish` swaps it in by two renames and sweeps what interrupted builds left
(:func:`leftovers`). Readers call :func:`wait_for_swap`, which waits for a live build's second rename
and puts back a complete set-aside artefact when the build that set it aside is gone.

Example::

    from kgrag.artefacts import verify, write_manifest
    write_manifest(index_dir, kind="text index", rebuild="kgrag build-text-index")   # at the end of a build
    verify(index_dir, full=False)   # sizes: raises ArtefactError naming a truncated or missing file
    verify(index_dir, full=True)    # and checksums: catches same-size damage
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Literal

from pydantic import BaseModel, Field, ValidationError

from kgrag.errors import ArtefactError, CannotWriteError, KgragError


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


def write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """``write`` into ``.<name>.tmp`` beside ``path``, flushed to disk, then renamed to ``path``: a reader or a resumed
    build sees the whole file or none (``np.save``, ``scipy.sparse.save_npz``, ... take the handle)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


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


# --- publishing: one build lock, one staging folder, two renames, recovery and sweeping ------------------------
LOCK_SUFFIX = ".build.lock"
STAGING_MARK = ".staging-"
ASIDE_MARK = "-old-"
CANNOT_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG})


class BuildLockedError(KgragError):
    """Another build of the same artefact holds its build lock."""


def lock_path(target: Path) -> Path:
    """The build lock of ``target``: ``<name>.build.lock`` beside it (kept; the lock is the open file's)."""
    return target.with_name(target.name + LOCK_SUFFIX)


def aside_name(target: Path) -> Path:
    """Where a build moves the artefact it replaces, between its two renames: ``.<name>-old-<ns>``."""
    return target.with_name(f".{target.name}{ASIDE_MARK}{time.time_ns()}")


def cannot_write(exc: OSError, target: Path, kind: str, rebuild: str, where: Path | None = None) -> CannotWriteError:
    reason = exc.strerror or str(exc)
    place = exc.filename or where or target.parent
    return CannotWriteError(f"cannot write the {kind} to {place}: {reason}; the previous {kind} at {target} is "
                            f"unchanged (free space or make {target.parent} writable, or set KGRAG_HOME elsewhere, "
                            f"then run `{rebuild}` again)")


@contextmanager
def build_lock(target: Path, *, kind: str, rebuild: str = "the build") -> Iterator[Path]:
    """Hold the exclusive build lock of ``target`` (``flock``; the OS releases it when a build is killed).

    Every builder takes it: one build of an artefact at a time, and a reader knows from it whether
    a build is running (see :func:`wait_for_swap`). Raises :class:`BuildLockedError` when it is held.
    """
    path = lock_path(target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a")
    except OSError as exc:
        if exc.errno in CANNOT_WRITE_ERRNOS:
            raise cannot_write(exc, target, kind, rebuild, path) from None
        raise
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildLockedError(f"another build of the {kind} at {target} is running (lock {path}); "
                                   "wait for it to finish") from None
        try:
            yield path
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def leftovers(target: Path) -> list[Path]:
    """What interrupted builds of ``target`` left beside it: artefacts set aside (``.<name>-old-*``) and
    staging folders (``.<name>.staging-*``; older builds' ``.<name>-*``, ``<name>.building``, ``.<name>.old-*``)."""
    parent, name = target.parent, target.name
    if not parent.is_dir():
        return []
    prefixes = (f".{name}-", f".{name}{STAGING_MARK}", f".{name}.old-")
    return sorted(p for p in parent.iterdir()
                  if (p.name.startswith(prefixes) or p.name == f"{name}.building") and p.name != lock_path(target).name)


def _set_aside(target: Path) -> list[Path]:
    """Artefacts set aside by a build's first rename, newest first."""
    return sorted((p for p in leftovers(target) if p.name.startswith(f".{target.name}{ASIDE_MARK}")), reverse=True)


def path_bytes(path: Path) -> int:
    """Bytes of a file, or of every file under a folder (0 when it vanished meanwhile)."""
    try:
        if path.is_file():
            return path.stat().st_size
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    except OSError:
        return 0


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def sweep(target: Path) -> list[tuple[Path, int]]:
    """Delete every leftover of ``target`` (:func:`leftovers`); the caller holds its build lock. (path, bytes) each."""
    swept = []
    for path in leftovers(target):
        size = path_bytes(path)
        _remove(path)
        swept.append((path, size))
    return swept


def _restore(target: Path, *, kind: str, rebuild: str) -> Path | None:
    """With the build lock held and ``target`` missing: rename the newest complete set-aside artefact back.

    Complete means its files match its ``artefacts.json`` (sizes, and checksums when small). Returns what was
    put back, or None when nothing was set aside; raises :class:`ArtefactError` when none is complete.
    """
    candidates = _set_aside(target)
    if target.exists() or not candidates:
        return None
    problems = []
    for old in candidates:
        manifest = read_artefact_manifest(old, kind=kind, rebuild=rebuild) if (old / ARTEFACTS_FILE).exists() else None
        if manifest is None:
            problems.append(f"{old}: no {ARTEFACTS_FILE}, cannot tell whether it is complete")
            continue
        result = check(old, full=manifest.total_bytes <= FULL_ON_LOAD_MAX_BYTES, kind=kind, rebuild=rebuild)
        if result.ok:
            os.rename(old, target)
            _fsync_dir(target.parent)
            print(f"note: no {kind} at {target}: a build was killed while replacing it; put back {old.name}, "
                  f"the complete previous one", file=sys.stderr)
            return old
        problems.extend(result.problems)
    raise ArtefactError(f"no {kind} at {target}, and what a killed build set aside is not complete: "
                        f"{'; '.join(problems)}; rebuild it with `{rebuild}`")


def recover(target: Path, *, kind: str, rebuild: str) -> Path | None:
    """Put back the artefact a killed build set aside, when ``target`` is missing (the caller holds the lock)."""
    try:
        return _restore(target, kind=kind, rebuild=rebuild)
    except ArtefactError:
        return None  # the build replaces it; the sweep after it removes what was set aside


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def publish(staging: Path, target: Path) -> list[tuple[Path, int]]:
    """Swap the complete ``staging`` folder in as ``target`` and sweep; the caller holds the build lock.

    Rename 1 sets the live artefact aside (``.<name>-old-<ns>``), rename 2 moves staging in; a reader
    between them waits for the second (:func:`wait_for_swap`), and after a kill between them the next
    reader or build puts the set-aside one back. Then every leftover of earlier builds is deleted.
    """
    _fsync_dir(staging)
    if target.exists():
        os.rename(target, aside_name(target))
    os.rename(staging, target)
    _fsync_dir(target.parent)
    return sweep(target)


def new_staging(target: Path) -> Path:
    """A new, empty staging folder beside ``target``: ``.<name>.staging-<pid>-<ns>`` (no random letters:
    the statistics engine misreads paths holding some words)."""
    staging = target.with_name(f".{target.name}{STAGING_MARK}{os.getpid()}-{time.time_ns()}")
    staging.mkdir(parents=True)
    staging.chmod(0o755)
    return staging


@contextmanager
def staged_artefact(target: Path, *, kind: str, rebuild: str) -> Iterator[Path]:
    """Build ``target`` the one way every builder does: yield a staging folder to write; publish it when the
    body returns.

    Under the build lock: an artefact a killed build set aside is put back first (so a failed build
    leaves the previous one live); the body writes into the staging folder (its ``artefacts.json``
    last); :func:`publish` swaps it in and sweeps the leftovers of interrupted builds. On any error the
    staging folder is removed and the live artefact is as it was; a full disk or a read-only home is a
    :class:`~kgrag.errors.CannotWriteError` saying so.

    Example::

        with staged_artefact(index_dir, kind=TEXT_INDEX_KIND, rebuild=TEXT_INDEX_REBUILD) as staging:
            write_files(staging)
            write_manifest(staging, kind=TEXT_INDEX_KIND, rebuild=TEXT_INDEX_REBUILD)
    """
    target = Path(target)
    with build_lock(target, kind=kind, rebuild=rebuild):
        recover(target, kind=kind, rebuild=rebuild)
        staging: Path | None = None
        try:
            staging = new_staging(target)
            yield staging
            publish(staging, target)
        except OSError as exc:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            if exc.errno in CANNOT_WRITE_ERRNOS:
                raise cannot_write(exc, target, kind, rebuild, staging) from None
            raise
        except BaseException:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            raise


def wait_for_swap(directory: Path, *, kind: str, rebuild: str, timeout_s: float | None = None) -> None:
    """Return when ``directory`` exists or nothing was set aside for it; put back what a killed build set aside.

    A build renames the old artefact aside and then its staging folder in; between the two renames
    the artefact is absent. While the build lock is held the build is alive: wait up to
    ``timeout_s`` (default :data:`SWAP_WAIT_S`) for its second rename. When no build holds it, the
    build died between the renames: the newest complete set-aside artefact is renamed back (a note
    on stderr). An :class:`ArtefactError` says what is wrong when none is complete, when a build
    holds the lock past the wait, or when the folder cannot be written to put it back.
    """
    deadline = time.monotonic() + (SWAP_WAIT_S if timeout_s is None else timeout_s)
    while not directory.exists():
        old = _set_aside(directory)
        if not old:
            return  # never built: the caller says so
        try:
            with build_lock(directory, kind=kind, rebuild=rebuild):
                _restore(directory, kind=kind, rebuild=rebuild)
            continue
        except BuildLockedError:
            pass  # a build is alive between its renames: wait for the second
        except (CannotWriteError, OSError) as exc:
            raise ArtefactError(f"no {kind} at {directory}, but {old[0]} is there: a build was interrupted while "
                                f"replacing it, and it cannot be put back here ({exc}). Rename {old[0].name} back "
                                f"to {directory.name}, or rebuild with `{rebuild}`") from None
        if time.monotonic() > deadline:
            raise ArtefactError(f"no {kind} at {directory}: a build is replacing it (its lock {lock_path(directory)} "
                                f"is held) and has not finished its swap; try again, or look for a hung `{rebuild}`")
        time.sleep(0.05)

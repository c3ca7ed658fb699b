"""The one way every builder publishes an artefact (kgrag.artefacts): build lock, staging folder,
two renames, recovery of an artefact a killed build set aside, sweeping of what interrupted builds left
(issue 25 item 7, issue 24 item 3). Plain folders: no model, no index."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from kgrag.errors import ArtefactError, CannotWriteError
from kgrag import artefacts
from kgrag.artefacts import (
    BuildLockedError,
    aside_name,
    build_lock,
    leftovers,
    lock_path,
    staged_artefact,
    wait_for_swap,
    write_manifest,
)

KIND, REBUILD = "test artefact", "kgrag build-test"


def _build(target: Path, text: str) -> None:
    with staged_artefact(target, kind=KIND, rebuild=REBUILD) as staging:
        (staging / "data.txt").write_text(text)
        write_manifest(staging, kind=KIND, rebuild=REBUILD)


def _leftover_names(target: Path) -> list[str]:
    return sorted(p.name for p in leftovers(target))


def test_a_build_publishes_and_sweeps_what_interrupted_builds_left(tmp_path: Path) -> None:
    target = tmp_path / "art"
    _build(target, "one")
    for name in (".art-old-1", ".art.staging-7-1", ".art-k3j2h1x0", "art.building", ".art.old-5-6"):  # new and legacy names
        (tmp_path / name).mkdir()
        (tmp_path / name / "big").write_bytes(b"x" * 1000)
    (tmp_path / "other").mkdir()  # not this artefact's
    assert _leftover_names(target) == sorted([".art-old-1", ".art.staging-7-1", ".art-k3j2h1x0", "art.building",
                                              ".art.old-5-6"])
    _build(target, "two")
    assert (target / "data.txt").read_text() == "two"
    assert _leftover_names(target) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art", "art.build.lock", "other"]


def test_a_failed_build_leaves_the_live_artefact_and_no_staging(tmp_path: Path) -> None:
    target = tmp_path / "art"
    _build(target, "one")
    with pytest.raises(RuntimeError, match="boom"), staged_artefact(target, kind=KIND, rebuild=REBUILD) as staging:
        (staging / "data.txt").write_text("half")
        raise RuntimeError("boom")
    assert (target / "data.txt").read_text() == "one" and _leftover_names(target) == []


def test_a_reader_puts_back_a_complete_artefact_a_killed_build_set_aside(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "art"
    _build(target, "one")
    aside = aside_name(target)
    target.rename(aside)  # a build killed between its two renames
    (tmp_path / ".art.staging-1-2").mkdir()  # ... and its staging folder
    wait_for_swap(target, kind=KIND, rebuild=REBUILD)
    assert (target / "data.txt").read_text() == "one" and not aside.exists()
    assert f"put back {aside.name}" in capsys.readouterr().err


def test_a_build_puts_back_the_set_aside_artefact_before_it_starts(tmp_path: Path) -> None:
    target = tmp_path / "art"
    _build(target, "one")
    target.rename(aside_name(target))
    with pytest.raises(RuntimeError), staged_artefact(target, kind=KIND, rebuild=REBUILD):
        raise RuntimeError("the new build fails")
    assert (target / "data.txt").read_text() == "one"  # the previous artefact is live again


def test_a_damaged_set_aside_artefact_is_not_put_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(artefacts, "SWAP_WAIT_S", 0.1)
    target = tmp_path / "art"
    _build(target, "one")
    aside = aside_name(target)
    target.rename(aside)
    (aside / "data.txt").write_text("on")  # truncated
    with pytest.raises(ArtefactError, match=rf"{aside.name}.*truncated.*`{REBUILD}`"):
        wait_for_swap(target, kind=KIND, rebuild=REBUILD)
    assert not target.exists() and aside.exists()  # left for the user to look at; the next build sweeps it


def test_a_reader_waits_while_a_build_holds_the_lock_between_its_renames(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(artefacts, "SWAP_WAIT_S", 0.1)
    target = tmp_path / "art"
    _build(target, "one")
    with build_lock(target, kind=KIND):
        target.rename(aside_name(target))  # a live build, between its renames
        with pytest.raises(ArtefactError, match="a build is replacing it"):
            wait_for_swap(target, kind=KIND, rebuild=REBUILD)
        assert not target.exists()  # a running build's artefact is not touched
    wait_for_swap(target, kind=KIND, rebuild=REBUILD)  # the build is gone (killed): put back
    assert (target / "data.txt").read_text() == "one"


def test_one_build_at_a_time(tmp_path: Path) -> None:
    target = tmp_path / "art"
    with build_lock(target, kind=KIND):
        with pytest.raises(BuildLockedError, match=rf"another build of the {KIND}.*{lock_path(target).name}"):
            _build(target, "two")


def test_a_full_disk_is_a_cannot_write_error_and_the_old_artefact_stays(tmp_path: Path) -> None:
    target = tmp_path / "art"
    _build(target, "one")
    with pytest.raises(CannotWriteError, match=r"cannot write the test artefact.*No space left on device.*"
                                               r"previous test artefact .* unchanged"):
        with staged_artefact(target, kind=KIND, rebuild=REBUILD):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert (target / "data.txt").read_text() == "one" and _leftover_names(target) == []


def test_a_read_only_home_is_a_cannot_write_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "art"
    _build(target, "one")

    def read_only(where: Path) -> Path:  # what mkdir raises on a read-only mount (these tests may run as root)
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(where))

    monkeypatch.setattr(artefacts, "new_staging", read_only)
    with pytest.raises(CannotWriteError, match=rf"cannot write the {KIND} to {target}: Read-only file system"):
        _build(target, "two")
    assert (target / "data.txt").read_text() == "one"

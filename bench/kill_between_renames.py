"""Kill the text-index or statistics build between its two renames; the next reader must serve the previous one.

For ``--artefact text`` (``kgrag build-text-index --corpus FILE``) or ``stats`` (``kgrag
build-stats-index --corpus FILE``) in the home ``KGRAG_HOME``: build once (the baseline), then
``--kills`` times: record the SHA-256 of the live artefact's files, run the build under
``strace -f -e inject=rename:signal=SIGKILL:when=N`` where N is the build's second ``rename`` of the
publish (found by a traced dry run: the one whose target is the live name), check that the build died
with the live name missing and the previous artefact set aside, then run a reader in a fresh process
(``TextIndex.load`` + a search, or ``LocalInfiniGramStats`` + a count) and compare the checksum of
what it serves with the one before the kill. One row per kill; exit status 1 when any differs.

Usage::

    KGRAG_HOME=/tmp/kill-home python bench/kill_between_renames.py --artefact text --corpus corpus.jsonl --kills 10
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KGRAG = [sys.executable, "-m", "kgrag.cli"]
READER = {
    "text": ("from kgrag.indexes.text_index import TextIndex; from kgrag.settings import load_settings; "
             "i = TextIndex.load(load_settings()); print([h.passage.id for h in i.search(['metformin'], k=3)[0]])"),
    "stats": ("from quco.stats import open_corpus_stats; from kgrag.settings import load_settings; "
              "s = open_corpus_stats(load_settings()); print(s.count(['metformin', 'diabetes']))"),
}


def digest(directory: Path) -> str:
    """SHA-256 over the relative paths and contents of every file under ``directory``."""
    total = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        total.update(path.relative_to(directory).as_posix().encode() + b"\0" + path.read_bytes())
    return total.hexdigest()[:16]


def second_rename(command: list[str], live: Path) -> int:
    """The 1-based index of the ``rename`` syscall that moves a staging folder onto ``live`` (a traced build)."""
    with tempfile.NamedTemporaryFile("r", suffix=".trace") as trace:
        subprocess.run(["strace", "-f", "-qq", "-e", "trace=rename", "-o", trace.name, *command], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        calls = [line for line in Path(trace.name).read_text().splitlines() if "rename(" in line]
    for i, line in enumerate(calls, 1):
        if re.search(rf', "{re.escape(str(live))}"\) = 0', line):
            return i
    raise SystemExit(f"no rename onto {live} in the traced build")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artefact", choices=["text", "stats"], required=True)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--kills", type=int, default=10)
    args = parser.parse_args()
    home = Path(os.environ["KGRAG_HOME"])
    live = home / ("text_index" if args.artefact == "text" else "stats")
    build = KGRAG + [f"build-{args.artefact}-index" if args.artefact == "stats" else "build-text-index",
                     "--corpus", str(args.corpus.resolve())]
    subprocess.run(build, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    n = second_rename(build, live)
    print(f"{args.artefact}: the publish's second rename is rename call {n} of the build")
    print(f"{'#':>2} {'build exit':>10} {'live after kill':>15} {'set aside':>9} {'before':>16} {'reader serves':>16} "
          f"{'reader s':>8}  result")
    failed = 0
    for kill in range(1, args.kills + 1):
        before = digest(live)
        proc = subprocess.run(["strace", "-f", "-qq", "-o", "/dev/null", "-e", f"inject=rename:signal=SIGKILL:when={n}",
                               *build], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        aside = sorted(home.glob(f".{live.name}-old-*"))
        live_after = live.exists()
        start = time.perf_counter()
        reader = subprocess.run([sys.executable, "-c", READER[args.artefact]], capture_output=True, text=True)
        seconds = time.perf_counter() - start
        served = digest(live) if live.exists() and reader.returncode == 0 else f"refused({reader.returncode})"
        ok = served == before and not live_after and bool(aside)
        failed += not ok
        note = reader.stdout.strip() if ok else (reader.stderr.strip().splitlines() or ["?"])[-1][:200]
        print(f"{kill:>2} {proc.returncode:>10} {'present' if live_after else 'missing':>15} {len(aside):>9} "
              f"{before:>16} {served:>16} {seconds:>8.1f}  {'ok (unchanged)' if ok else 'FAILED'} {note}")
    leftovers = sorted(p.name for p in home.iterdir() if p.name.startswith(f".{live.name}"))
    print(f"{args.kills} kills, {failed} failed; left beside {live.name} now: {leftovers}")
    subprocess.run(build, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    leftovers = sorted(p.name for p in home.iterdir() if p.name.startswith(f".{live.name}"))
    print(f"after one more successful build: {leftovers or 'nothing'} beside {live.name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

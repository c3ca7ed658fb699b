"""The passage store: every passage of a text index by row, in one SQLite file (``passages.sqlite``).

Row ``r`` is the passage FAISS and BM25 call ``r``; a hit is read by row, so loading an index never
reads the corpus. Tables::

    passages(row INTEGER PRIMARY KEY, id, pmid, title, text, source, year, live)
    mesh(term, row)                one line per MeSH descriptor of a passage
    removals(id, after_row)        a deletion read in the corpus stream, applied to rows before after_row
    shards(shard, first_row, rows, items_end, checksum)   the build's commit log (one line per shard)

Rows are never rewritten: an update is a new row with the same ``id`` (the later row wins), a
deletion a line in ``removals``; :meth:`PassageStore.apply_removals` marks the rows they replace
``live = 0``, and search skips them. Filters (year range, MeSH terms) are answered from indexed
columns as a bitmap of allowed rows (:meth:`PassageStore.allowed_rows`).

Example::

    store = PassageStore.create(path)                # a build's working copy
    store.add_shard(0, first_row=0, passages=passages, removals=[], items_end=len(passages))
    store.apply_removals(first_row=0); store.finish()
    reader = PassageStore.open(path)                 # read-only
    reader.get([0, 5])                               # {row: Passage}
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from kgrag.errors import ArtefactError
from kgrag.indexes.corpus import Passage, corpus_checksum, rows_checksum
from kgrag.indexes.text_filter import TextFilter

STORE_FILE = "passages.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS passages(row INTEGER PRIMARY KEY, id TEXT NOT NULL, pmid TEXT, title TEXT,
                                    text TEXT NOT NULL, source TEXT NOT NULL, year INTEGER,
                                    live INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS mesh(term TEXT NOT NULL COLLATE NOCASE, row INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS removals(id TEXT NOT NULL, after_row INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS shards(shard INTEGER PRIMARY KEY, first_row INTEGER NOT NULL, rows INTEGER NOT NULL,
                                  items_end INTEGER NOT NULL, checksum TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS passages_id ON passages(id);
"""
SEARCH_INDEXES = """
CREATE INDEX IF NOT EXISTS passages_year ON passages(year) WHERE year IS NOT NULL;
CREATE INDEX IF NOT EXISTS mesh_term ON mesh(term);
CREATE INDEX IF NOT EXISTS mesh_row ON mesh(row);
CREATE INDEX IF NOT EXISTS passages_dead ON passages(row) WHERE live = 0;
"""


class PassageStore:
    """One SQLite file of passages by row; see the module docstring."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection

    # --- writing (a build's working copy) -------------------------------------------------------------
    @classmethod
    def create(cls, path: Path) -> "PassageStore":
        """Open (or create) a writable store; an interrupted build's store keeps its committed shards."""
        db = sqlite3.connect(path, timeout=60)  # a reader peeking at a build's store (a test, doctor) waits its turn
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # a committed shard survives a SIGKILL or a power cut
        db.executescript(SCHEMA)
        db.commit()
        return cls(path, db)

    def committed_shards(self) -> list[tuple[int, int, int, int, str]]:
        """(shard, first_row, rows, items_end, checksum) of every committed shard, in order."""
        return self._db.execute("SELECT shard, first_row, rows, items_end, checksum FROM shards ORDER BY shard").fetchall()

    def add_shard(self, shard: int, *, first_row: int, passages: Sequence[Passage], removals: Sequence[tuple[str, int]],
                  items_end: int) -> str:
        """Insert one shard's passages, MeSH terms and removals, and its commit line, in one transaction."""
        checksum = corpus_checksum(passages)
        rows = range(first_row, first_row + len(passages))
        with self._db:
            self._db.executemany(
                "INSERT INTO passages(row, id, pmid, title, text, source, year) VALUES (?,?,?,?,?,?,?)",
                [(row, p.id, p.pmid, p.title, p.text, p.source, p.year) for row, p in zip(rows, passages)])
            self._db.executemany("INSERT INTO mesh(term, row) VALUES (?,?)",
                                 [(term, row) for row, p in zip(rows, passages) for term in p.mesh])
            self._db.executemany("INSERT INTO removals(id, after_row) VALUES (?,?)", list(removals))
            self._db.execute("INSERT INTO shards VALUES (?,?,?,?,?)", (shard, first_row, len(passages), items_end, checksum))
        return checksum

    def apply_removals(self, *, first_row: int) -> int:
        """Mark dead every row replaced by a later row of the same id or removed after it; return how many.

        Only ids touched since ``first_row`` (this build's rows and removals) are looked at.
        """
        with self._db:
            cursor = self._db.execute(
                """UPDATE passages SET live = 0 WHERE live = 1 AND id IN (
                       SELECT id FROM passages WHERE row >= :first UNION SELECT id FROM removals WHERE after_row > :first)
                   AND (EXISTS (SELECT 1 FROM passages later WHERE later.id = passages.id AND later.row > passages.row)
                        OR EXISTS (SELECT 1 FROM removals r WHERE r.id = passages.id AND r.after_row > passages.row))""",
                {"first": first_row})
        return cursor.rowcount

    def finish(self) -> None:
        """Build the search indexes, fold the write-ahead log in and close (the file is then complete)."""
        self._db.executescript(SEARCH_INDEXES)
        self._db.commit()
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.execute("PRAGMA journal_mode=DELETE")
        self._db.close()

    # --- reading --------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path, *, rebuild: str = "kgrag build-text-index") -> "PassageStore":
        """Open read-only (never writes, so a served index is not changed by its readers)."""
        if not path.is_file():
            raise ArtefactError(f"{path} is missing; rebuild the text index with `{rebuild}`")
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
            db.execute("SELECT 1 FROM passages LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            raise ArtefactError(f"{path} is damaged or not a passage store ({exc}); rebuild the text index "
                                f"with `{rebuild}`") from None
        return cls(path, db)

    def close(self) -> None:
        self._db.close()

    def counts(self) -> tuple[int, int]:
        """(rows, live rows)."""
        rows, live = self._db.execute("SELECT COUNT(*), COALESCE(SUM(live), 0) FROM passages").fetchone()
        return int(rows), int(live)

    def max_row(self) -> int:
        """The last row (-1 when empty): read from the primary key, not a scan."""
        (row,) = self._db.execute("SELECT MAX(row) FROM passages").fetchone()
        return -1 if row is None else int(row)

    def dead_rows(self) -> np.ndarray:
        return np.array([r for (r,) in self._db.execute("SELECT row FROM passages WHERE live = 0")], dtype=np.int64)

    def pmids(self) -> set[str]:
        """The distinct PMIDs of live passages."""
        return {pmid for (pmid,) in self._db.execute("SELECT DISTINCT pmid FROM passages WHERE live = 1 AND pmid IS NOT NULL")}

    def get(self, rows: Iterable[int]) -> dict[int, Passage]:
        """The passages at ``rows`` (one query for the rows, one for their MeSH terms)."""
        wanted = sorted({int(r) for r in rows})
        if not wanted:
            return {}
        found: dict[int, Passage] = {}
        mesh: dict[int, list[str]] = {}
        for start in range(0, len(wanted), 900):  # SQLite's bound-parameter limit
            part = wanted[start:start + 900]
            marks = ",".join("?" * len(part))
            for row, term in self._db.execute(f"SELECT row, term FROM mesh WHERE row IN ({marks})", part):
                mesh.setdefault(row, []).append(term)
            for row, pid, pmid, title, text, source, year in self._db.execute(
                    f"SELECT row, id, pmid, title, text, source, year FROM passages WHERE row IN ({marks})", part):
                found[row] = Passage(id=pid, pmid=pmid, title=title, text=text, source=source, year=year,
                                     mesh=mesh.get(row, []))
        return found

    def live_rows_in_order(self, batch: int = 10_000) -> Iterable[tuple[int, str, str | None, str]]:
        """(row, id, pmid, text) of every live row, in row order (checksums, exports)."""
        cursor = self._db.execute("SELECT row, id, pmid, text FROM passages WHERE live = 1 ORDER BY row")
        while chunk := cursor.fetchmany(batch):
            yield from chunk

    def allowed_rows(self, text_filter: TextFilter) -> np.ndarray:
        """The live rows that pass ``text_filter``, sorted."""
        clauses, params = ["p.live = 1"], []
        if text_filter.year_min is not None:
            clauses.append("p.year >= ?")
            params.append(text_filter.year_min)
        if text_filter.year_max is not None:
            clauses.append("p.year <= ?")
            params.append(text_filter.year_max)
        if text_filter.mesh:
            marks = ",".join("?" * len(text_filter.mesh))
            clauses.append(f"p.row IN (SELECT row FROM mesh WHERE term IN ({marks}))")
            params.extend(text_filter.mesh)
        query = f"SELECT p.row FROM passages p WHERE {' AND '.join(clauses)} ORDER BY p.row"
        return np.fromiter((r for (r,) in self._db.execute(query, params)), dtype=np.int64)

    def corpus_checksum(self) -> str:
        """:func:`kgrag.indexes.corpus.corpus_checksum` of the live rows, in row order."""
        return rows_checksum((pid, pmid, text) for _, pid, pmid, text in self.live_rows_in_order())

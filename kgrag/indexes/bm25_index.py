"""BM25 for the text index, built shard by shard in bounded memory and searched memory-mapped with bm25s.

A build tokenises each shard of passages (bm25s's tokenizer: English stop words, PyStemmer when
installed) into a term-count matrix with the shard's own vocabulary (:func:`count_terms`), saved
beside the shard's vectors. :func:`assemble` then writes the bm25s index files from the saved
shards: one global vocabulary, document frequencies and the mean length over live rows, and the
scores (bm25s's ``lucene`` variant, k1 = 1.5, b = 0.75) scattered shard by shard into memory-mapped
CSC arrays. Memory holds one shard and the vocabulary, never the corpus or the whole matrix; the
files are those ``bm25s.BM25.save`` writes, so ``bm25s.BM25.load(mmap=True)`` opens them without
reading them. Rows marked dead (updated or deleted passages) get no entry, so they never score;
adding shards later re-derives the scores from the saved counts without tokenising again.

Example::

    counts = count_terms(["Metformin lowers glucose.", "HLA-B and psoriasis."], stemmer)
    save_counts(counts, folder / "shard-00000")
    assemble([folder / "shard-00000"], live=np.array([True, True]), out=index_dir / "bm25")
    Bm25Index.load(index_dir / "bm25", "pystemmer-english").search(["psoriasis genes"], k=1)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from kgrag.artefacts import write_atomically
from kgrag.errors import BackendUnavailableError

K1 = 1.5
B = 0.75
COUNTS_SUFFIX = ".terms.npz"
VOCAB_SUFFIX = ".vocab.json"


def stemmer() -> tuple[Any, str | None]:
    """PyStemmer's English stemmer and its name, or (None, None) when PyStemmer is not installed."""
    try:
        import Stemmer  # PyStemmer
    except ImportError:
        return None, None
    return Stemmer.Stemmer("english"), "pystemmer-english"


@dataclass
class TermCounts:
    """One shard's term counts: ``matrix[d, t]`` = occurrences of ``vocab[t]`` in document ``d``."""

    matrix: sp.csr_matrix
    vocab: list[str]


def count_terms(texts: Sequence[str], stem: Any) -> TermCounts:
    """Tokenise ``texts`` as bm25s does and count terms per document."""
    import bm25s

    tokens = bm25s.tokenize(list(texts), stopwords="en", stemmer=stem, show_progress=False)
    lengths = np.fromiter((len(doc) for doc in tokens.ids), dtype=np.int64, count=len(tokens.ids))
    columns = np.fromiter((t for doc in tokens.ids for t in doc), dtype=np.int64, count=int(lengths.sum()))
    rows = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
    vocab = [""] * len(tokens.vocab)
    for word, index in tokens.vocab.items():
        vocab[index] = word
    matrix = sp.csr_matrix((np.ones(len(columns), dtype=np.float32), (rows, columns)),
                           shape=(len(texts), len(vocab)), dtype=np.float32)
    matrix.sum_duplicates()
    return TermCounts(matrix, vocab)


def save_counts(counts: TermCounts, stem_path: Path) -> None:
    """``<stem_path>.terms.npz`` and ``<stem_path>.vocab.json``, each whole on disk before the shard's commit."""
    write_atomically(Path(f"{stem_path}{COUNTS_SUFFIX}"),
                     lambda handle: sp.save_npz(handle, counts.matrix, compressed=False))
    write_atomically(Path(f"{stem_path}{VOCAB_SUFFIX}"), lambda handle: handle.write(json.dumps(counts.vocab).encode()))


def load_counts(stem_path: Path) -> TermCounts:
    matrix = sp.load_npz(f"{stem_path}{COUNTS_SUFFIX}").tocsr()
    return TermCounts(matrix, json.loads(Path(f"{stem_path}{VOCAB_SUFFIX}").read_text()))


def assemble(shards: Sequence[Path], live: np.ndarray, out: Path) -> dict[str, int]:
    """Write bm25s's index files for the saved shards into ``out``; ``live[r]`` False leaves row ``r`` out.

    Two passes over the saved counts: vocabulary, document frequencies and lengths; then the scores.
    Returns sizes (vocabulary, non-zeros) for the build report.
    """
    vocab: dict[str, int] = {}
    mappings: list[np.ndarray] = []
    df_parts: list[np.ndarray] = []
    total_length = 0.0
    offset = 0
    for stem_path in shards:  # pass 1
        counts = load_counts(stem_path)
        mapping = np.fromiter((vocab.setdefault(word, len(vocab)) for word in counts.vocab), dtype=np.int64,
                              count=len(counts.vocab))
        mappings.append(mapping)
        rows = counts.matrix.shape[0]
        alive = live[offset:offset + rows]
        kept = counts.matrix[alive] if not alive.all() else counts.matrix
        total_length += float(kept.sum())
        present = np.bincount(mapping[kept.indices], minlength=len(vocab)) if kept.nnz else np.zeros(len(vocab), np.int64)
        df_parts.append(present)
        offset += rows
    if offset != len(live):
        raise ValueError(f"BM25 shards hold {offset} rows, the passage store {len(live)}")
    df = np.zeros(len(vocab), dtype=np.int64)
    for part in df_parts:
        df[:len(part)] += part
    documents = int(live.sum())
    mean_length = total_length / max(documents, 1)
    idf = np.log(1.0 + (documents - df + 0.5) / (df + 0.5)).astype(np.float32)
    indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    nnz = int(indptr[-1])
    out.mkdir(parents=True, exist_ok=True)
    data = np.lib.format.open_memmap(out / "data.csc.index.npy", mode="w+", dtype=np.float32, shape=(nnz,))
    indices = np.lib.format.open_memmap(out / "indices.csc.index.npy", mode="w+", dtype=np.int32, shape=(nnz,))
    cursor = indptr[:-1].copy()
    offset = 0
    for stem_path, mapping in zip(shards, mappings):  # pass 2
        matrix = load_counts(stem_path).matrix
        rows = matrix.shape[0]
        alive = live[offset:offset + rows]
        lengths = np.asarray(matrix.sum(axis=1)).ravel()
        coo = matrix.tocoo()
        keep = alive[coo.row]
        doc, term, tf = coo.row[keep], mapping[coo.col[keep]], coo.data[keep]
        norm = K1 * (1.0 - B + B * lengths[doc] / mean_length)
        scores = (idf[term] * tf / (tf + norm)).astype(np.float32)
        local = sp.csc_matrix((scores, (doc, term)), shape=(rows, len(vocab)))
        local.sort_indices()
        per_term = np.diff(local.indptr)
        target = np.repeat(cursor - local.indptr[:-1], per_term) + np.arange(local.nnz)
        data[target] = local.data
        indices[target] = local.indices + offset
        cursor += per_term
        offset += rows
    data.flush()
    indices.flush()
    del data, indices
    np.save(out / "indptr.csc.index.npy", indptr.astype(np.int64))
    (out / "vocab.index.json").write_text(json.dumps({**vocab, "": len(vocab)}))
    params = {"k1": K1, "b": B, "delta": 0.5, "method": "lucene", "idf_method": "lucene", "dtype": "float32",
              "int_dtype": "int32", "num_docs": int(len(live)), "backend": "numpy"}
    (out / "params.index.json").write_text(json.dumps(params, indent=1))
    return {"vocabulary": len(vocab), "nonzeros": nnz, "documents": documents}


class Bm25Index:
    """A saved bm25s index, memory-mapped; queries tokenised as the passages were.

    Example::

        bm25 = Bm25Index.load(index_dir / "bm25", "pystemmer-english")
        rows, scores = bm25.search(["psoriasis genes"], k=5, allowed=None)
    """

    def __init__(self, retriever: Any, stem: Any) -> None:
        self.retriever = retriever
        self.stemmer = stem

    @classmethod
    def build(cls, texts: Sequence[str]) -> tuple["Bm25Index", str | None]:
        """bm25s over ``texts`` in memory (benchmarks; builds go shard by shard), and the stemmer's name."""
        import bm25s

        stem, name = stemmer()
        retriever = bm25s.BM25()
        retriever.index(bm25s.tokenize(list(texts), stopwords="en", stemmer=stem, show_progress=False),
                        show_progress=False)
        return cls(retriever, stem), name

    @classmethod
    def load(cls, directory: Path, stemmer_name: str | None) -> "Bm25Index":
        import bm25s

        stem, name = stemmer() if stemmer_name else (None, None)
        if stemmer_name and name != stemmer_name:
            raise BackendUnavailableError(f"BM25 index at {directory} was built with {stemmer_name}, which is "
                                          "not installed (pip install PyStemmer)")
        return cls(bm25s.BM25.load(str(directory), mmap=True, show_progress=False), stem)

    def search(self, queries: Sequence[str], k: int, *, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows and scores of the top ``k`` per query; ``allowed`` (0/1 per row) masks rows out."""
        import bm25s

        tokens = bm25s.tokenize(list(queries), stopwords="en", stemmer=self.stemmer, return_ids=False,
                                show_progress=False)
        k = min(k, int(self.retriever.scores["num_docs"]))
        docs, scores = self.retriever.retrieve(tokens, k=k, show_progress=False, weight_mask=allowed)
        return np.asarray(docs), np.asarray(scores)

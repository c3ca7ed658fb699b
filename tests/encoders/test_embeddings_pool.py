"""The encoder's multi-process pool (KGRAG_EMBEDDING_PROCESSES): the same vectors as one process."""

from __future__ import annotations

import numpy as np

from kgrag.encoders.embeddings import POOL_MIN_TEXTS, SentenceTransformerEmbedder


def test_two_encoder_processes_give_the_vectors_of_one() -> None:
    texts = [f"Passage {i} about {topic}." for i in range(150)
             for topic in ("psoriasis and IL23R", "metformin")][:POOL_MIN_TEXTS + 44]
    single = SentenceTransformerEmbedder(threads=1)
    pooled = SentenceTransformerEmbedder(threads=1, processes=2)
    try:
        expected = single.encode_once(texts)
        found = pooled.encode_once(texts)
        assert pooled._pool is not None and len(pooled._pool["processes"]) == 2  # the pool did the work
        assert found.shape == expected.shape and np.abs(found - expected).max() < 1e-5
        assert np.allclose(np.linalg.norm(found, axis=1), 1.0, atol=1e-5)
        assert pooled.encode_once(texts[:3]).shape == (3, pooled.dimension)  # a small batch stays in this process
    finally:
        pooled.close()
    assert pooled._pool is None

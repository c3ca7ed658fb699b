"""Stored artefacts and how they are published: the text index, its corpus, the edge-vector store (read by
``edge_vectors``, built by ``edge_vector_build``), and the manifests, checksums, atomic publishing and build
lock that every builder shares (``artefacts``).
"""

"""Stored artefacts and how they are published: the text index, its corpus, the edge-vector store, and the
manifests, checksums, atomic publishing and build lock that every builder shares (``artefacts``).
"""

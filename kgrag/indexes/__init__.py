"""The indexes the answer path searches: the text index and its corpus, and the edge-vector store (read by
``edge_vectors``, built by ``edge_vector_build``). Each is published the way every artefact is
(:mod:`kgrag.artefacts`: staging, manifest and checksums, the build lock, two renames).
"""

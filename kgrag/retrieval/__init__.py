"""Retrieval's parts: entity linking (``linking``), the graph neighbourhood as sentences (``graph_context``) and
pruning by similarity or strength (``pruning``). The Retriever in :mod:`kgrag.answer.retriever` joins them.
"""

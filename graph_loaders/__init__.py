"""Public graph sources -> SPOKE-style nodes and edges -> a graph store.

One module per source (``entrez_genes``, ``disease_ontology``, ``mondo``, ``disgenet``,
``gwas_catalog``, ``jensenlab_diseases``, ``hetionet``, ``indications``), each a
``load(ctx)`` that streams its files and adds records to the shared
:class:`~graph_loaders.context.LoadContext`; ``identity`` merges diseases and genes across
vocabularies; ``build.build_graph`` runs them all and writes the store; ``coverage`` checks which
benchmark rows the built graph can decide; ``user_graph`` loads a user's own nodes.csv/edges.csv.
"""

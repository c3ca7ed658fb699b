"""What the graph and the corpus say for or against an option or a claim.

``checker`` is the one object the answer path asks; each job is its own module: ``options`` (an MCQ's choice and
the verdict every check returns), ``true_false`` (statements as claims), ``claims`` (a free-text answer's entity
pairs), ``inference`` (support through a subtype or a class member, walking the is-a hierarchy of :mod:`kgrag.graph.ontology`);
``absence`` says when a missing edge may count.
"""

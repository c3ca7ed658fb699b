"""What the graph and the corpus say for or against an option or a claim.

``checker`` decides options, true/false statements and claims from edges (direct, or inferred through the
is-a hierarchy in ``ontology`` and pharmacologic classes); ``absence`` says when a missing edge may count.
"""

"""What decided an answer, shown: the subgraph behind it (``subgraph``) and its picture (``picture``)."""

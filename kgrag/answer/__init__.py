"""The answer path: the Pipeline and its three stages (Retriever, Selector, writers), and the prompts.

``pipeline`` runs a batch through the stages; ``retriever`` links, fetches and prunes; ``selector`` chooses
among options (evidence first, the LLM among what it leaves tied); ``writer`` (one generation call) and
``gated_writer`` (QuCo's sentence-by-sentence loop) write free text; ``prompts`` builds what the LLM reads.
"""

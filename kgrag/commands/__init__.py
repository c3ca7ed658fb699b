"""CLI command groups; kgrag/cli.py registers each."""

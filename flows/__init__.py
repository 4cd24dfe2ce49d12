"""Prefect flows that chain the DVC stages (the only package that imports Prefect)."""

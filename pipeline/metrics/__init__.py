"""Metrics: dense multi-task metrics and Δm (``dense``), image-generation metrics (``fid``)."""

"""mgm-pipeline: multi-task oriented generative modelling (MGM) as a reproducible pipeline.

The library never imports Prefect or DVC; ``stages/`` and ``flows/`` wrap it.
"""

__version__ = "0.1.0"

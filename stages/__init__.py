"""One thin entry point per DVC stage: ``python -m stages.<name>`` or ``mgm <name>``."""

COMMANDS: dict[str, str] = {
    "shard": "Shard a source dataset (rooms | nyuv2-mat | nyuv2-folder | taskonomy) into WebDataset tars.",
    "preview": "Render a grid of samples of the configured source to a PNG (not a DVC stage).",
}
"""Sub-commands of ``mgm``: name -> one-line description (module ``stages.<name>``)."""

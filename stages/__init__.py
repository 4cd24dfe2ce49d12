"""One thin entry point per DVC stage: ``python -m stages.<name>`` or ``mgm <name>``."""

COMMANDS: dict[str, str] = {
    "shard": "Shard a source dataset (rooms | nyuv2-mat | nyuv2-folder | taskonomy) into WebDataset tars.",
    "preview": "Render a grid of samples of the configured source to a PNG (not a DVC stage).",
    "train_mt": "Train single-task (st), multi-task (mt) or mixed-shard (mgm-shards) networks (resumes).",
    "evaluate": "Test-split metrics per variant, prediction grids and a report with Δm against single-task.",
    "train_gan": "Pre-train the conditional SAGAN on the real training images (FID/KID tracked; resumes).",
    "synthesize": "Write scene-labelled images from a generator checkpoint as synthetic shards.",
    "train_mgm": "Joint MGM training of M, refinement net, SSL head and guided G/D from the GAN (resumes).",
}
"""Sub-commands of ``mgm``: name -> one-line description (module ``stages.<name>``)."""

TOOL_COMMANDS: dict[str, str] = {
    "params": "Write docs/params.md and params.yaml's comments from the params' descriptions (--check).",
    "profile": "Write a named params profile (profiles/NAME.yaml, e.g. quickstart) into params.yaml.",
    "deps": "Set each DVC stage's code deps in dvc.yaml to the files its entry point imports (--check).",
}
"""Sub-commands of ``mgm`` that maintain the project rather than run a stage (module ``stages.<name>``)."""

FLOW_COMMANDS: dict[str, str] = {
    "flow": "Prefect flows over the DVC stages: `mgm flow run [STAGE...]`, `flow sweep`, `flow serve`.",
    "ui": "Start a local Prefect server and UI on 127.0.0.1 (`--port`, Ctrl-C stops it).",
}
"""Sub-commands of ``mgm`` that are not DVC stages (module ``flows.cli``, imported only when they run)."""

"""Dense tasks: the registry of task specs (``registry``) and their losses (``losses``)."""

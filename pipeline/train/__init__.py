"""Training loops and what they share: checkpoints with resume, run history, runtime setup."""

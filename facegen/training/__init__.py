"""Training at scale: one config-driven trainer for every model family, checkpoints, DDP, SLURM."""

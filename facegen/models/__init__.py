"""Models that turn a skull into a face: one small interface, a registry, baselines and generative models."""

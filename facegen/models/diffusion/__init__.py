"""Conditional diffusion models: several plausible faces per skull, and their spread as uncertainty."""

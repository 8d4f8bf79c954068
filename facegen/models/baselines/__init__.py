"""The classical baselines every generative model is compared against."""

"""Evaluation: how close predicted face depth maps come to the truth, over the facial area."""

"""Data: synthetic heads, canonical pose, representations and datasets on disk."""

"""Datasets on disk: subjects table, chunked arrays, card, split, verification."""

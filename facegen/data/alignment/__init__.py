"""Putting any skull in the canonical frame: a statistical skull model fitted to the scan, then Frankfurt."""

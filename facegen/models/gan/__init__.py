"""Conditional GANs: skull to face, in 2.5D depth maps (and 3D grids by configuration)."""

"""Neural building blocks shared by the 2D and 3D model families."""

"""The two representations models learn from: 2.5D depth maps and 3D voxel grids."""

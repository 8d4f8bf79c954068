"""Reading and writing scans, meshes and volumes, atomically."""

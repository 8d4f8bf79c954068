"""Real scans in: readers (DICOM, NIfTI, MHA/NRRD, meshes), checks, segmentation, pose and ingestion."""

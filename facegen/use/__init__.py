"""Using facegen on a case: reconstruct a face from a skull, the case folder, viewer and report."""

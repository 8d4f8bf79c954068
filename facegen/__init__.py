"""facegen: forensic craniofacial reconstruction, from a skull to a face with an honest uncertainty."""

__version__ = "0.1.0"

"""Plain image classification: the smallest consumer of the shared machinery (and MimicNorm's home)."""

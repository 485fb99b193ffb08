"""Training subproject: data -> backbone -> fit -> export -> evaluate. Run as ``python -m train``."""

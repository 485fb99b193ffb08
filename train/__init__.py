"""Training subproject: data -> backbone -> fit -> export -> evaluate. Run as ``python -m train``."""

import catsort  # noqa: F401  (first: it turns onnxruntime's telemetry off before any module here imports onnxruntime)

"""catsort: move cat photos to cats/, dog photos to dogs/, leave everything else alone."""

import os

__version__ = "0.3.0"

# onnxruntime's Linux wheels (1.29 and later) keep a device ID under ~/.cache/Microsoft and send usage
# events to Microsoft unless this is set before the library starts; catsort promises that nothing leaves
# the machine. Here, because every way into the app (the CLI, the window, the bundle) imports this first.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

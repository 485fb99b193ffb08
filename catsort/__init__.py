"""catsort: move cat photos to cats/, dog photos to dogs/, leave everything else alone."""

__version__ = "0.2.0"

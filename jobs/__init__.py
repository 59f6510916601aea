"""Stages (one module each), the pipeline runner and the shared runtime."""

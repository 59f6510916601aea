"""realsyn: RealSyn-style CLIP pre-training data, built as Spark + Delta jobs."""
__version__ = "0.1.0"

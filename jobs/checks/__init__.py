"""Checks a user runs before a long job: the machine (doctor) and the models (check-models)."""

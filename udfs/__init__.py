"""Executor-side code: pure batch functions plus thin Spark wrappers."""

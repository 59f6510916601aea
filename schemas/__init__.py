"""Table schemas and the table registry (the contract between stages)."""
from realsyn.schemas.registry import REGISTRY, SchemaMismatch, TableSpec, check_schema, spec

__all__ = ["REGISTRY", "SchemaMismatch", "TableSpec", "check_schema", "spec"]

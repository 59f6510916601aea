"""CAT-style caption complexity and action, from a spaCy dependency parse.

CAT (Radenovic et al., 2023) keeps captions whose scene graph has at least one relation
and that describe an action. Here the scene-graph relations are read off the dependency
parse: complexity = the number of argument edges (a subject, object, attribute or
object of a preposition attached to its head), and a sentence has an action when a
token is tagged VERB (spaCy's universal POS keeps auxiliaries and copulas apart as AUX).
The pipeline is any spaCy pipeline with a parser and POS tags, loaded from a folder
(nlp.to_disk) or an installed package name, once per Python worker.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd

# Edges that link two participants in the scene graph (English ClearNLP labels as used
# by spaCy's English pipelines, plus the UD names for pipelines trained on UD).
RELATION_DEPS = frozenset({"nsubj", "nsubjpass", "csubj", "csubjpass", "dobj", "obj", "iobj", "dative",
                           "attr", "oprd", "pobj", "agent", "obl", "nsubj:pass"})
AUX_DEPS = frozenset({"aux", "auxpass", "aux:pass", "cop"})
BE_FORMS = frozenset({"be", "is", "are", "was", "were", "been", "being", "am", "'s", "'re", "'m"})
OUTPUT_DDL = "complexity int, has_action boolean"
# Components a parse does not need; skipped when the pipeline has them (saves most time).
UNUSED = ("ner", "lemmatizer", "textcat", "textcat_multilabel", "entity_linker", "entity_ruler",
          "span_finder", "spancat", "trainable_lemmatizer")


class ComplexityModelError(ValueError):
    """The configured pipeline cannot be used (missing, or no parser / POS)."""


def is_action(token) -> bool:
    if token.pos_:
        return token.pos_ == "VERB"
    # A pipeline with a tagger but no POS mapping: fine-grained verb tags minus auxiliaries.
    return token.tag_.startswith("VB") and token.dep_ not in AUX_DEPS and token.lower_ not in BE_FORMS


def doc_complexity(doc) -> tuple[int, bool]:
    """(number of relation edges, whether the sentence has an action verb)."""
    complexity = sum(1 for t in doc if t.dep_ in RELATION_DEPS and t.head.i != t.i)
    return complexity, any(is_action(t) for t in doc)


def resolve(model: str) -> str:
    """A folder path (absolute) or an installed pipeline package name; clear error otherwise."""
    path = os.path.abspath(os.path.expanduser(model))
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "meta.json")):
            raise ComplexityModelError(f"sentences.complexity_model={model}: {path} is not a spaCy pipeline "
                                       "folder (no meta.json; save one with nlp.to_disk)")
        with open(os.path.join(path, "meta.json")) as f:
            meta = json.load(f)
        if "parser" not in meta.get("pipeline", []):
            raise ComplexityModelError(f"sentences.complexity_model={model}: the pipeline has no dependency "
                                       f"parser (components: {meta.get('pipeline')})")
        return path
    import spacy.util
    if spacy.util.is_package(model):
        return model
    raise ComplexityModelError(f"sentences.complexity_model={model}: neither a folder nor an installed "
                               "spaCy pipeline package")


def package_identity(model: str) -> str:
    """An installed pipeline package is pinned by its name and version (a folder is hashed
    by the stage, like any local weights)."""
    import importlib.metadata
    return f"{model}=={importlib.metadata.version(model)}"


@dataclass(frozen=True, kw_only=True)
class ComplexitySpec:
    model: str           # resolved folder or package name
    batch_size: int


_PIPELINES: dict[str, object] = {}


def pipeline_for(model: str):
    if model not in _PIPELINES:
        import spacy
        nlp = spacy.load(model, exclude=[c for c in UNUSED])
        if "parser" not in nlp.pipe_names:
            raise ComplexityModelError(f"spaCy pipeline {model} has no parser")
        _PIPELINES[model] = nlp
    return _PIPELINES[model]


def score(texts: list, nlp, batch_size: int) -> pd.DataFrame:
    """Rows for texts; None texts (already rejected upstream) are not parsed and give nulls."""
    todo = [i for i, t in enumerate(texts) if isinstance(t, str)]
    complexity: list[int | None] = [None] * len(texts)
    action: list[bool | None] = [None] * len(texts)
    for i, doc in zip(todo, nlp.pipe((texts[i] for i in todo), batch_size=batch_size)):
        complexity[i], action[i] = doc_complexity(doc)
    return pd.DataFrame({"complexity": pd.array(complexity, dtype="Int32"),
                         "has_action": pd.array(action, dtype="boolean")})


def complexity_batches(spec: ComplexitySpec):
    """Iterator pandas UDF body: text Series -> (complexity, has_action) frame."""
    def run(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        nlp = pipeline_for(spec.model)
        for texts in batches:
            yield score(texts.tolist(), nlp, spec.batch_size)
    return run

"""CAT-style complexity / action from a spaCy parse.

The pretrained English pipelines cannot be downloaded here, so build_pipeline() trains
a small one (tagger + parser + attribute_ruler, like the English pipelines) on
hand-annotated sentences and saves it with nlp.to_disk; it is loaded back through the
same path a user configures (sentences.complexity_model).
"""
import json

import pytest

spacy = pytest.importorskip("spacy")

from realsyn.udfs.complexity import (ComplexityModelError, doc_complexity, pipeline_for,  # noqa: E402
                                     resolve, score)

TAG_TO_POS = {"DT": "DET", "NN": "NOUN", "NNS": "NOUN", "VBZ": "VERB", "VBP": "VERB", "VBG": "VERB",
              "IN": "ADP", "JJ": "ADJ", "RB": "ADV", ".": "PUNCT"}

# (words, tags, heads, deps, expected complexity, expected has_action)
GOLD = [
    ("A dog runs on the beach .", "DT NN VBZ IN DT NN .", [1, 2, 2, 2, 5, 3, 2],
     "det nsubj ROOT prep det pobj punct", 2, True),
    ("A man rides a horse .", "DT NN VBZ DT NN .", [1, 2, 2, 4, 2, 2], "det nsubj ROOT det dobj punct", 2, True),
    ("Children play in the park .", "NNS VBP IN DT NN .", [1, 1, 1, 4, 2, 1],
     "nsubj ROOT prep det pobj punct", 2, True),
    ("A woman reads a book .", "DT NN VBZ DT NN .", [1, 2, 2, 4, 2, 2], "det nsubj ROOT det dobj punct", 2, True),
    ("The sky is blue .", "DT NN VBZ JJ .", [1, 2, 2, 2, 2], "det nsubj ROOT acomp punct", 1, False),
    ("The house is red .", "DT NN VBZ JJ .", [1, 2, 2, 2, 2], "det nsubj ROOT acomp punct", 1, False),
    ("Sunset over the lake .", "NN IN DT NN .", [0, 0, 3, 1, 0], "ROOT prep det pobj punct", 1, False),
    ("A beautiful sunset .", "DT JJ NN .", [2, 2, 2, 2], "det amod ROOT punct", 0, False),
    ("Old family photographs .", "JJ NN NNS .", [2, 2, 2, 2], "amod compound ROOT punct", 0, False),
    ("Running very fast .", "VBG RB RB .", [0, 2, 0, 0], "ROOT advmod advmod punct", 0, True),
]


def sentence(words: str) -> str:
    return words[:-2] + "."


def build_pipeline(path, epochs: int = 60) -> str:
    """Train tagger + parser on GOLD until it reproduces it; save to path; return path."""
    from spacy.training import Example
    from spacy.util import fix_random_seed
    fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("tagger")
    nlp.add_pipe("parser", config={"min_action_freq": 1})   # default 30 folds rare labels into "dep"
    ruler = nlp.add_pipe("attribute_ruler")
    examples = []
    for words, tags, heads, deps, *_ in GOLD:
        ws = words.split()
        examples.append(Example.from_dict(nlp.make_doc(sentence(words)),
                                          {"words": ws, "tags": tags.split(), "heads": heads, "deps": deps.split()}))
    optimizer = nlp.initialize(lambda: examples)
    # After initialize, which clears the ruler. Copulas and auxiliaries are AUX, as in
    # spaCy's English pipelines.
    ruler.load_from_tag_map({t: {"POS": p} for t, p in TAG_TO_POS.items()})
    ruler.add([[{"LOWER": {"IN": ["is", "are", "was", "were", "be"]}}]], {"POS": "AUX"})
    for _ in range(epochs):
        nlp.update(examples, sgd=optimizer, drop=0.0)
    nlp.to_disk(path)
    return str(path)


@pytest.fixture(scope="session")
def cat_model(tmp_path_factory):
    return build_pipeline(tmp_path_factory.mktemp("cat") / "pipeline")


def test_doc_complexity_on_hand_built_parses():
    from spacy.tokens import Doc
    nlp = spacy.blank("en")
    for words, tags, heads, deps, complexity, action in GOLD:
        ws = words.split()
        pos = [TAG_TO_POS[t] for t in tags.split()]
        pos = ["AUX" if w in ("is",) else p for w, p in zip(ws, pos)]
        doc = Doc(nlp.vocab, words=ws, pos=pos, heads=heads, deps=deps.split())
        assert doc_complexity(doc) == (complexity, action), words


def test_tag_only_pipelines_still_see_actions():
    """No POS mapping: VB* tags count, auxiliaries and copulas do not."""
    from spacy.tokens import Doc
    nlp = spacy.blank("en")
    doc = Doc(nlp.vocab, words="The sky is blue".split(), tags=["DT", "NN", "VBZ", "JJ"],
              heads=[1, 2, 2, 2], deps=["det", "nsubj", "ROOT", "acomp"])
    assert doc_complexity(doc) == (1, False)
    doc = Doc(nlp.vocab, words="A cat has been sleeping".split(), tags=["DT", "NN", "VBZ", "VBN", "VBG"],
              heads=[1, 4, 4, 4, 4], deps=["det", "nsubj", "aux", "aux", "ROOT"])
    assert doc_complexity(doc) == (1, True)


def test_trained_pipeline_scores_through_the_configured_path(cat_model):
    nlp = pipeline_for(resolve(cat_model))
    texts = [sentence(g[0]) for g in GOLD]
    parsed = [[(t.tag_, t.pos_, t.head.i, t.dep_) for t in doc] for doc in nlp.pipe(texts)]
    gold = [list(zip(g[1].split(), ["AUX" if w == "is" else TAG_TO_POS[t] for w, t in zip(g[0].split(), g[1].split())],
                     g[2], g[3].split())) for g in GOLD]
    assert parsed == gold, "the test pipeline did not learn its annotations"
    out = score([*texts, None], nlp, batch_size=4)
    assert out["complexity"].tolist()[:-1] == [g[4] for g in GOLD]
    assert out["has_action"].tolist()[:-1] == [g[5] for g in GOLD]
    assert out["complexity"].isna().iloc[-1] and out["has_action"].isna().iloc[-1]


def test_bad_model_paths_are_clear_errors(tmp_path):
    with pytest.raises(ComplexityModelError, match="neither a folder nor an installed"):
        resolve(str(tmp_path / "missing"))
    with pytest.raises(ComplexityModelError, match="no meta.json"):
        resolve(str(tmp_path))
    nlp = spacy.blank("en")
    nlp.add_pipe("tagger").add_label("NN")
    nlp.initialize()
    nlp.to_disk(tmp_path / "tagger_only")
    with pytest.raises(ComplexityModelError, match="no dependency parser"):
        resolve(str(tmp_path / "tagger_only"))
    assert json.loads((tmp_path / "tagger_only" / "meta.json").read_text())["pipeline"] == ["tagger"]


def test_stage_reports_a_bad_model_as_input_error(tmp_path):
    from realsyn.jobs.extract_sentences import ExtractSentencesParams, complexity_spec
    from realsyn.jobs.core.stage import InputError
    from tests.conftest import make_config
    assert complexity_spec(ExtractSentencesParams.from_config(make_config(tmp_path))) is None          # no model configured: does not run
    cfg = make_config(tmp_path, f"sentences.complexity_model={tmp_path}/nope")
    with pytest.raises(InputError, match="sentences.complexity_model="):
        complexity_spec(ExtractSentencesParams.from_config(cfg))

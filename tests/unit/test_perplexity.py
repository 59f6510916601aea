import math

from realsyn.udfs.perplexity import PerplexityModel, PplSpec, model_for

SPEC = PplSpec(model="tiny", local_dir="", seed=42, batch_size=8, max_tokens=64, threads=1)


def test_random_tiny_lm_perplexity_is_about_its_vocabulary_and_deterministic():
    m = model_for(SPEC)
    ppl = m.perplexity(["a dog runs on the beach at sunset.", "the red car"])
    assert all(50 < p < 5 * len(m.tok) for p in ppl)
    assert PerplexityModel(SPEC).perplexity(["the red car"])[0] == ppl[1]


def test_perplexity_matches_a_hand_computed_loss():
    import torch
    m = model_for(SPEC)
    text = "a man walks"
    ids = m.tok(text, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        loss = m.model(input_ids=ids, labels=ids).loss.item()
    assert math.isclose(m.perplexity([text])[0], math.exp(loss), rel_tol=1e-4)


def test_single_token_has_no_perplexity():
    m = model_for(SPEC)
    assert math.isnan(m.perplexity(["a"])[0]) or len(m.tok("a")["input_ids"]) > 1


def test_loads_a_local_save_pretrained_folder(tmp_path):
    m = model_for(SPEC)
    m.model.save_pretrained(tmp_path / "ppl_lm", safe_serialization=True)
    m.tok.save_pretrained(tmp_path / "ppl_lm")
    local = PerplexityModel(PplSpec(model="ignored", local_dir=str(tmp_path / "ppl_lm"), seed=1, batch_size=8, max_tokens=64, threads=1))
    assert math.isclose(local.perplexity(["the red car"])[0], m.perplexity(["the red car"])[0], rel_tol=1e-5)


def test_perplexity_ignores_what_other_models_do_to_their_tokenizers():
    from realsyn.udfs.generation_models import GenSpec, generators_for
    before = PerplexityModel(SPEC).perplexity(["a dog runs on the beach at sunset.", "the red car"])
    generators_for(GenSpec(captioner="tiny", llm="tiny", captioner_dir="", llm_dir="", seed=42, caption_max_new_tokens=8, caption_num_beams=1, llm_max_new_tokens=12, threads=1))   # sets left padding on its own copy
    after = PerplexityModel(SPEC).perplexity(["a dog runs on the beach at sunset.", "the red car"])
    assert before == after


def test_null_texts_are_not_scored_and_stay_null():
    import pandas as pd
    from realsyn.udfs.perplexity import PplSpec, perplexity_batches
    spec = PplSpec(model="tiny", local_dir="", seed=7, batch_size=2, max_tokens=32, threads=1)
    texts = pd.Series(["a red bus drives on the road", None, "two dogs play in the park", None, "a sky"])
    (out,) = list(perplexity_batches(spec)(iter([texts])))
    assert len(out) == 5
    assert out.isna().tolist() == [False, True, False, True, False]
    assert out[0] > 1 and out[2] > 1 and out[4] > 1


def test_a_perplexity_does_not_depend_on_the_sentences_that_shared_its_batch():
    """However Spark's batches (or a resumed run's units) cut the sentences, each one's
    perplexity is bit for bit the same: it is scored at a shape fixed by its own length."""
    import pandas as pd
    from realsyn.udfs.perplexity import PplSpec, length_bucket, perplexity_batches
    spec = PplSpec(model="tiny", local_dir="", seed=7, batch_size=4, max_tokens=32, threads=1)
    texts = pd.Series([("a red bus drives on the road " * (i % 5 + 1)).strip() for i in range(13)] + [None])
    runs = []
    for cuts in ([], [1], [3, 4, 9]):
        edges = [0, *cuts, len(texts)]
        parts = [texts.iloc[a:b].reset_index(drop=True) for a, b in zip(edges, edges[1:])]
        runs.append(pd.concat(list(perplexity_batches(spec)(iter(parts))), ignore_index=True).tolist())
    assert runs[0][:13] == runs[1][:13] == runs[2][:13] and all(v > 1 for v in runs[0][:13])
    assert [length_bucket(n, 32) for n in (0, 1, 16, 17, 32, 40)] == [16, 16, 16, 32, 32, 32]

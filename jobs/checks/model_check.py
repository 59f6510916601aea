"""`realsyn check-models`: a preset's models through the stages' own executor code, before a long job.

Two kinds of check, one line each:
- wiring (nothing runs; models on PyTorch's meta device): the names the preset gives, the
  parameter count of the published shape, the CLIP's input side and embedding dimension as
  the encoder derives them, the captioner's processor side and cross-attention width, the
  LLM's chat template (compared with what the real one renders), its vocabulary and context
  against the prompt and answer lengths, the vLLM mapping of its generation settings, the
  perplexity LM's context against `sentences.ppl_max_tokens`;
- run: the stages' parameters built from the config (EmbedParams, GenerateParams,
  ExtractSentencesParams) and their executor bodies (udfs/embed_batches, udfs/synthesis,
  udfs/perplexity) run on a few images and sentences with the configured batch settings:
  shapes, dtypes, every row kept or rejected with a reason, the prompt the LLM is given.

Models load as the stages load them: by name, or from `models.weights_dir`. `--random-init`
builds the preset's real classes offline at random init (jobs/preset_models.py) and saves them
in a temporary weights_dir first, so the check runs where no weights can be downloaded.
"""
from __future__ import annotations

import io
import json
import math
import random
import shutil
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from realsyn.jobs.checks import preset_models as pm
from realsyn.jobs.core.config import Config

COLOURS = ("red", "blue", "green", "yellow", "black", "white", "orange")
THINGS = ("cube", "ball", "dog", "car", "house", "tree", "bicycle", "chair")
PLACES = ("on a table", "in a park", "near the river", "on the street", "in a small room", "under a bridge")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


def sample_sentences(n: int, seed: int = 0) -> list[str]:
    """n descriptions, the last one a single word (a sentence with no perplexity)."""
    rng = random.Random(seed)
    out = [f"a {rng.choice(COLOURS)} {rng.choice(THINGS)} {rng.choice(PLACES)} next to a "
           f"{rng.choice(COLOURS)} {rng.choice(THINGS)}." for _ in range(max(0, n - 1))]
    return out + ["hello"]


def sample_images(n: int, seed: int = 0) -> list[bytes]:
    """n encoded images (JPEG and PNG, small to large, odd shapes); the last one truncated,
    so the rejection path runs too."""
    from PIL import Image, ImageDraw
    rng = random.Random(seed)
    out = []
    for i in range(n):
        w, h = rng.choice([(64, 48), (320, 240), (500, 500), (1200, 800), (97, 1023)])
        im = Image.new("RGB", (w, h), tuple(rng.randrange(256) for _ in range(3)))
        ImageDraw.Draw(im).ellipse([w // 4, h // 4, 3 * w // 4, 3 * h // 4], fill=rng.choice(COLOURS))
        buf = io.BytesIO()
        im.save(buf, "JPEG" if i % 2 == 0 else "PNG")
        out.append(buf.getvalue())
    if out:
        out[-1] = out[-1][: len(out[-1]) // 3]
    return out


def preset_names(cfg: Config) -> dict[str, str]:
    from realsyn.jobs.core.params import preset_model
    return {role: preset_model(cfg, role) for role in ("clip", "captioner", "llm", "ppl_lm", "tagger")}


def _published(name: str, model, published: float) -> Check:
    n = pm.parameter_count(model)
    return Check(f"{name} shape", abs(n - published) <= 0.01 * published,
                 f"{n / 1e9:.3f}B parameters (published {published / 1e9:.3f}B)")


def wiring(cfg: Config, texts: list[str]) -> list[Check]:
    """The preset's models built on the meta device and wired as the stages wire them."""
    from realsyn.udfs.clip_encoder import clip_geometry
    from realsyn.udfs.generation_models import input_side, render_chat, vllm_sampling_kwargs
    names, checks = preset_names(cfg), []
    clip = pm.clip_model(names["clip"], meta=True)
    side, dim = clip_geometry(clip, names["clip"])
    text_dim = clip.text_projection.shape[-1] if getattr(clip, "text_projection", None) is not None else dim
    checks.append(Check(f"clip {names['clip']}", dim == text_dim and side > 0,
                        f"{pm.parameter_count(clip) / 1e9:.2f}B parameters, input {side}px, embedding dim {dim}"))
    del clip
    with tempfile.TemporaryDirectory() as folder:
        cap, processor = pm.blip_captioner(names["captioner"], texts, folder, meta=True)
    vision, text = cap.config.vision_config, cap.config.text_config
    cap_side = input_side(processor)
    checks += [_published(f"captioner {names['captioner']}", cap, pm.CAPTIONERS[names["captioner"]][2]),
               Check("captioner processor", cap_side == vision.image_size and text.encoder_hidden_size == vision.hidden_size,
                     f"images resized to {cap_side}px for a {vision.image_size}px tower; the decoder attends to "
                     f"{text.encoder_hidden_size} wide image tokens ({vision.hidden_size} made)")]
    del cap
    llm, tok = pm.causal_lm(names["llm"], texts, meta=True)
    shape = pm.LLMS[names["llm"]]
    prompt = "Raw text: a red cube on a table\nCaption: a cube\nTags: cube, red"
    rendered = render_chat(tok, [prompt])[0]
    need = len(tok(rendered, add_special_tokens=False)["input_ids"]) + cfg.get("generation.llm_max_new_tokens")
    try:
        vllm = vllm_sampling_kwargs(cfg.get("generation.llm_max_new_tokens"), llm.generation_config.to_dict())
        vllm_ok, vllm_detail = True, f"greedy, max_tokens {vllm['max_tokens']}, stop ids {vllm.get('stop_token_ids')}"
    except Exception as err:   # noqa: BLE001 - reported as the check's failure
        vllm_ok, vllm_detail = False, str(err)
    checks += [_published(f"llm {names['llm']}", llm, shape.params),
               Check("llm chat template", rendered == shape.expected_render(prompt),
                     "renders one user turn as the real template does" if rendered == shape.expected_render(prompt)
                     else f"rendered {rendered!r}"),
               Check("llm vocabulary and context", len(tok) <= llm.config.vocab_size
                     and need <= llm.config.max_position_embeddings,
                     f"tokenizer {len(tok)} <= {llm.config.vocab_size} ids; prompt + answer {need} <= "
                     f"{llm.config.max_position_embeddings} positions"),
               Check("llm vLLM mapping", vllm_ok, vllm_detail)]
    del llm
    ppl, _ = pm.causal_lm(names["ppl_lm"], texts, meta=True)
    limit = cfg.get("sentences.ppl_max_tokens")
    checks += [_published(f"ppl_lm {names['ppl_lm']}", ppl, pm.LLMS[names["ppl_lm"]].params),
               Check("ppl_lm context", limit <= ppl.config.n_positions,
                     f"sentences.ppl_max_tokens {limit} <= {ppl.config.n_positions} positions")]
    return checks


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _status_check(name: str, frame: pd.DataFrame, n_in: int, expected_rejects: dict[str, str]) -> Check:
    """Every input row comes back once, kept or rejected with a reason (and the expected ones rejected)."""
    kept = frame["status"].eq("kept")
    bad = frame[~kept & frame["reason"].isna()]
    wrong = {k: r for k, r in expected_rejects.items()
             if not frame.loc[frame.iloc[:, 0] == k, "reason"].eq(r).all()}
    ok = len(frame) == n_in and frame.iloc[:, 0].nunique() == n_in and bad.empty and not wrong \
        and frame["status"].isin(["kept", "rejected"]).all()
    reasons = frame.loc[~kept, "reason"].value_counts().to_dict()
    return Check(name, bool(ok), f"{n_in} in, {int(kept.sum())} kept, rejected {reasons or 'none'}"
                 + (f"; expected rejects missing {wrong}" if wrong else ""))


def run_bodies(cfg: Config, images: list[bytes], sentences: list[str]) -> list[Check]:
    """The stages' executor bodies on the given rows, with the stages' own parameters."""
    from realsyn.jobs.embed import EmbedParams
    from realsyn.jobs.extract_sentences import ExtractSentencesParams
    from realsyn.jobs.generate import GenerateParams, gen_spec
    from realsyn.udfs.clip_encoder import encoder_for
    from realsyn.udfs.embed_batches import embed_images, embed_texts
    from realsyn.udfs.generation_models import generators_for
    from realsyn.udfs.perplexity import perplexity_batches
    from realsyn.udfs.synthesis import synthesize, tag_fn
    from realsyn.udfs.vector_codec import from_bytes
    checks = []
    ep = EmbedParams.from_config(cfg)
    enc = encoder_for(ep.encoder)
    param = next(enc.model.parameters())
    checks.append(Check("embed model", True, f"{enc.model_id} on {enc.device}, {param.dtype}, input {enc.image_size}px, "
                                               f"dim {enc.dim}, batch {ep.batch_size}"))
    ids = [f"img{i}" for i in range(len(images))]
    frame, secs = _timed(lambda: pd.concat(list(embed_images(ep.encoder, ep.batch_size, ep.storage_dtype)(
        iter([pd.DataFrame({"image_id": ids, "bytes": images})])))))
    checks.append(_status_check(f"embed images ({secs:.1f} s)", frame, len(ids), {ids[-1]: "undecodable"}))
    kept = frame[frame["status"].eq("kept")]
    vecs = from_bytes(kept["embedding"].tolist(), enc.dim, ep.storage_dtype)
    norms = np.linalg.norm(vecs.astype(np.float64), axis=1)
    checks.append(Check("image vectors", vecs.shape == (len(kept), enc.dim) and bool(np.allclose(norms, 1, atol=1e-2))
                        and (kept["dim"] == enc.dim).all() and (kept["dtype"] == ep.storage_dtype).all(),
                        f"{vecs.shape} {ep.storage_dtype}, norms {norms.min():.3f}..{norms.max():.3f}"))
    sids = [f"s{i}" for i in range(len(sentences))]
    texts, secs = _timed(lambda: pd.concat(list(embed_texts(ep.encoder, ep.batch_size, ep.storage_dtype)(
        iter([pd.DataFrame({"sentence_id": sids, "text": sentences})])))))
    checks.append(_status_check(f"embed sentences ({secs:.1f} s)", texts, len(sids), {}))

    gp = GenerateParams.from_config(cfg)
    vocab = sorted({w.strip(".,") for s in sentences for w in s.split()})[: gp.tag_vocab_size]
    tag_blob = enc.encode_texts(vocab).astype("<f4").tobytes()
    tagged = pd.concat(list(tag_fn(enc.dim, ep.storage_dtype, vocab, tag_blob, gp.tag_top_m, gp.tag_min_score)(
        iter([kept[["image_id", "embedding"]]]))))
    source = tagged.assign(r1=sentences[: len(tagged)], bytes=[images[ids.index(i)] for i in tagged["image_id"]])
    source = pd.concat([source, pd.DataFrame({"image_id": [ids[-1]], "tags": [[]], "r1": [sentences[0]],
                                              "bytes": [images[-1]]})], ignore_index=True)
    gen = generators_for(gen_spec(gp))
    cap_param = next(gen.cap_model.parameters())
    checks.append(Check("generate models", True,
                        f"captioner {gen.captioner_id} ({cap_param.dtype}, input {gen.image_side}px), llm {gen.llm_id} "
                        f"on engine {gen.engine}, batch {gp.batch_size}, {gp.models.llm_max_new_tokens} new tokens"))
    rows, secs = _timed(lambda: pd.concat(list(synthesize(gen_spec(gp), gp.prompt_template, gp.batch_size)(
        iter([source])))))
    checks.append(_status_check(f"generate ({secs:.1f} s)", rows, len(source), {ids[-1]: "undecodable"}))
    models = [json.loads(m) for m in rows["models"].dropna()]
    checks.append(Check("generate rows name their models", bool(models) and all(
        m.get("llm_engine") == gen.engine and m.get("tagger") == preset_names(cfg)["tagger"] for m in models),
        f"{models[0] if models else 'no kept row'}"))
    from realsyn.udfs.synthesis import render_prompt
    prompt = render_prompt(gp.prompt_template, sentences[0], "a caption", ["tag"])
    rendered = gen.render([prompt])[0]
    shape = pm.LLMS.get(preset_names(cfg)["llm"])
    if shape is not None and shape.expected_render is not None:
        checks.append(Check("fusion prompt", rendered == shape.expected_render(prompt),
                            "the LLM's own chat template, as the real model renders it"
                            if rendered == shape.expected_render(prompt) else f"rendered {rendered!r}"))
    else:
        checks.append(Check("fusion prompt", prompt in rendered and rendered != prompt,
                            f"rendered through the tokenizer's chat template ({len(rendered) - len(prompt)} extra chars)"))

    sp = ExtractSentencesParams.from_config(cfg).filters
    values, secs = _timed(lambda: next(perplexity_batches(sp.ppl)(iter([pd.Series(sentences)]))))
    finite = [v for v in values if not math.isnan(v)]
    band = sum(sp.ppl_min <= v <= sp.ppl_max for v in finite)
    checks.append(Check(f"perplexity ({secs:.1f} s)", len(values) == len(sentences) and all(v > 0 for v in finite)
                        and math.isnan(values.iloc[-1]) and len(finite) == len(sentences) - 1,
                        f"{len(finite)} scored (median {np.median(finite) if finite else float('nan'):.1f}), "
                        f"{len(sentences) - len(finite)} undefined (one word), {band} inside "
                        f"[{sp.ppl_min}, {sp.ppl_max}], batch {sp.ppl.batch_size}"))
    return checks


def check_models(cfg: Config, random_init: bool, wiring_only: bool, images: int = 8, sentences: int = 50,
                 say=print) -> list[Check]:
    """Run the checks for cfg's preset, printing each line as it is known."""
    texts = sample_sentences(sentences)
    checks: list[Check] = []

    def add(new: list[Check]) -> None:
        for c in new:
            say(c.line())
        checks.extend(new)

    names = preset_names(cfg)
    say(f"preset {cfg.get('models.preset')}: " + ", ".join(f"{k} {v}" for k, v in names.items()))
    if random_init or wiring_only:
        add(wiring(cfg, pm.corpus(texts)))
    if wiring_only:
        return checks
    folder = ""
    try:
        if random_init:
            folder = tempfile.mkdtemp(prefix="realsyn-models-")
            _, secs = _timed(lambda: pm.write_weights(names, folder, pm.corpus(texts), cfg.get("run.seed")))
            say(f"built the preset's classes at random init and saved them in {folder} ({secs:.0f} s)")
            cfg = cfg.with_overrides([f"models.weights_dir={folder}", "models.weights_roles=null"])
        add(run_bodies(cfg, sample_images(images), texts))
    finally:
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
    return checks


def run_check_command(args, cfg: Config) -> int:
    """`realsyn check-models`: 0 when every check passes (the preset is in cfg: --preset sets it)."""
    checks = check_models(cfg, args.random_init, args.wiring_only)
    failed = [c for c in checks if not c.ok]
    print(f"check-models: {len(checks) - len(failed)} of {len(checks)} checks passed")
    return 1 if failed else 0

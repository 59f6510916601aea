import numpy as np
import pytest
from PIL import Image

from realsyn.udfs.clip_encoder import EncoderSpec, encoder_for
from realsyn.udfs.vector_codec import from_bytes, to_bytes

SPEC = EncoderSpec(arch="tiny", pretrained="", weights="", seed=42, threads=1, mixed_precision=True)


def test_tiny_encoder_is_seeded_and_normalised():
    enc = encoder_for(SPEC)
    imgs = [Image.new("RGB", (80, 60), (200, 10, 10)), Image.new("RGB", (64, 64), (10, 200, 10))]
    v = enc.encode_images(imgs)
    t = enc.encode_texts(["a red square", "a green square"])
    assert v.shape == (2, enc.dim) and t.shape == (2, enc.dim) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert enc.model_id == "tiny@seed:42"
    again = type(enc)(SPEC).encode_texts(["a red square"])   # a fresh build gives the same vectors
    assert np.allclose(again[0], t[0], atol=1e-6)


def test_storage_round_trip_float32_and_float16():
    x = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    assert np.array_equal(from_bytes(to_bytes(x, "float32"), 8), x)
    half = from_bytes(to_bytes(x, "float16"), 8, "float16")
    assert np.allclose(half, x, atol=1e-2) and len(to_bytes(x, "float16")[0]) == 16


def test_weights_load_from_a_local_safetensors_folder(tmp_path):
    import torch
    from safetensors.torch import save_file
    other = EncoderSpec(arch="tiny", pretrained="", weights="", seed=7, threads=1, mixed_precision=False)
    source = encoder_for(other)
    folder = tmp_path / "clip"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in source.model.state_dict().items()}, folder / "model.safetensors")
    loaded = type(source)(EncoderSpec(arch="tiny", pretrained="", weights=str(folder), seed=42, threads=1, mixed_precision=False))
    assert loaded.model_id.startswith("tiny@weights:")
    assert np.allclose(loaded.encode_texts(["a dog"]), source.encode_texts(["a dog"]), atol=1e-6)
    (tmp_path / "evil.bin").write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="safetensors"):
        type(source)(EncoderSpec(arch="tiny", pretrained="", weights=str(tmp_path / "evil.bin"), seed=1, threads=1, mixed_precision=False))
    del torch


def test_batched_preprocess_gives_the_same_pixels_as_open_clip_per_image():
    import torch
    enc = encoder_for(SPEC)
    rng = np.random.default_rng(1)
    imgs = [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for h, w in ((90, 200), (64, 64), (300, 70))]
    imgs.append(Image.new("L", (33, 90), 120))   # grey: converted to RGB after the crop, as open_clip does
    assert torch.equal(enc.preprocess_batch(imgs), torch.stack([enc.preprocess(im) for im in imgs]))


def test_arrow_and_pandas_bodies_give_the_same_rows():
    import io

    import pandas as pd
    import pyarrow as pa

    from realsyn.udfs.embed_batches import embed_images, embed_images_arrow, embed_texts, embed_texts_arrow
    buf = io.BytesIO()
    Image.new("RGB", (70, 50), (1, 2, 3)).save(buf, "PNG")
    images = pd.DataFrame({"image_id": ["a", "b", "c"], "bytes": [buf.getvalue(), b"not an image", buf.getvalue()]})
    texts = pd.DataFrame({"sentence_id": ["x", "y"], "text": ["a dog", None]})
    for df, pandas_fn, arrow_fn in ((images, embed_images, embed_images_arrow), (texts, embed_texts, embed_texts_arrow)):
        via_pandas = pd.concat(list(pandas_fn(SPEC, 2, "float16")(iter([df]))), ignore_index=True)
        batches = list(arrow_fn(SPEC, 2, "float16")(iter([pa.RecordBatch.from_pandas(df, preserve_index=False)])))
        via_arrow = pa.Table.from_batches(batches).to_pandas()
        assert via_arrow.drop(columns="dim").equals(via_pandas.drop(columns="dim"))
        assert list(via_arrow["dim"]) == list(via_pandas["dim"])
    rejected = pd.concat(list(embed_images(SPEC, 2, "float32")(iter([images]))))
    assert rejected.set_index("image_id").loc["b", "reason"] == "undecodable"
    assert rejected.set_index("image_id").loc["a", "status"] == "kept"


def test_a_vector_does_not_depend_on_the_rows_that_shared_its_batch():
    """The embed bodies encode every chunk at batch_size rows, so however Spark's batches,
    partitions or units cut the rows (a resumed run cuts them elsewhere), each row's vector
    is bit for bit the same."""
    import io

    import pandas as pd

    from realsyn.udfs.embed_batches import embed_images, embed_texts

    def png(i):
        buf = io.BytesIO()
        Image.new("RGB", (40 + i, 50), (i * 37 % 255, 90, 200 - i)).save(buf, "PNG")
        return buf.getvalue()

    texts = pd.DataFrame({"sentence_id": [f"s{i}" for i in range(23)],
                          "text": [f"{i % 3 + 1} red circles sit on the left, number {i}" for i in range(23)]})
    images = pd.DataFrame({"image_id": [f"i{i}" for i in range(11)], "bytes": [png(i) for i in range(11)]})
    for body, frame, key in ((embed_texts(SPEC, 8, "float32"), texts, "sentence_id"),
                             (embed_images(SPEC, 4, "float32"), images, "image_id")):
        runs = []
        for cuts in ([], [1], [5, 6, 13]):       # where Spark's batches end
            edges = [0, *[c for c in cuts if c < len(frame)], len(frame)]
            out = pd.concat(body(iter(frame.iloc[a:b] for a, b in zip(edges, edges[1:]))))
            runs.append(dict(zip(out[key], out["embedding"])))
        assert runs[0] == runs[1] == runs[2], key
        assert len(runs[0]) == len(frame) and all(v is not None for v in runs[0].values())

"""Text-to-image: feature extractors (FID Inception, CLIP embedders), the diffusers and image-folder
generators, the text-to-image task end to end, its aggregator, `mmbench score fid`, the corruption ladder
and the mini generator. Everything is built from configs in temp folders; nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import tiny_models
from mmbench.adapters import load_model
from mmbench.capabilities import ImageGenerationConfig, ImageRequest
from mmbench.cli.main import main
from mmbench.errors import MMBenchError
from mmbench.adapters.extractors import load_extractor, load_need
from mmbench.tasks.base import RunContext
from mmbench.features import (CORRUPTIONS, EmbedderFeatures, FeatureExtractor, InceptionFeatures, build_fid_inception,
                              corrupt, corruption_ladder)
from mmbench.metrics import image_generation as ig
from mmbench.metrics.base import subset
from mmbench.mini.train import diffusion as md
from mmbench.mini import shapes
from mmbench.results import RunResult
from mmbench.specs import ModelSpec, TaskSpec
from mmbench.store import unpack_stats
from mmbench.tasks.base import TaskContext
from mmbench.tasks.catalog import TaskCatalog, build_task
from mmbench.seeding import item_seed
from mmbench.tasks.text_to_image import TextToImage

MINI_CLIP = Path(__file__).resolve().parent.parent / "mmbench" / "mini" / "models" / "mini-clip"
MINI_DIFFUSION = Path(__file__).resolve().parent.parent / "mmbench" / "mini" / "models" / "mini-diffusion"


# ------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def mini_pipe(tmp_path_factory) -> Path:
    """A random-weight mini generator (small UNet) saved exactly as the shipped one is."""
    torch.manual_seed(0)
    recipe = md.Recipe(block_out_channels=(16, 32), attention_at_lowest=False)
    folder = tmp_path_factory.mktemp("mini-pipe") / "pipe"
    md.save(md.MiniShapesDiffusionPipeline(md.build_unet(recipe).eval(), md.build_scheduler()), folder)
    return folder


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory) -> Path:
    """A tiny random Stable Diffusion pipeline (UNet2DCondition + VAE + CLIP text encoder) from configs."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    tok = tiny_models.word_tokenizer()
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(8, 16), norm_num_groups=4,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16,
                                attention_head_dim=4)
    vae = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(8, 16), latent_channels=4,
                        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
                        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), norm_num_groups=4, sample_size=16)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, max_position_embeddings=16, bos_token_id=2,
                                        eos_token_id=3, pad_token_id=0))
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet,
                                   scheduler=DDIMScheduler(clip_sample=False, steps_offset=1), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    folder = tmp_path_factory.mktemp("tiny-sd") / "sd"
    pipe.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def clip_name(tiny_clip) -> str:
    return f"clip:{tiny_clip}"


def _requests(prompts, seeds):
    return [ImageRequest(f"i{k}", p, s) for k, (p, s) in enumerate(zip(prompts, seeds))]


def _generate(model, prompts, seeds, config):
    prepared = model.prepare_images(_requests(prompts, seeds), config)
    assert prepared.failed == {}
    return [np.asarray(im, dtype=np.int16) for im in model.generate_images(prepared.payload, config)]


class StatsFeatures(FeatureExtractor):
    """A transparent extractor: per-channel means and stds and mean gradient magnitude (7 numbers)."""

    name = variant = "stats"
    dim = 7

    def features(self, images):
        rows = []
        for im in images:
            a = np.asarray(im, dtype=np.float64) / 255.0
            grad = np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean()
            rows.append([*a.mean(axis=(0, 1)), *a.std(axis=(0, 1)), grad])
        return np.asarray(rows, dtype=np.float32)

    def fingerprint(self):
        return "stats"


# ----------------------------------------------------------------------------------- feature extractors


def test_fid_inception_has_the_pytorch_fid_layout():
    net = build_fid_inception()
    # torchvision's Inception-v3 without the aux head and the classifier: 21,785,568 parameters
    assert sum(p.numel() for p in net.parameters()) == 21_785_568
    keys = set(net.state_dict())
    assert {"Conv2d_1a_3x3.conv.weight", "Conv2d_1a_3x3.bn.running_var", "Mixed_5b.branch_pool.conv.weight",
            "Mixed_6e.branch7x7dbl_5.bn.bias", "Mixed_7c.branch3x3dbl_3b.conv.weight"} <= keys
    assert tuple(net.state_dict()["Mixed_6b.branch7x7_2.conv.weight"].shape) == (128, 128, 1, 7)


def test_inception_loads_a_local_weights_file_and_records_it(tmp_path):
    torch.manual_seed(0)
    state = {k: v for k, v in build_fid_inception().state_dict().items() if not k.endswith("num_batches_tracked")}
    state["fc.weight"], state["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)  # the file's classifier
    path = tmp_path / "weights.pth"
    torch.save(state, path)
    ex = load_extractor(f"inception:{path}")
    imgs = [tiny_models.random_image(1, 40), tiny_models.random_image(2, 64)]  # sizes may differ
    f1, f2 = ex.features(imgs), ex.features(imgs[:1])
    assert f1.shape == (2, 2048) and np.isfinite(f1).all() and (f1 >= 0).all()  # pooled after a ReLU
    np.testing.assert_allclose(f1[:1], f2, rtol=1e-5, atol=1e-6)
    d = ex.describe()
    assert d["weights"]["is_pytorch_fid_file"] is False and "(NOT pytorch-fid)" in ex.variant
    assert "align_corners=False, antialias=False" in d["preprocessing"] and d["dim"] == 2048
    # a file of another network is refused, naming the file to use
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(MMBenchError, match="pt_inception-2015-12-05-6726825d.pth"):
        InceptionFeatures(tmp_path / "other.pth")


def test_missing_inception_weights_name_the_download(tmp_path):
    with pytest.raises(MMBenchError, match=r"not found at .*nowhere\.pth.*pytorch-fid/releases.*inception:PATH"):
        load_extractor(f"inception:{tmp_path / 'nowhere.pth'}")


def test_embedder_features_are_the_models_image_embeddings(tiny_clip, clip_name):
    ex = load_extractor(clip_name)
    imgs = [tiny_models.draw("red", "circle"), tiny_models.draw("blue", "square")]
    adapter = load_model(ModelSpec("hf-clip", {"pretrained": str(tiny_clip)}))
    np.testing.assert_allclose(ex.features(imgs), adapter.embed_images(adapter.preprocess_images(imgs)), rtol=1e-6)
    assert isinstance(ex, EmbedderFeatures) and ex.dim == 16
    assert ex.variant.startswith(f"{clip_name}/image-embedding-16")
    assert ex.fingerprint() == load_extractor(str(tiny_clip)).fingerprint()  # clip:NAME == NAME


def test_extractor_names_are_checked():
    with pytest.raises(MMBenchError, match="'mini-diffusion' does not embed images"):
        load_extractor("clip:mini-diffusion")
    with pytest.raises(MMBenchError, match="unknown model"):
        load_extractor("clip:no-such-model")


# ------------------------------------------------------------------------------------ corruption ladder


def test_corruptions_do_what_they_say():
    img = Image.new("RGB", (32, 32), (128, 128, 128))
    noisy = np.asarray(corrupt([img], "noise", 24.0)[0], dtype=np.float64) - 128
    assert abs(noisy.std() - 24.0) < 1.5
    shifted = np.asarray(corrupt([img], "colour-shift", 25.0)[0], dtype=np.int16)
    assert (shifted[..., 0] == 153).all() and (shifted[..., 1] == 128).all() and (shifted[..., 2] == 103).all()
    edge = tiny_models.draw("red", "square", size=32)
    blurred = np.asarray(corrupt([edge], "blur", 2.0)[0], dtype=np.float64)
    assert np.abs(np.diff(blurred, axis=1)).max() < np.abs(np.diff(np.asarray(edge, np.float64), axis=1)).max()
    assert corrupt([img], "noise", 8.0, seed=3)[0].tobytes() == corrupt([img], "noise", 8.0, seed=3)[0].tobytes()
    with pytest.raises(MMBenchError, match="unknown corruption"):
        corrupt([img], "jpeg", 1.0)


def _scenes(n: int) -> list[Image.Image]:
    return [s.image for s in shapes.generate("zeroshot-test", n=n)]


def test_corruption_ladder_is_monotonic_with_transparent_features():
    imgs = _scenes(60)
    ex = StatsFeatures()
    rows = corruption_ladder(ex.features(imgs), imgs, ex)
    assert len(rows) == sum(len(v[1]) + 1 for v in CORRUPTIONS.values())
    for kind in CORRUPTIONS:
        fids = [r["fid"] for r in rows if r["corruption"] == kind]
        assert all(b > a for a, b in zip(fids, fids[1:])), (kind, fids)
        assert all(r["monotonic"] for r in rows if r["corruption"] == kind)


@pytest.mark.skipif(not MINI_CLIP.is_dir(), reason="mini-clip is not shipped yet (mmbench/mini/models/mini-clip)")
def test_corruption_ladder_is_monotonic_with_mini_clip():
    imgs = _scenes(100)
    ex = load_extractor("mini-clip")
    rows = corruption_ladder(ex.features(imgs), imgs, ex)
    bad = {r["corruption"]: [x["fid"] for x in rows if x["corruption"] == r["corruption"]]
           for r in rows if not r["monotonic"]}
    assert not bad, bad


# ----------------------------------------------------------------------------------------- generators


def test_diffusers_adapter_is_deterministic_and_batch_invariant(tiny_sd):
    model = load_model(ModelSpec("diffusers", {"pretrained": str(tiny_sd)}))
    cfg = ImageGenerationConfig(guidance_scale=3.0, num_inference_steps=3)
    prompts, seeds = ["a red circle", "a blue square", "a red circle"], [11, 12, 13]
    batch = _generate(model, prompts, seeds, cfg)
    again = _generate(model, prompts, seeds, cfg)
    singles = [_generate(model, [p], [s], cfg)[0] for p, s in zip(prompts, seeds)]
    assert batch[0].shape == (16, 16, 3)
    assert all((a == b).all() for a, b in zip(batch, again))
    assert all(np.abs(a - b).max() <= 1 for a, b in zip(batch, singles))  # float noise at most 1 level
    assert np.abs(batch[0] - batch[2]).max() > 5  # same prompt, other seed: another image
    neg = _generate(model, prompts[:1], seeds[:1], ImageGenerationConfig(3.0, 3, negative_prompt="a blue square"))
    assert np.abs(neg[0] - batch[0]).max() > 0
    info = model.describe()
    assert info["pipeline_class"] == "StableDiffusionPipeline" and info["scheduler"]["class"] == "DDIMScheduler"
    swapped = load_model(ModelSpec("diffusers", {"pretrained": str(tiny_sd), "scheduler": "DDPMScheduler"}))
    assert swapped.describe()["scheduler"]["class"] == "DDPMScheduler" and swapped.fingerprint() != model.fingerprint()
    with pytest.raises(MMBenchError, match="not a diffusers scheduler"):
        load_model(ModelSpec("diffusers", {"pretrained": str(tiny_sd), "scheduler": "NoScheduler"}))


def test_diffusers_adapter_loads_the_mini_pipeline_class_from_model_index(mini_pipe):
    model = load_model(ModelSpec("diffusers", {"pretrained": str(mini_pipe)}))
    assert type(model.pipe).__name__ == "MiniShapesDiffusionPipeline" and model.pipe.unet.dtype == torch.float32
    assert model.pipe.class_ids(["a red circle.", "an orange square", "a big green cross", "a cat", None]) == \
        [0, 26, 9, md.NULL_CLASS, md.NULL_CLASS]
    cfg = ImageGenerationConfig(guidance_scale=2.0, num_inference_steps=2)
    a = _generate(model, ["a red circle", "a blue cross"], [1, 2], cfg)
    b = [_generate(model, [p], [s], cfg)[0] for p, s in (("a red circle", 1), ("a blue cross", 2))]
    assert a[0].shape == (32, 32, 3) and all(np.abs(x - y).max() <= 1 for x, y in zip(a, b))
    with pytest.raises(MMBenchError, match="rejects the generation settings .*32x32 images only"):
        model.generate_images(_requests(["a red circle"], [1]), ImageGenerationConfig(height=64, width=64))
    (mini_pipe.parent / "bad").mkdir(exist_ok=True)
    (mini_pipe.parent / "bad" / "model_index.json").write_text('{"_class_name": "NoSuchPipeline"}')
    with pytest.raises(MMBenchError, match="NoSuchPipeline.*pipeline_class"):
        load_model(ModelSpec("diffusers", {"pretrained": str(mini_pipe.parent / "bad")}))


def _image_folder(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    tiny_models.draw("red", "circle").save(root / "a.png")
    tiny_models.draw("blue", "square").save(root / "b.png")
    lines = [{"id": "x1", "prompt": "a red circle", "image": "a.png"},
             {"id": "x2", "prompt": "a blue square", "image": "b.png"},
             {"id": "x3", "prompt": "a green triangle", "image": "missing.png"}]
    (root / "prompts.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return root


def test_image_folder_matches_by_id_then_by_unique_prompt(tmp_path):
    model = load_model(ModelSpec("image-folder", {"folder": str(_image_folder(tmp_path / "gen"))}))
    reqs = [ImageRequest("x2", "whatever", 0), ImageRequest("other", "a red circle", 0),
            ImageRequest("x3", "a green triangle", 0), ImageRequest("nope", "a purple cross", 0)]
    prepared = model.prepare_images(reqs, ImageGenerationConfig())
    assert set(prepared.failed) == {"x3", "nope"}
    assert "missing.png: file not found" in prepared.failed["x3"] and "no line has" in prepared.failed["nope"]
    imgs = model.generate_images(prepared.payload, ImageGenerationConfig())
    assert [im.getpixel((24, 24)) for im in imgs] == [tiny_models.COLOURS["blue"], tiny_models.COLOURS["red"]]


def test_image_folder_manifest_errors(tmp_path):
    with pytest.raises(MMBenchError, match="no prompts.jsonl"):
        load_model(ModelSpec("image-folder", {"folder": str(tmp_path)}))
    (tmp_path / "prompts.jsonl").write_text('{"id": 1, "prompt": "p", "image": "a.png"}\n'
                                            '{"id": 1, "prompt": "q", "image": "b.png"}\n')
    with pytest.raises(MMBenchError, match="line 2: duplicate id '1'"):
        load_model(ModelSpec("image-folder", {"folder": str(tmp_path)}))
    (tmp_path / "prompts.jsonl").write_text('{"id": 1, "prompt": "p"}\n')
    with pytest.raises(MMBenchError, match="line 1: needs the keys id, prompt and image"):
        load_model(ModelSpec("image-folder", {"folder": str(tmp_path)}))


# ------------------------------------------------------------------------------------- the aggregator


def test_fast_kid_equals_per_subset_kid():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(90, 12)), rng.normal(size=(70, 12)) * 1.3 + 0.2
    slow = ig.kid_subset_values(real, fake, num_subsets=25, subset_size=40, seed=5)
    fast = ig.kid_values_fast(real, fake, num_subsets=25, subset_size=40, seed=5)
    np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=1e-13)


def _stats(n=60, d=8, failed=(3,), seed=0):
    rng = np.random.default_rng(seed)
    real, fake = rng.normal(size=(80, d)), rng.normal(size=(n, d)) + 0.3
    feats = fake.copy()
    feats[list(failed)] = np.nan
    cos = rng.uniform(-0.2, 0.6, size=n)
    cos[list(failed)] = np.nan
    mu, sigma = ig.feature_stats(real)
    return real, fake, cos, {"features": feats, "cosine": cos, ig.CONST_REAL_MU: mu, ig.CONST_REAL_SIGMA: sigma,
                             ig.CONST_REAL_FEATURES: real, ig.CONST_FID_METHOD: np.asarray("eigh"),
                             ig.CONST_KID: np.asarray([10, 30, 7]), ig.CONST_PR_K: np.asarray(3),
                             ig.CONST_CLIP_CONVENTION: np.asarray("clipscore-paper")}


def test_aggregate_recomputes_every_metric_without_the_failed_items():
    real, fake, cos, stats = _stats()
    ok = np.isfinite(cos)
    got = ig.aggregate(stats)
    assert got["fid"] == pytest.approx(ig.fid_from_features(real, fake[ok]).value, rel=1e-12)
    assert got["kid"] == pytest.approx(ig.kid_from_features(real, fake[ok], num_subsets=10, subset_size=30,
                                                            seed=7).value, rel=1e-10)
    pr = ig.precision_recall(real, fake[ok], k=3)
    assert (got["precision"], got["recall"]) == (pr["precision"].value, pr["recall"].value)
    assert got["clip_score"] == pytest.approx(np.mean(2.5 * np.maximum(cos[ok], 0)), rel=1e-12)
    # a bootstrap resample keeps the reference set (const:) and resamples the generated items only
    idx = np.array([0, 0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 59] * 4)
    sub = subset(stats, idx)
    keep = idx[np.isfinite(cos[idx])]
    assert sub[ig.CONST_REAL_FEATURES] is not None and sub[ig.CONST_REAL_FEATURES].shape == (80, 8)
    assert ig.aggregate(sub)["fid"] == pytest.approx(ig.fid_from_features(real, fake[keep]).value, rel=1e-12)


# ------------------------------------------------------------------------------------------- the task


def _task_yaml(folder: Path, name: str, clip: str, kid_subset_size: int = 10, **extra) -> Path:
    cfg = {"task": name, "kind": "text-to-image", "data": {"format": "mini-shapes", "split": "zeroshot-test", "n": 40},
           "prompt": "{article} {class_name}", "reference_split": "alternate", "guidance_scale": 2.0,
           "num_inference_steps": 2, "features": clip, "clip_model": clip.removeprefix("clip:"),
           "metrics": ["fid", {"name": "kid", "subsets": 5, "subset_size": kid_subset_size}, "clip_score",
                       "precision_recall"], "save_images": False, **extra}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(json.dumps(cfg))  # JSON is YAML
    return path


def _run(capsys, model_args: str, task: Path, out: Path, *extra, model="diffusers") -> tuple[RunResult, Path]:
    code = main(["run", "--model", model, "--model-args", model_args, "--tasks", str(task), "--output-dir",
                 str(out), "--no-progress", *extra])
    _, err = capsys.readouterr()
    assert code == 0, err
    run_dir = sorted(p for p in out.iterdir() if p.is_dir())[-1]
    return RunResult.read(run_dir), run_dir


def test_text_to_image_end_to_end(capsys, mini_pipe, tiny_clip, clip_name, tmp_path):
    task = _task_yaml(tmp_path / "tasks", "t2i", clip_name)
    run, run_dir = _run(capsys, f"pretrained={mini_pipe}", task, tmp_path / "out", "--batch-size", "7")
    res = run.results[0]
    values = {m["name"]: m["value"] for m in res.metrics}
    assert set(values) == {"fid", "kid", "clip_score", "precision", "recall"} and res.n_items == 20
    assert res.aggregator == "fid+kid+clip_score+precision_recall" and values["fid"] > 0
    variants = {m["name"]: m["variant"] for m in res.metrics}
    assert variants["fid"].endswith(f"features={clip_name}/image-embedding-16/weights=" +
                                    res.task_info["features"]["model"]["weights_fingerprint"][:8])
    assert variants["clip_score"].startswith("clip_score/torchmetrics/max(mean(100*cos),0)")
    assert any("20 generated images vs 20 reference images" in n for n in res.notes)
    assert any("FID is biased upward at small n" in n for n in res.notes)
    info = res.task_info
    assert info["reference"]["n_images"] == 20 and info["generation"]["guidance_scale"] == 2.0
    assert "not normalised" in info["features"]["preprocessing"] and next(m for m in info["metrics"] if m["name"] == "kid")["subset_size"] == 10
    # the stored item statistics recompute every reported value (the leaderboard's bootstrap input)
    ids, stats = unpack_stats((run_dir / res.files["item_stats"]).read_bytes())
    assert len(ids) == 20 and stats["features"].shape == (20, 16) and stats[ig.CONST_REAL_FEATURES].shape == (20, 16)
    again = ig.aggregate(stats)
    assert all(again[k] == pytest.approx(v, rel=1e-9, abs=1e-12) for k, v in values.items())
    # CLIP cosines by hand: the image's and the prompt's embeddings from the same model
    samples = [json.loads(x) for x in (run_dir / res.files["samples"]).read_text().splitlines()]
    assert samples[0]["prompt"] == "a red circle" and samples[1]["prompt"] == "a red triangle"
    assert samples[0]["seed"] == item_seed(0, samples[0]["id"])
    # seeds come from the run seed: another --seed gives other images (and no cache hit)
    run2, _ = _run(capsys, f"pretrained={mini_pipe}", task, tmp_path / "out", "--seed", "1")
    assert run2.results[0].n_cached == 0 and run2.results[0].metrics[0]["value"] != values["fid"]
    run3, _ = _run(capsys, f"pretrained={mini_pipe}", task, tmp_path / "out", "--batch-size", "20")
    assert run3.results[0].n_cached == 20
    assert {m["name"]: m["value"] for m in run3.results[0].metrics} == values


def test_task_clip_cosines_match_hand_computed(mini_pipe, tiny_clip, clip_name, tmp_path):
    spec = TaskSpec("t", "text-to-image", {"data": {"format": "mini-shapes", "split": "zeroshot-test", "n": 8},
                                           "prompt": "{article} {class_name}", "num_inference_steps": 2,
                                           "features": clip_name, "clip_model": str(tiny_clip),
                                           "metrics": ["fid", {"name": "kid", "subsets": 3, "subset_size": 4},
                                                       "clip_score"], "save_images": True})
    task = TextToImage(spec, TaskContext(seed=3))
    model = load_model(ModelSpec("diffusers", {"pretrained": str(mini_pipe)}))
    memo_calls = []
    # the models the task needs come from whoever runs it (the runner: once per run, on its device)
    models = {role: load_need(need) for role, need in task.needs().items()}
    assert set(models) == {"features"}  # clip:<folder> and <folder>: one model, its embedder serves CLIP-score
    task.setup(model, RunContext(memo=lambda key, fn: memo_calls.append(key) or fn(), models=models))
    assert memo_calls and memo_calls[0].startswith("reference-features:")
    items = task.items()
    outputs = task.predict(model, task.prepare(model, items))
    report = task.score(items, outputs)
    clip = load_model(ModelSpec(str(tiny_clip)))
    imgs = [Image.open(__import__("io").BytesIO(report.artifacts[s["image"]])) for s in report.samples.values()]
    a = clip.embed_images(clip.preprocess_images(imgs))
    t = clip.embed_texts([task.prompt(it) for it in items])
    cos = (a * t).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(t, axis=1)
    np.testing.assert_allclose(report.stats["cosine"], cos, rtol=1e-5, atol=1e-6)
    clip_value = next(m for m in report.metrics if m.name == "clip_score").value
    assert clip_value == pytest.approx(max(100 * cos.mean(), 0), rel=1e-5)
    manifest = report.artifacts["prompts.jsonl"].decode().splitlines()
    assert len(manifest) == 8 and json.loads(manifest[0])["prompt"] == "a red circle"
    assert report.artifacts["fake_features.npy"].shape == (8, 16)
    fid = next(m for m in report.metrics if m.name == "fid").value
    assert ig.fid_from_features(report.artifacts["real_features.npy"], report.artifacts["fake_features.npy"]).value \
        == pytest.approx(fid, rel=1e-12)


def test_images_saved_by_a_run_score_the_same_through_image_folder(capsys, mini_pipe, clip_name, tmp_path):
    spec = TaskSpec("t", "text-to-image", {"data": {"format": "mini-shapes", "split": "zeroshot-test", "n": 12},
                                           "prompt": "{article} {class_name}", "num_inference_steps": 2,
                                           "reference_split": "alternate", "features": clip_name,
                                           "clip_model": None,
                                           "metrics": ["fid", {"name": "kid", "subsets": 3, "subset_size": 4}]})
    scores = {}
    for name, args in (("diffusers", {"pretrained": str(mini_pipe)}), ("image-folder", {"folder": str(tmp_path)})):
        task = TextToImage(spec, TaskContext())
        model = load_model(ModelSpec(name, args))
        task.setup(model, RunContext(models={r: load_need(n) for r, n in task.needs().items()}))
        batch = task.prepare(model, task.items())
        report = task.score(task.items(), task.predict(model, batch))
        scores[name] = {m.name: m.value for m in report.metrics}
        if name == "diffusers":
            for file, data in report.artifacts.items():
                (tmp_path / file).write_bytes(data if isinstance(data, bytes) else b"")
    assert scores["diffusers"] == scores["image-folder"] and set(scores["diffusers"]) == {"fid", "kid"}


def test_missing_generated_image_is_a_failed_item(capsys, tiny_clip, clip_name, tmp_path):
    folder = tmp_path / "gen"
    folder.mkdir()
    scenes = shapes.generate("zeroshot-test", n=12)
    lines = []
    for s in scenes[0::2][:5]:  # 5 of the 6 prompt items have an image
        s.image.save(folder / f"{s.id}.png")
        lines.append(json.dumps({"id": s.id, "prompt": "x", "image": f"{s.id}.png"}))
    (folder / "prompts.jsonl").write_text("\n".join(lines) + "\n")
    task = _task_yaml(tmp_path / "tasks", "t2i-folder", clip_name,
                      data={"format": "mini-shapes", "split": "zeroshot-test", "n": 12}, kid_subset_size=4)
    run, _ = _run(capsys, f"folder={folder}", task, tmp_path / "out", model="image-folder")
    res = run.results[0]
    assert res.n_items == 6 and res.n_failed == 1
    assert any("1 item(s) failed" in n and "no line with id" in n for n in res.notes)
    assert any("1 failed item(s) are left out" in n for n in res.notes)
    assert next(m for m in res.metrics if m["name"] == "fid")["extra"]["n_fake"] == 5


def test_kid_subset_larger_than_the_sample_is_a_clear_error(capsys, mini_pipe, clip_name, tmp_path):
    task = _task_yaml(tmp_path / "tasks", "t2i-kid", clip_name, kid_subset_size=50)
    code = main(["run", "--model", "diffusers", "--model-args", f"pretrained={mini_pipe}", "--tasks", str(task),
                 "--output-dir", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "subset_size 50 exceeds the sample count (20 prompts, 20 reference images)" in err
    # under --limit the user asked for a small subset: KID is unavailable with its reason, FID still comes out
    code = main(["run", "--model", "diffusers", "--model-args", f"pretrained={mini_pipe}", "--tasks", str(task),
                 "--output-dir", str(tmp_path / "out"), "--no-progress", "--limit", "6"])
    assert code == 0, capsys.readouterr().err
    run = RunResult.read(sorted(p for p in (tmp_path / "out").iterdir() if p.is_dir())[-1])
    metrics = {m["name"]: m for m in run.results[0].metrics}
    assert metrics["kid"]["value"] is None and "subset_size 50 exceeds the 6 generated images" in metrics["kid"]["unavailable"]
    assert metrics["fid"]["value"] is not None and run.command[1:4] == ["run", "--model", "diffusers"]


def test_item_seeds_are_stable_and_distinct():
    import hashlib

    documented = int.from_bytes(hashlib.sha256(b"7/item-1").digest()[:4], "big") & 0x7FFFFFFF
    assert item_seed(7, "item-1") == item_seed(7, "item-1") == documented
    assert len({item_seed(s, i) for s in range(3) for i in "abcdef"}) == 18


def test_shipped_generation_task_files_parse():
    catalog = TaskCatalog()
    names = [n for n in catalog.task_names() if n.startswith("mini-generation")]
    assert "mini-generation" in names and len(names) >= 3
    curves = []
    for name in names:
        task = build_task(catalog.task_spec(name), TaskContext())
        assert isinstance(task, TextToImage) and task.config.reference_split == "alternate"
        kid = next(m for m in task.metrics if m.name == "kid")
        assert kid.options.subset_size <= len(task.items())
        assert task.config.curve["name"] == "guidance sweep"
        curves.append(task.config.curve["x"])
        assert task.config.curve["x"] == task.config.guidance_scale
    assert len(set(curves)) == len(curves)


# ----------------------------------------------------------------------------------------- score fid


def test_score_fid_from_feature_files_matches_the_metric(capsys, tmp_path):
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(50, 6)), rng.normal(size=(40, 6)) + 0.5
    np.save(tmp_path / "r.npy", real)
    np.save(tmp_path / "f.npy", fake)
    assert main(["score", "fid", "--real-features", str(tmp_path / "r.npy"), "--fake-features",
                 str(tmp_path / "f.npy"), "--features-name", "my-net"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["metrics"]["fid"] == pytest.approx(ig.fid_from_features(real, fake).value, rel=1e-12)
    kid = ig.kid_from_features(real, fake, subset_size=40)
    assert out["metrics"]["kid"] == pytest.approx(kid.value, rel=1e-12) and out["kid_std"] == kid.extra["std"]
    assert out["variants"]["fid"].endswith("features=my-net") and "subsets=100x40" in out["variants"]["kid"]
    assert out["n_real"] == 50 and out["warnings"]
    code = main(["score", "fid", "--real-features", str(tmp_path / "r.npy"), "--fake-features",
                 str(tmp_path / "f.npy"), "--kid-subset-size", "45"])
    assert code == 2 and "KID subset size 45 exceeds the sample count" in capsys.readouterr().err


def test_score_fid_from_folders_and_the_ladder(capsys, clip_name, tmp_path):
    for i, s in enumerate(shapes.generate("zeroshot-test", n=16)):
        (tmp_path / ("real" if i % 2 else "fake")).mkdir(exist_ok=True)
        s.image.save(tmp_path / ("real" if i % 2 else "fake") / f"{i}.png")
    assert main(["score", "fid", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"),
                 "--features", clip_name]) == 0
    out = json.loads(capsys.readouterr().out)
    ex = load_extractor(clip_name)
    load = lambda d: [Image.open(p).convert("RGB") for p in sorted((tmp_path / d).glob("*.png"))]  # noqa: E731
    assert out["metrics"]["fid"] == pytest.approx(
        ig.fid_from_features(ex.features(load("real")), ex.features(load("fake"))).value, rel=1e-9)
    assert out["features"]["dim"] == 16 and "not normalised" in out["features"]["preprocessing"]
    assert main(["score", "fid", "--real", str(tmp_path / "real"), "--ladder", "--features", clip_name]) == 0
    ladder = json.loads(capsys.readouterr().out)
    assert set(ladder["monotonic"]) == set(CORRUPTIONS) and len(ladder["ladder"]) == 15
    assert main(["score", "fid", "--real", str(tmp_path / "real")]) == 2
    assert "pass --real DIR and --fake DIR" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ mini generator


def test_mini_generator_training_loop_runs_and_saves_small(tmp_path):
    recipe = md.Recipe(steps=3, batch_size=4, n_train_images=8, block_out_channels=(8, 16), attention_at_lowest=False,
                       warmup=1)
    pipe, facts = md.train(recipe, log_every=2)
    assert [e["step"] for e in facts["log"]] == [2, 3] and all(np.isfinite(e["loss"]) for e in facts["log"])
    md.save(pipe, tmp_path / "p")
    from safetensors.torch import load_file
    weights = load_file(tmp_path / "p" / "unet" / "diffusion_pytorch_model.safetensors")
    assert all(v.dtype == torch.float16 for v in weights.values() if v.is_floating_point())
    x, y = md.training_images(6)
    assert x.shape == (6, 3, 32, 32) and -1 <= x.min() and x.max() <= 1 and y.max() < md.NULL_CLASS


def test_mini_pipeline_sampler_recovers_the_image_from_an_exact_model():
    """With a model that returns the true v for known clean images, guided DDIM must land on those images."""
    from types import SimpleNamespace

    sched = md.build_scheduler()
    x0s, _ = md.training_images(2)

    class Oracle(torch.nn.Module):
        config = SimpleNamespace(sample_size=32, in_channels=3)
        device, dtype = torch.device("cpu"), torch.float32

        def forward(self, x, t, class_labels=None):
            ab = sched.alphas_cumprod[int(t)]
            x0 = x0s.repeat(x.shape[0] // len(x0s), 1, 1, 1)  # the CFG batch is [uncond; cond]
            eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
            return SimpleNamespace(sample=ab.sqrt() * eps - (1 - ab).sqrt() * x0)

    pipe = md.MiniShapesDiffusionPipeline(Oracle(), sched)
    want = ((x0s + 1) * 127.5).round().permute(0, 2, 3, 1).numpy()
    for g in (1.0, 3.0):
        gens = [torch.Generator().manual_seed(i) for i in range(2)]
        got = pipe(["a red circle", "a blue cross"], guidance_scale=g, num_inference_steps=4, generator=gens,
                   output_type="np").images
        assert np.abs(got.astype(np.float64) - want).max() == 0.0


def test_colour_accuracy_heuristic_on_real_scenes():
    scenes = shapes.generate("zeroshot-test", n=60)
    prompts = [f"a {s.label}" for s in scenes]
    assert md.colour_accuracy([s.image for s in scenes], prompts) == 1.0
    small = [s.image.resize((32, 32), Image.Resampling.BOX) for s in scenes]
    assert md.colour_accuracy(small, prompts) == 1.0
    assert md.colour_accuracy(small, prompts[5:] + prompts[:5]) == 0.0  # the next colour: all wrong
    assert md.colour_accuracy([Image.new("RGB", (32, 32), (200, 200, 200))], ["a red circle"]) == 0.0


@pytest.mark.skipif(not MINI_DIFFUSION.is_dir(), reason="mini-diffusion is not trained yet")
def test_shipped_mini_diffusion_draws_the_named_colour():
    model = load_model(ModelSpec("mini-diffusion"))
    prompts = [f"a {c}" for c in md.CLASS_NAMES]
    for g, least in ((1.0, 0.6), (4.0, 0.9)):
        cfg = ImageGenerationConfig(guidance_scale=g, num_inference_steps=8)
        imgs = model.generate_images(model.prepare_images(_requests(prompts, range(30)), cfg).payload, cfg)
        assert md.colour_accuracy(imgs, prompts) >= least, g

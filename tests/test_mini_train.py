"""The mini model zoo: smoke training (--quick), determinism, and the shipped models (load offline, reproduce
their cards' subset scores, batch-size-invariant greedy generation, size budget)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import (AutoProcessor, AutoTokenizer, Blip2ForConditionalGeneration, CLIPModel, CLIPProcessor,
                          IdeficsForVisionText2Text, LlamaForCausalLM, LlavaForConditionalGeneration)

from mmbench.errors import MMBenchError
from mmbench.mini import prompts, shapes
from mmbench.mini.train import blip2, cards, driver, evaluate, vlm
from mmbench.mini.train import clip as clip_train

SHIPPED = driver.SHIPPED
VLMS = {"mini-llava": LlavaForConditionalGeneration, "mini-flamingo": IdeficsForVisionText2Text,
        "mini-blip2": Blip2ForConditionalGeneration, "mini-llava-blind": LlavaForConditionalGeneration}


@pytest.fixture(scope="module")
def quick_zoo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("zoo")
    with pytest.MonkeyPatch.context() as mp:  # mini-video's evaluation writes mini-motion clips to the cache
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        assert driver.main(["--quick", "--output", str(out), "--seed", "3"]) == 0
    return out


def test_quick_training_writes_loadable_models(quick_zoo):
    for name in driver.MODELS:
        card = cards.read_card(quick_zoo / name)
        assert card["name"] == name and card["training"]["steps"] == 2 and card["training"]["seed"] == 3
        assert (quick_zoo / name / "README.md").read_text().startswith(f"# {name}")
    assert "mini-flamingo" in (quick_zoo / "MODELS.md").read_text()
    clip = CLIPModel.from_pretrained(quick_zoo / "mini-clip")
    assert clip.config.text_config.eos_token_id == AutoTokenizer.from_pretrained(quick_zoo / "mini-clip").eos_token_id
    LlamaForCausalLM.from_pretrained(quick_zoo / "mini-lm")
    scene = shapes.generate("val", n=1)[0]
    for name, cls in VLMS.items():
        model = cls.from_pretrained(quick_zoo / name)
        processor = AutoProcessor.from_pretrained(quick_zoo / name)
        out = evaluate.generate(model, processor, [scene.image], [prompts.CAPTION_PROMPT], 3)
        assert len(out) == 1 and isinstance(out[0], str)
        # Weights are stored in float16 but load as float32.
        assert model.dtype == torch.float32
        assert {t.dtype for t in load_file(quick_zoo / name / "model.safetensors").values()} == {torch.float16}


def test_bridges_start_from_the_same_weights_and_freeze_vision(quick_zoo):
    llava = LlavaForConditionalGeneration.from_pretrained(quick_zoo / "mini-llava")
    flamingo = IdeficsForVisionText2Text.from_pretrained(quick_zoo / "mini-flamingo")
    clip = CLIPModel.from_pretrained(quick_zoo / "mini-clip")
    ref = clip.vision_model.state_dict()
    got = llava.model.vision_tower.state_dict()
    assert got.keys() == ref.keys() and all(torch.equal(got[k], v) for k, v in ref.items())  # frozen
    # Idefics's tower is mini-clip's without its last layer (both bridges read the penultimate layer's tokens).
    got = flamingo.model.vision_model.state_dict()
    last = f"encoder.layers.{clip.config.vision_config.num_hidden_layers - 1}."
    assert got.keys() == {k for k in ref if not k.startswith(last)}
    assert all(torch.equal(got[k], ref[k]) for k in got)
    assert llava.config.vision_feature_layer == -2
    px = torch.randn(2, 3, shapes.IMAGE_SIZE, shapes.IMAGE_SIZE)
    with torch.no_grad():
        a = llava.model.vision_tower(px, output_hidden_states=True).hidden_states[-2]
        b = flamingo.model.vision_model(px).last_hidden_state
    assert torch.allclose(a, b, atol=1e-5)  # the very same features reach both bridges
    assert cards.read_card(quick_zoo / "mini-llava")["training"]["data"] == \
        cards.read_card(quick_zoo / "mini-flamingo")["training"]["data"] == \
        cards.read_card(quick_zoo / "mini-blip2")["training"]["data"]


def test_blip2_bridge_starts_from_the_shared_weights_and_a_frozen_distilled_tower(quick_zoo):
    """mini-blip2's tower cannot hold mini-clip's weights (BLIP-2 has no pre-LayerNorm): it is distilled from them,
    deterministically, and frozen; the LM side starts where the other bridges' does (same tokens, same ids)."""
    model = Blip2ForConditionalGeneration.from_pretrained(quick_zoo / "mini-blip2")
    clip = CLIPModel.from_pretrained(quick_zoo / "mini-clip")
    card = cards.read_card(quick_zoo / "mini-blip2")
    pixels = vlm.pool_pixels(shapes.generate("train", 3, driver.QUICK.bridge.pool_scenes), blind=False, seed=3)
    tower, record = blip2.distill_tower(clip, pixels, driver.QUICK.blip2, 3)
    assert record == card["vision_distillation"] | {"seconds": record["seconds"], "cpu_seconds": record["cpu_seconds"]}
    got, ref = model.vision_model.state_dict(), tower.state_dict()
    assert got.keys() == ref.keys() and all(torch.equal(got[k], v) for k, v in ref.items())  # frozen
    assert model.vision_model.config.num_hidden_layers == clip.config.vision_config.num_hidden_layers - 1
    assert record["folded"]["cos_mean"] > record["copied"]["cos_mean"]  # folding the pre-LayerNorm's affine part
    # The Q-Former reads the tower's normalised tokens (post-LayerNorm weight 1, bias 0).
    assert torch.equal(model.vision_model.post_layernorm.weight, torch.ones(clip.config.vision_config.hidden_size))
    assert not model.vision_model.post_layernorm.bias.any()
    llava = AutoTokenizer.from_pretrained(quick_zoo / "mini-llava")
    mine = AutoTokenizer.from_pretrained(quick_zoo / "mini-blip2")
    assert mine.get_vocab() == llava.get_vocab()
    assert model.config.text_config.vocab_size == LlavaForConditionalGeneration.from_pretrained(
        quick_zoo / "mini-llava").config.text_config.vocab_size
    assert model.config.num_query_tokens == driver.QUICK.blip2.n_queries
    assert model.config.qformer_config.cross_attention_frequency == 1


def test_blip2_training_inputs_are_what_the_processor_builds():
    """The training encoder and the hf-blip2 adapter's rendering + Blip2Processor give the same tokens."""
    from mmbench.adapters.hf_vlm_prompts import pads_first
    from mmbench.mini.train import tokenizer as tok_lib

    words = tok_lib.vlm_vocabulary(tok_lib.vocabulary())
    tokenizer = blip2.build_tokenizer(words)
    processor = blip2.Blip2Processor(image_processor=clip_train.image_processor(), tokenizer=tokenizer,
                                     num_query_tokens=4)
    assert {"question", "answer", ":"} <= set(words)  # the prompt format's words: no new embedding rows
    scenes = shapes.generate("vqa-test", n=2)
    user = [prompts.vqa_prompt(scenes[0].questions[0]["question"]), prompts.CAPTION_PROMPT]
    examples = [vlm.Example(0, u, "x") for u in user]
    batch = blip2.encoder(processor)(examples, vlm.normalise(np.stack([np.asarray(s.image) for s in scenes])))
    processor.tokenizer.padding_side = "left"
    ref = pads_first(processor(images=[s.image for s in scenes], text=[evaluate.prompt_text(processor, u)
                                                                       for u in user], return_tensors="pt",
                               padding=True))
    for i in range(2):
        mask = ref["attention_mask"][i].bool()
        prompt_len = int((batch["labels"][i] == -100).sum().item() - (batch["attention_mask"][i] == 0).sum().item())
        assert batch["input_ids"][i, :prompt_len].tolist() == ref["input_ids"][i][mask].tolist()
    assert tokenizer.convert_ids_to_tokens(ref["input_ids"][0][ref["attention_mask"][0].bool()].tolist())[:7] == \
        ["<image>"] * 4 + ["<s>", "question", ":"]
    assert torch.allclose(batch["pixel_values"], ref["pixel_values"], atol=1e-6)


def test_only_needs_its_dependencies(tmp_path):
    with pytest.raises(MMBenchError, match="mini-clip not found"):
        driver.main(["--quick", "--output", str(tmp_path), "--only", "mini-llava"])
    with pytest.raises(MMBenchError, match="unknown model name"):
        driver.main(["--quick", "--output", str(tmp_path), "--only", "mini-gpt"])
    with pytest.raises(MMBenchError, match="mini-llava not found"):
        driver.main(["--quick", "--output", str(tmp_path), "--only", "mini-video"])


def test_fast_pixel_path_equals_the_processors():
    scenes = shapes.generate("val", n=3)
    fast = vlm.normalise(np.stack([np.asarray(s.image) for s in scenes]))
    ref = clip_train.image_processor()(images=[s.image for s in scenes], return_tensors="pt")["pixel_values"]
    assert torch.allclose(fast, ref, atol=1e-6)


# --- the shipped models -----------------------------------------------------------------------------------

def test_shipped_zoo_fits_the_size_budget():
    total = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file())
    assert total <= 25 * 1024 * 1024
    for name in driver.MODELS:
        assert (SHIPPED / name / "model.safetensors").exists() and (SHIPPED / name / "README.md").exists()
        assert cards.read_card(SHIPPED / name)["training"]["steps"] > 100


def test_shipped_models_load_without_network():
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-n", "true"]).returncode != 0:
        pytest.skip("unshare -n (a namespace without network) is not available here")
    code = ("from transformers import AutoProcessor, AutoModel, CLIPModel, LlamaForCausalLM, "
            "LlavaForConditionalGeneration, IdeficsForVisionText2Text, AutoTokenizer\n"
            f"root = {str(SHIPPED)!r}\n"
            "CLIPModel.from_pretrained(root + '/mini-clip'); AutoProcessor.from_pretrained(root + '/mini-clip')\n"
            "LlamaForCausalLM.from_pretrained(root + '/mini-lm'); AutoTokenizer.from_pretrained(root + '/mini-lm')\n"
            "from transformers import Blip2ForConditionalGeneration\n"
            "for n, c in [('mini-llava', LlavaForConditionalGeneration), ('mini-flamingo', IdeficsForVisionText2Text),"
            " ('mini-blip2', Blip2ForConditionalGeneration), ('mini-llava-blind', LlavaForConditionalGeneration)]:\n"
            "    c.from_pretrained(root + '/' + n); AutoProcessor.from_pretrained(root + '/' + n)\n"
            "print('ok')\n")
    res = subprocess.run(["unshare", "-n", sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-2000:]


def test_shipped_clip_reproduces_its_subset_scores():
    card = cards.read_card(SHIPPED / "mini-clip")
    model = CLIPModel.from_pretrained(SHIPPED / "mini-clip")
    processor = CLIPProcessor.from_pretrained(SHIPPED / "mini-clip")
    got = clip_train.evaluate(model, processor, n=card["subset"]["n"])
    for k, v in card["subset"]["scores"].items():
        assert got[k] == pytest.approx(v, abs=1e-4), k
    # Embeddings do not depend on the batch they are computed in.
    imgs = [s.image for s in shapes.generate("val", n=8)]
    one = np.concatenate([clip_train.embed_images(model, processor, [im]) for im in imgs])
    assert np.allclose(one, clip_train.embed_images(model, processor, imgs), atol=1e-5)


@pytest.mark.parametrize("name", list(VLMS))
def test_shipped_vlm_reproduces_subset_scores_and_is_batch_invariant(name):
    card = cards.read_card(SHIPPED / name)
    model = VLMS[name].from_pretrained(SHIPPED / name)
    processor = AutoProcessor.from_pretrained(SHIPPED / name)
    n = card["subset"]["n"]
    got = {"vqa_accuracy": evaluate.vqa_scores(model, processor, n=n)["vqa_accuracy"],
           "cider": evaluate.caption_scores(model, processor, n=n)["cider"]}
    for k, v in card["subset"]["scores"].items():
        assert got[k] == pytest.approx(v, abs=1e-4), k
    scenes = shapes.generate("vqa-test", n=8)
    user = [prompts.vqa_prompt(s.questions[0]["question"]) if i % 2 else prompts.CAPTION_PROMPT
            for i, s in enumerate(scenes)]
    one = [evaluate.generate(model, processor, [s.image], [u], 20)[0] for s, u in zip(scenes, user)]
    eight = evaluate.generate(model, processor, [s.image for s in scenes], user, 20, batch_size=8)
    assert one == eight
    assert all(o for o in one)  # trained models say something


def test_shipped_blip2_tower_reproduces_its_feature_match():
    """The card's measured match of the distilled tower to mini-clip's penultimate features (shipped weights)."""
    card = cards.read_card(SHIPPED / "mini-blip2")
    model = Blip2ForConditionalGeneration.from_pretrained(SHIPPED / "mini-blip2")
    clip = CLIPModel.from_pretrained(SHIPPED / "mini-clip")
    want = card["vision_distillation"]["distilled"]
    assert blip2.feature_match(model.vision_model, clip, want["val_images"]) == pytest.approx(want, abs=2e-5)
    assert want["cos_mean"] > 0.999 and want["cos_min"] > 0.95
    # mini-clip's weights copied alone miss its pre-LayerNorm: far off (the reason for the distillation)
    assert card["vision_distillation"]["copied"]["cos_mean"] < 0.5 < card["vision_distillation"]["folded"]["cos_mean"]


@pytest.mark.parametrize("name", ["mini-flamingo", "mini-blip2"])
def test_shipped_bridge_probe_reproduces_the_card_and_shows_where_blip2_loses_shape(name):
    """The linear probes on the cards come out of the shipped weights; they are the measurement behind
    mini-blip2's note on why it trails: its Q-Former drops the shape its vision tokens carry."""
    from mmbench.mini.train import bridge_probe

    card = cards.read_card(SHIPPED / name)["bridge_probe"]
    got = bridge_probe.measure(VLMS[name].from_pretrained(SHIPPED / name))
    assert got == {k: v for k, v in card.items() if k != "description"}
    assert got["vision features"]["shape"] > 0.75 and got["vision features"]["cell"] == 1.0
    if name == "mini-blip2":  # shape mostly gone (chance 0.2), colour kept, position pooled away
        assert got["bridge output"]["shape"] < 0.45 and got["bridge output"]["colour"] > 0.9
        assert blip2.WHY_IT_TRAILS in cards.read_card(SHIPPED / name)["notes"]
    else:  # the perceiver pools position away too but sharpens shape
        assert got["bridge output"]["shape"] > 0.9 and got["bridge output"]["cell"] < 0.35


def test_blip2_two_stage_experiment_runs_and_keeps_the_stage1_qformer(tmp_path):
    """The experiment behind mini-blip2's note (BLIP-2's stage 1, then the shipped stage 2): a few steps of it
    write a loadable model and its numbers, on the shipped (frozen) vision tower."""
    from safetensors.torch import load_file as load

    from mmbench.mini.train import blip2_stages

    out = tmp_path / "two-stage"
    assert blip2_stages.main(["--out", str(out), "--quick"]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["stage1_steps"] == 3 and len(result["stage1_loss"]) == 3 and not result["stage2_trains_qformer"]
    assert set(result["bridge_probe"]["bridge output"]) == {"shape", "colour", "cell"}
    assert result["stage1_loss"][-1] < result["stage1_loss"][0]  # the contrastive loss goes down from the start
    model = Blip2ForConditionalGeneration.from_pretrained(out)
    shipped = load(SHIPPED / "mini-blip2" / "model.safetensors")
    assert torch.equal(model.vision_model.embeddings.patch_embedding.weight.half(),
                       shipped["vision_model.embeddings.patch_embedding.weight"])  # the shipped tower, frozen


def test_bridge_probe_reads_what_the_features_hold():
    """A feature that is the one-hot class reads perfectly; noise reads at chance."""
    from mmbench.mini.train import bridge_probe

    labels = {"a": [str(i % 3) for i in range(600)]}
    onehot = torch.nn.functional.one_hot(torch.tensor([i % 3 for i in range(600)]), 3).float()
    assert bridge_probe.linear_probe(onehot, labels) == {"a": 1.0}
    noise = torch.randn(600, 50, generator=torch.Generator().manual_seed(0))
    assert bridge_probe.linear_probe(noise, labels)["a"] < 0.45


def test_shipped_blip2_through_the_hf_blip2_adapter_reproduces_its_card(tmp_path, capsys):
    """`mmbench run --model mini-blip2` (the hf-blip2 preset: no chat template, 'Question: {prompt} Answer:',
    Blip2Processor) gives the card's subset VQA accuracy: the first subset-n scenes' questions of mini-vqa."""
    import json

    from mmbench.cli.main import main
    from mmbench.results import RunResult

    card = cards.read_card(SHIPPED / "mini-blip2")
    n_items = sum(len(s.questions) for s in shapes.generate("vqa-test", n=card["subset"]["n"]))
    code = main(["run", "--model", "mini-blip2", "--tasks", "mini-vqa", "--limit", str(n_items), "--output-dir",
                 str(tmp_path), "--no-progress", "--no-cache"])
    assert code == 0, capsys.readouterr().err
    run_dir = next(d for d in tmp_path.iterdir() if (d / "results.json").is_file())
    result = RunResult.read(run_dir).results[0]
    got = {m["name"]: m["value"] for m in result.metrics}["vqa_accuracy"]
    assert result.n_items == n_items and round(got, 4) == card["subset"]["scores"]["vqa_accuracy"]
    sample = json.loads((run_dir / result.files["samples"]).read_text().splitlines()[0])
    assert sample["prompt_sent"].startswith("Question: ") and sample["prompt_sent"].endswith(" Answer:")
    assert result.model_info["chat_template_source"] == "none"


def test_retraining_gives_the_same_bytes_in_a_fresh_process(tmp_path):
    # Different hash seeds: nothing in the recipe may depend on set or dict-of-str iteration order.
    outs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / hash_seed
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        res = subprocess.run([sys.executable, "-m", "mmbench.mini.train", "--quick", "--only", "mini-clip,mini-lm",
                              "--output", str(out)], capture_output=True, text=True, env=env, timeout=600)
        assert res.returncode == 0, res.stderr[-2000:]
        outs.append(out)
    for name in ("mini-clip", "mini-lm"):
        assert (outs[0] / name / "model.safetensors").read_bytes() == (outs[1] / name / "model.safetensors").read_bytes()


def test_mini_check_reproduces_the_cards_and_catches_a_changed_score(tmp_path, capsys):
    """`mmbench mini check` (CI's score-regression gate) compares a run with the cards, digit for digit."""
    import copy

    from mmbench.cli.main import main
    from mmbench.mini.check import card_expectations, check_run
    from mmbench.results import RunResult, TaskResult

    expected = card_expectations("mini-llava")
    assert ("mini-vqa", "vqa_accuracy", "0.6064") in expected and ("mini-captions", "CIDEr-D", "2.1435") in expected
    assert ("mini-mc", "mc_accuracy", "0.5411") in expected and ("mini-pope", "pope_f1[mean over category]", "0.6637") in expected
    gen = card_expectations("mini-diffusion")
    assert ("mini-generation", "fid", "35.081") in gen and len(gen) == 9

    from mmbench.results import PeakMemory, Throughput

    def result(task: str, metrics: dict) -> TaskResult:
        return TaskResult(model="mini-llava", task=task, kind="vqa", n_items=1, n_failed=0, n_cached=0,
                          metrics=[{"name": k, "value": v, "variant": ""} for k, v in metrics.items()],
                          throughput=Throughput(1.0, "", 1.0), wall_time_s=1.0, peak_memory=PeakMemory(1, "x"),
                          model_info={}, task_info={}, model_fingerprint="m", task_fingerprint="t",
                          data_fingerprint="d", aggregator="vqa_accuracy")

    run = RunResult(run_id="r", created_at="t", mmbench_version="x", git_revision=None, command=[], seed=0,
                    options={}, environment={}, results=[result("mini-vqa", {"vqa_accuracy": 0.60639}),
                                                         result("mini-captions", {"CIDEr-D": 2.14349})])
    assert check_run(run) == ([], 2)
    bad = copy.deepcopy(run)
    bad.results[0].metrics[0]["value"] = 0.6054
    problems, compared = check_run(bad)
    assert compared == 2 and problems == ["mini-llava mini-vqa vqa_accuracy: card 0.6064, run 0.6054"]
    # the quality bars are checked on what the run computed (CI: the default run), not on the cards' text
    from mmbench.mini.check import check_bars

    assert check_bars({("mini-llava", "mini-vqa", "vqa_accuracy"): 0.61,
                       ("mini-llava-blind", "mini-vqa", "vqa_accuracy"): 0.45}) == [
        "mini-llava-blind mini-vqa vqa_accuracy 0.45 is not 0.2 below mini-llava's 0.61"]
    assert check_bars({("mini-flamingo", "mini-mc", "mc_accuracy"): 0.5,
                       ("mini-llava-blind", "mini-mc", "mc_accuracy"): 0.4}) == [
        "mini-llava-blind mini-mc mc_accuracy 0.4 is not 0.15 below mini-flamingo's 0.5"]
    assert check_bars({("mini-clip", "mini-zeroshot", "top1"): 0.5}) == [
        "mini-clip mini-zeroshot top1: 0.5 is below the bar 0.85"]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    bad.write(run_dir / "results.json")
    assert main(["mini", "check", str(tmp_path)]) == 1
    assert "MISMATCH mini-llava mini-vqa vqa_accuracy" in capsys.readouterr().out

"""Data loaders on files the tests write: a Hugging Face dataset saved to disk, COCO captions, Karpathy splits,
VQA formats, and the one-line errors for missing or malformed data. Plus a tiny SigLIP through hf-clip."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tiny_models
from mmbench.cli.main import main
from mmbench.data.sources import DataContext, load_coco_captions, load_hf, load_karpathy
from mmbench.data.vqa_sources import load_textvqa, load_vizwiz
from mmbench.errors import DataError
from mmbench.results import RunResult


@pytest.fixture(scope="module")
def hf_dataset(tmp_path_factory):
    import datasets

    root = tmp_path_factory.mktemp("hf")
    combos = [(c, s) for c in tiny_models.COLOURS for s in tiny_models.SHAPES]
    names = [f"{c} {s}" for c, s in combos]
    images = [tiny_models.draw(c, s) for c, s in combos] * 2
    ds = datasets.Dataset.from_dict(
        {"img": images, "label": list(range(len(combos))) * 2,
         "caption": [f"a {c} {s}" for c, s in combos] * 2},
        features=datasets.Features({"img": datasets.Image(), "label": datasets.ClassLabel(names=names),
                                    "caption": datasets.Value("string")}))
    ds.save_to_disk(str(root / "shapes-hf"))
    return root


def test_hf_dataset_from_disk(hf_dataset):
    ctx = DataContext(task="t", data_dir=hf_dataset)
    data = load_hf({"path": "org/not-used", "local": "shapes-hf", "split": "test", "image_column": "img",
                    "label_column": "label", "captions_column": "caption"}, ctx)
    assert len(data.records) == 24 and data.class_names[0] == "red circle"
    assert data.records[5]["label"] == 5 and data.records[5]["captions"] == ["a green triangle"]
    from mmbench.data.images import load_image

    assert load_image(data.records[0]["image"]).size == (48, 48)
    with pytest.raises(DataError, match="column 'nope'.*its columns are"):
        load_hf({"path": "x", "local": "shapes-hf", "image_column": "nope"}, ctx)


def test_hf_zero_shot_end_to_end(capsys, tiny_clip, hf_dataset, tmp_path):
    (tmp_path / "t.yaml").write_text("task: hf-zs\nkind: zeroshot-classification\ndata: {format: hf, path: org/x, "
                                     "local: shapes-hf, split: test, image_column: img, label_column: label}\n")
    code = main(["run", "--model", "hf-clip", "--model-args", f"pretrained={tiny_clip}", "--tasks", "hf-zs",
                 "--include-path", str(tmp_path), "--data-dir", str(hf_dataset), "--output-dir", str(tmp_path / "o"),
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    run = RunResult.read(next(p for p in (tmp_path / "o").iterdir() if p.is_dir()))
    assert run.results[0].n_items == 24 and "HF dataset" in run.results[0].task_info["data"]["description"]


def test_coco_and_karpathy_loaders(tmp_path):
    (tmp_path / "val2014").mkdir()
    for i in (1, 2):
        tiny_models.draw("red", "circle").save(tmp_path / "val2014" / f"COCO_val2014_{i:012d}.jpg", format="PNG")
    (tmp_path / "captions_val2014.json").write_text(json.dumps({
        "images": [{"id": 2, "file_name": "COCO_val2014_000000000002.jpg"},
                   {"id": 1, "file_name": "COCO_val2014_000000000001.jpg"}],
        "annotations": [{"image_id": 1, "id": 10, "caption": "a red circle"},
                        {"image_id": 2, "id": 11, "caption": "a red ball"},
                        {"image_id": 1, "id": 12, "caption": "red round thing"}]}))
    ctx = DataContext(task="t", data_dir=tmp_path)
    coco = load_coco_captions({"annotations": "captions_val2014.json", "images": "val2014"}, ctx)
    assert [r["id"] for r in coco.records] == ["1", "2"]
    assert coco.records[0]["captions"] == ["a red circle", "red round thing"]
    (tmp_path / "dataset_coco.json").write_text(json.dumps({"images": [
        {"filepath": "val2014", "filename": "COCO_val2014_000000000001.jpg", "split": "test", "cocoid": 1,
         "sentences": [{"raw": "A red circle. "}, {"raw": "a red disc"}]},
        {"filepath": "val2014", "filename": "COCO_val2014_000000000002.jpg", "split": "train", "cocoid": 2,
         "sentences": [{"raw": "x"}]}]}))
    kp = load_karpathy({"annotations": "dataset_coco.json", "images": ".", "split": "test"}, ctx)
    assert len(kp.records) == 1 and kp.records[0]["captions"] == ["A red circle.", "a red disc"]
    assert kp.records[0]["image"].exists()
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(DataError, match="broken.json is not valid JSON"):
        load_karpathy({"annotations": "broken.json", "images": "."}, ctx)
    with pytest.raises(DataError, match="not a COCO captions file"):
        load_coco_captions({"annotations": "dataset_coco.json", "images": "val2014"}, ctx)


def test_textvqa_and_vizwiz_loaders(tmp_path):
    (tmp_path / "textvqa.json").write_text(json.dumps({"data": [
        {"question_id": 7, "question": "what does it say?", "image_id": "abc", "answers": ["stop"] * 10}]}))
    (tmp_path / "vizwiz.json").write_text(json.dumps([
        {"image": "VizWiz_val_00000001.jpg", "question": "what is this?", "answer_type": "other",
         "answers": [{"answer": "a can", "answer_confidence": "yes"}] * 10}]))
    ctx = DataContext(task="t", data_dir=tmp_path)
    t = load_textvqa({"annotations": "textvqa.json", "images": "."}, ctx)
    assert t.records[0]["id"] == "7" and t.records[0]["image"].name == "abc.jpg"
    v = load_vizwiz({"annotations": "vizwiz.json", "images": "."}, ctx)
    assert v.records[0]["answers"][0] == "a can" and v.records[0]["answer_type"] == "other"


def test_missing_data_names_the_path_and_the_fix(capsys, tiny_clip, tmp_path):
    code = main(["run", "--model", "hf-clip", "--model-args", f"pretrained={tiny_clip}", "--tasks", "coco-retrieval",
                 "--data-dir", str(tmp_path), "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "dataset_coco.json" in err and "Karpathy" in err and "--data-dir" in err
    assert len(err.strip().splitlines()) == 1


def test_siglip_through_hf_clip(capsys, embed_data, embed_tasks, tmp_path):
    """A SiglipModel loads through the same adapter; its texts are padded to max_length, as it was trained."""
    import torch
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    tok = tiny_models.word_tokenizer()
    torch.manual_seed(0)
    config = SiglipConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=16, pad_token_id=0, eos_token_id=3),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8))
    folder = tmp_path / "siglip"
    SiglipModel(config).save_pretrained(folder)
    SiglipProcessor(image_processor=SiglipImageProcessor(size={"height": 32, "width": 32}),
                    tokenizer=tok).save_pretrained(folder)
    code = main(["run", "--model", str(folder), "--tasks", "tiny-zeroshot", "--include-path", str(embed_tasks),
                 "--data-dir", str(embed_data), "--output-dir", str(tmp_path / "o"), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    result = RunResult.read(next(p for p in (tmp_path / "o").iterdir() if p.is_dir())).results[0]
    assert result.model_info["model_class"] == "SiglipModel" and result.model_info["text_padding"] == "max_length"
    assert result.model == f"hf-clip:{tmp_path.name}/siglip" or result.model.endswith("siglip")
    assert np.isfinite(result.value("top1"))


def test_list_commands(capsys):
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    assert "hf-clip" in out and "image-text-embedding" in out and "openai-chat" in out
    assert main(["list", "tasks"]) == 0 and "cifar10" in capsys.readouterr().out
    assert main(["list", "kinds"]) == 0 and "probe" in capsys.readouterr().out

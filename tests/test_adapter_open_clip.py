"""The open_clip adapter (openclip extra): a tiny custom architecture + local checkpoint, end to end through the
CLI, checked against open_clip called directly on the same images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mmbench.cli.main import main
from mmbench.errors import MMBenchError
from mmbench.results import RunResult

pytestmark = pytest.mark.openclip

TINY = {"embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}


@pytest.fixture(scope="module")
def tiny_open_clip(tmp_path_factory, open_clip_module):
    import torch
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("openclip")
    cfg = root / "mmbench-tiny-oc.json"
    cfg.write_text(json.dumps(TINY))
    open_clip_module.add_model_config(cfg)
    torch.manual_seed(0)
    model = open_clip_module.create_model("mmbench-tiny-oc")
    ckpt = root / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(ckpt))
    return cfg, ckpt


def test_open_clip_end_to_end_matches_direct(open_clip_module, tiny_open_clip, embed_data, embed_tasks, tmp_path,
                                             capsys):
    import torch

    cfg, ckpt = tiny_open_clip
    code = main(["run", "--model", "open-clip", "--model-args",
                 f"model=mmbench-tiny-oc,model_config={cfg},pretrained={ckpt}", "--tasks", "tiny-zeroshot",
                 "--include-path", str(embed_tasks), "--data-dir", str(embed_data), "--output-dir",
                 str(tmp_path), "--no-progress", "--batch-size", "5"])
    assert code == 0, capsys.readouterr().err
    run = RunResult.read(next(p for p in tmp_path.iterdir() if p.is_dir()))
    result = run.results[0]
    assert result.model_info["architecture"] == "mmbench-tiny-oc" and result.n_items == 36

    # the same numbers from open_clip called directly
    from PIL import Image

    model, _, preprocess = open_clip_module.create_model_and_transforms("mmbench-tiny-oc", pretrained=str(ckpt))
    tokenizer = open_clip_module.get_tokenizer("mmbench-tiny-oc")
    model.eval()
    classes = sorted(d.name for d in (embed_data / "shapes").iterdir())
    files = [(f, i) for i, c in enumerate(classes) for f in sorted((embed_data / "shapes" / c).glob("*.png"))]
    with torch.no_grad():
        txt = model.encode_text(tokenizer([t.replace("{c}", c) for c in classes
                                           for t in ("a photo of a {c}.", "a {c}.")])).double()
        txt = torch.nn.functional.normalize(txt, dim=-1).reshape(len(classes), 2, -1).mean(1)
        txt = torch.nn.functional.normalize(txt, dim=-1)
        img = model.encode_image(torch.stack([preprocess(Image.open(f).convert("RGB")) for f, _ in files])).double()
        pred = (torch.nn.functional.normalize(img, dim=-1) @ txt.T).argmax(1).numpy()
    top1 = float(np.mean(pred == np.array([lab for _, lab in files])))
    assert result.value("top1") == pytest.approx(top1, abs=1e-12)


def test_open_clip_bad_args(open_clip_module, tiny_open_clip):
    from mmbench.adapters import load_model
    from mmbench.specs import ModelSpec

    cfg, _ = tiny_open_clip
    with pytest.raises(MMBenchError, match="needs model="):
        load_model(ModelSpec("open-clip", {}))
    with pytest.raises(MMBenchError, match="not found"):
        load_model(ModelSpec("open-clip", {"model": "mmbench-tiny-oc", "model_config": str(cfg),
                                           "pretrained": str(Path(cfg).parent / "missing.pt")}))

"""Tiny random models built from configs into a folder (nothing downloaded), and small generated datasets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (40, 60, 220), "yellow": (230, 210, 40)}
SHAPES = ("circle", "square", "triangle")
WORDS = ["a", "photo", "of", "the", "an", "image", "with", "small", "big", *COLOURS, *SHAPES, "shape", "picture"]


def word_tokenizer(extra_special: tuple[str, ...] = ()):
    """A word-level fast tokenizer over WORDS (trained in milliseconds with `tokenizers`)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, normalizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<s>", "</s>", *extra_special]
    vocab = {tok: i for i, tok in enumerate(specials + sorted(set(WORDS)) + [".", ","])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    from tokenizers.processors import TemplateProcessing
    tok.post_processor = TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 2), ("</s>", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>", model_max_length=16)


def make_tiny_clip(folder: Path, seed: int = 0, image_size: int = 32, *, width: int = 32, heads: int = 2,
                   text_layers: int = 2, vision_layers: int = 2, patch: int = 8, projection: int = 16) -> Path:
    """A random CLIPModel + processor from a config (the benchmarks build larger ones with the same call)."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tokenizer = word_tokenizer()
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=width, intermediate_size=2 * width,
                         num_hidden_layers=text_layers, num_attention_heads=heads, max_position_embeddings=16,
                         bos_token_id=2, eos_token_id=3, pad_token_id=0),
        vision_config=dict(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=vision_layers,
                           num_attention_heads=heads, image_size=image_size, patch_size=patch),
        projection_dim=projection)
    model = CLIPModel(config).eval()
    image_processor = CLIPImageProcessor(size={"shortest_edge": image_size},
                                         crop_size={"height": image_size, "width": image_size})
    processor = CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def draw(colour: str, shape: str, size: int = 48, jitter: int = 0) -> Image.Image:
    img = Image.new("RGB", (size, size), (245, 245, 245))
    d = ImageDraw.Draw(img)
    jitter = jitter % 14  # keep the shape at least 4 px wide
    lo, hi = 8 + jitter, size - 8 - jitter
    if shape == "circle":
        d.ellipse([lo, lo, hi, hi], fill=COLOURS[colour])
    elif shape == "square":
        d.rectangle([lo, lo, hi, hi], fill=COLOURS[colour])
    else:
        d.polygon([(size // 2, lo), (lo, hi), (hi, hi)], fill=COLOURS[colour])
    return img


def make_imagefolder(root: Path, per_class: int = 3) -> list[str]:
    """root/<colour shape>/<n>.png; returns the sorted class names."""
    classes = []
    for colour in COLOURS:
        for shape in SHAPES:
            name = f"{colour} {shape}"
            classes.append(name)
            (root / name).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                draw(colour, shape, jitter=i * 2).save(root / name / f"{i}.png")
    return sorted(classes)


def make_caption_manifest(root: Path, n_images: int = 12, captions: int = 3) -> Path:
    """A JSONL manifest of images with several captions each (for retrieval)."""
    root.mkdir(parents=True, exist_ok=True)
    combos = [(c, s) for c in COLOURS for s in SHAPES]
    lines = []
    for i in range(n_images):
        colour, shape = combos[i % len(combos)]
        draw(colour, shape, jitter=(i // len(combos)) * 3).save(root / f"img{i}.png")
        caps = [f"a {colour} {shape}", f"a photo of a {colour} {shape}", f"the {shape} {colour}",
                f"an image of the {colour} {shape}"][:captions]
        lines.append(json.dumps({"id": f"img{i}", "image": f"img{i}.png", "captions": caps}))
    path = root / "manifest.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def random_image(seed: int, size: int = 40) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))

"""Tiny random image+prompt->text models of five more families (Qwen2-VL, Qwen2.5-VL, InternVL, Gemma 3, Llama 3.2
Vision / Mllama), saved into a folder like the builders in ``tiny_vlms.py``.

Why: these families differ from LLaVA-style models in ways an evaluation harness must get right: a variable number
of image tokens per image (Qwen's dynamic resolution, InternVL's tiles), rope positions that depend on the image
grid (Qwen's M-RoPE), bidirectional attention inside an image (Gemma 3's ``token_type_ids``) and cross-attention
with its own mask (Mllama). Each builder makes the word-level tokenizer of ``tiny_vlms`` with the family's special
tokens (named where the processor reads ``tokenizer.<name>``), the family's processor with a chat template written
in its published prompt layout (images placed where they appear in the message), a model with random weights from
a tiny config, and saves both with ``save_pretrained``; nothing is downloaded. ``_save`` (from ``tiny_vlms``) sets
``min_new_tokens`` and suppresses special tokens but EOS so random models write text.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import tiny_vlms as tv

# First transformers release with each model class. Checked: the "added to Hugging Face Transformers on" date in
# docs/source/en/model_doc/<family>.md of huggingface/transformers (Qwen2-VL 2024-08-26, Qwen2.5-VL 2025-01-23,
# Gemma 3 2025-03-12, InternVL 2025-04-18; Mllama came with Llama 3.2 on 2024-09-25) against PyPI upload dates
# (4.44.2 2024-08-22, 4.45.0 2024-09-25, 4.48.3 2025-02-07, 4.49.0 2025-02-17, 4.50.0 2025-03-21, 4.51.0
# 2025-04-05, 4.51.3 2025-04-14, 4.52.0 2025-05-20). Before 4.52 InternVL was remote code only.
MIN_TRANSFORMERS = {"qwen2_vl": "4.45.0", "qwen2_5_vl": "4.49.0", "internvl": "4.52.0", "gemma3": "4.50.0",
                    "mllama": "4.45.0"}

FAMILY_NOTES = {
    "qwen2_vl": "Qwen2VLImageProcessor resizes each image to a multiple of patch_size*merge_size (here 8*2=16) "
                "with min_pixels <= h*w <= max_pixels; the area sets the token count (h*w/(16*16)). Set them at "
                "load time: AutoProcessor.from_pretrained(p, min_pixels=.., max_pixels=..) (or "
                "size={'shortest_edge': min_pixels, 'longest_edge': max_pixels}); per call min_pixels/max_pixels "
                "are deprecated, use images_kwargs={'size': {...}}. Here min_pixels=1024, max_pixels=4096: "
                "4..16 image tokens. M-RoPE positions come from image_grid_thw (model.model.get_rope_index).",
    "qwen2_5_vl": "Same image processor and kwargs as Qwen2-VL (Qwen2_5_VLProcessor reuses Qwen2VLImageProcessor); "
                  "the vision tower adds window attention (window_size in pixels, fullatt_block_indexes).",
    "internvl": "GotOcr2ImageProcessor: size={'height','width'} = the vision image_size; crop_to_patches, "
                "min_patches, max_patches control tiling (tiles + a thumbnail when >1 tile). NB InternVLProcessor "
                "forces images_kwargs crop_to_patches=True by default (class attribute), so pass "
                "crop_to_patches=False per call for one tile per image. Tokens per image = "
                "image_seq_length * tiles, wrapped in <img> ... </img>. InternVLProcessor also pads LEFT by default.",
    "gemma3": "Gemma3ImageProcessor resizes to a fixed size (no dynamic tiling): every image gives mm_tokens_per_"
              "image <image_soft_token>s between <start_of_image> and <end_of_image>. do_pan_and_scan=True (with "
              "pan_and_scan_min_crop_size, pan_and_scan_max_num_crops, pan_and_scan_min_ratio_to_activate) adds "
              "crops, each a full image sequence. Inputs carry token_type_ids (1 on image tokens) that the model "
              "needs for bidirectional attention inside images. NB processor.image_token_id is the BOI id (one per "
              "image); count soft tokens with tokenizer.image_token_id (= config.image_token_id).",
    "mllama": "MllamaImageProcessor: size={'height','width'} = tile size, max_image_tiles; an image is resized to "
              "the best tile grid (aspect_ratio_ids) and padded to max_image_tiles. The text keeps ONE <|image|> "
              "token per image; the image enters by cross-attention, masked by cross_attention_mask "
              "(batch, seq, images, tiles). Tiles per image: aspect_ratio_mask.sum(-1); each tile is "
              "(image_size/patch_size)^2+1 vision tokens.",
}


def _tokenizer(specials: tuple[str, ...], named: dict[str, str] | None = None, bos: str | None = None,
               words: tuple[str, ...] = ()) -> Any:
    """The word tokenizer of tiny_vlms with ``specials``; ``named`` become ``tokenizer.<name>`` attributes (as the
    processors read them), ``bos`` (one of ``specials``) is added in front like the family's own tokenizer does
    (None: no BOS added, like Qwen), ``words`` extend the vocabulary (role names the template needs)."""
    from tokenizers import processors

    tok = tv.word_tokenizer(specials, template="$A")
    if bos is not None:
        tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", special_tokens=[(bos, tok.convert_tokens_to_ids(bos))])
        tok.bos_token = bos
    if named:
        tok._set_model_specific_special_tokens(named)  # what extra_special_tokens={name: token} does at init
    if words:
        tok.add_tokens(list(words))
    return tok


# Text weights drawn at std 0.3, not the usual 0.02: at 0.02 a random 2-layer LM writes the same words whatever
# the prompt or the image (its last token decides), and tests of prompts, images and batching could not fail.
# Not for Gemma 3, whose tied embeddings are scaled by sqrt(hidden): at 0.3 they swamp everything, 0.02 works.
TEXT_INIT_STD = 0.3


def _text_config(tok: Any, model_type: str, **extra: Any) -> dict:
    return dict(tv.llama_text_config(len(tok)), model_type=model_type, initializer_range=TEXT_INIT_STD) | extra


def _need_torchvision(family: str) -> None:
    """transformers 5 builds these processors only with a video processor, and video processors need
    torchvision (without it even ``AutoProcessor.from_pretrained`` of the real checkpoints fails)."""
    import importlib.util

    if importlib.util.find_spec("torchvision") is None:
        raise ImportError(f"the {family} processor needs torchvision (its mandatory video processor does)")


def _ids(tok: Any, *tokens: str) -> list[int]:
    return [tok.convert_tokens_to_ids(t) for t in tokens]


def _chatml(image_marker: str, default_system: str | None) -> str:
    """ChatML (Qwen2 / InternVL3-hf): images at their place in the content list."""
    system = ("{% if loop.first and m['role'] != 'system' %}{{ '<|im_start|>system\n" + default_system +
              "<|im_end|>\n' }}{% endif %}") if default_system else ""
    return ("{% for m in messages %}" + system + "{{ '<|im_start|>' + m['role'] + '\n' }}"
            "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
            "{% if c['type'] == 'image' %}{{ '" + image_marker + "' }}"
            "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}{{ '<|im_end|>\n' }}"
            "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


QWEN_TEMPLATE = _chatml("<|vision_start|><|image_pad|><|vision_end|>", "You are a helpful assistant.")
INTERNVL_TEMPLATE = _chatml("<IMG_CONTEXT>\n", None)
GEMMA3_TEMPLATE = (
    "{{ bos_token }}{% set ns = namespace(prefix='') %}{% for m in messages %}"
    "{% if m['role'] == 'system' %}{% set ns.prefix = (m['content'] if m['content'] is string "
    "else m['content'] | map(attribute='text') | join(' ')) + '\n\n' %}"
    "{% else %}{{ '<start_of_turn>' + ('model' if m['role'] == 'assistant' else m['role']) + '\n' + ns.prefix }}"
    "{% set ns.prefix = '' %}{% if m['content'] is string %}{{ m['content'] | trim }}{% else %}"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}{{ '<start_of_image>' }}"
    "{% elif c['type'] == 'text' %}{{ c['text'] | trim }}{% endif %}{% endfor %}{% endif %}{{ '<end_of_turn>\n' }}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}")
MLLAMA_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' }}"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}{{ '<|image|>' }}{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")

QWEN_SPECIALS = ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
                 "<|video_pad|>")


def _make_qwen(folder: Path, seed: int, min_new_tokens: int, v25: bool) -> Path:
    import torch
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    _need_torchvision("Qwen2.5-VL" if v25 else "Qwen2-VL")
    tok = _tokenizer(QWEN_SPECIALS)
    start, end, image, video, im_end = _ids(tok, "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
                                            "<|video_pad|>", "<|im_end|>")
    patch, merge = 8, 2
    # head_dim 16: M-RoPE splits its 8 frequencies into (temporal, height, width) sections
    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}
    common = dict(image_token_id=image, video_token_id=video, vision_start_token_id=start, vision_end_token_id=end)
    torch.manual_seed(seed)
    if v25:
        from transformers import (Qwen2_5_VLConfig as Config, Qwen2_5_VLForConditionalGeneration as Model,
                                  Qwen2_5_VLProcessor as Processor)
        vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32,
                      patch_size=patch, spatial_merge_size=merge, temporal_patch_size=2,
                      window_size=2 * patch * merge, fullatt_block_indexes=[1])
        config = Config(text_config=_text_config(tok, "qwen2_5_vl_text", rope_parameters=rope),
                        vision_config=vision, **common)
    else:
        from transformers import (Qwen2VLConfig as Config, Qwen2VLForConditionalGeneration as Model,
                                  Qwen2VLProcessor as Processor)
        vision = dict(depth=2, embed_dim=32, hidden_size=32, mlp_ratio=2, num_heads=2, patch_size=patch,
                      spatial_merge_size=merge, temporal_patch_size=2)
        config = Config(text_config=_text_config(tok, "qwen2_vl_text", rope_parameters=rope),
                        vision_config=vision, **common)
    model = Model(config).eval()
    tv._let_images_through(model.model.visual.merger)  # at std 0.02 the image barely moves the text
    size = (patch * merge) ** 2
    sizes = dict(min_pixels=4 * size, max_pixels=16 * size, patch_size=patch, merge_size=merge,
                 temporal_patch_size=2)
    processor = Processor(image_processor=Qwen2VLImageProcessor(**sizes), tokenizer=tok,
                          video_processor=Qwen2VLVideoProcessor(**sizes), chat_template=QWEN_TEMPLATE)
    return tv._save(folder, model, processor, [im_end, tok.eos_token_id], min_new_tokens)


def make_tiny_qwen2_vl(folder: Path, seed: int = 0, min_new_tokens: int = 4) -> Path:
    """Qwen2-VL: dynamic resolution (4..16 image tokens here), M-RoPE, ChatML with a default system line."""
    return _make_qwen(folder, seed, min_new_tokens, v25=False)


def make_tiny_qwen2_5_vl(folder: Path, seed: int = 0, min_new_tokens: int = 4) -> Path:
    """Qwen2.5-VL: as Qwen2-VL plus a window-attention vision tower."""
    return _make_qwen(folder, seed, min_new_tokens, v25=True)


def make_tiny_internvl(folder: Path, seed: int = 0, min_new_tokens: int = 4) -> Path:
    """InternVL3-hf layout: InternViT, pixel-shuffle MLP projector, Qwen2 LM; <img> + 4 <IMG_CONTEXT> + </img>."""
    import torch
    from transformers import (GotOcr2ImageProcessor, InternVLConfig, InternVLForConditionalGeneration,
                              InternVLProcessor, InternVLVideoProcessor)

    _need_torchvision("InternVL")
    named = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
             "video_token": "<video>"}
    tok = _tokenizer(("<|im_start|>", "<|im_end|>", *named.values()), named=named)
    image_size, patch, seq = 32, 8, 4  # (32/8)^2 patches, pixel shuffle 0.5 -> 4 tokens per tile
    torch.manual_seed(seed)
    config = InternVLConfig(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=image_size, patch_size=patch),
        text_config=_text_config(tok, "qwen2"),
        image_token_id=tok.context_image_token_id, image_seq_length=seq, downsample_ratio=0.5)
    model = InternVLForConditionalGeneration(config).eval()
    tv._let_images_through(model.model.multi_modal_projector)  # at std 0.02 the image barely moves the text
    norm = dict(size={"height": image_size, "width": image_size}, image_mean=[0.485, 0.456, 0.406],
                image_std=[0.229, 0.224, 0.225])
    image_processor = GotOcr2ImageProcessor(crop_to_patches=False, min_patches=1, max_patches=4, **norm)
    processor = InternVLProcessor(image_processor=image_processor, tokenizer=tok,
                                  video_processor=InternVLVideoProcessor(**norm), image_seq_length=seq,
                                  chat_template=INTERNVL_TEMPLATE)
    return tv._save(folder, model, processor, _ids(tok, "<|im_end|>", "</s>"), min_new_tokens)


def make_tiny_gemma3(folder: Path, seed: int = 0, min_new_tokens: int = 4) -> Path:
    """Gemma 3: SigLIP tower, avg-pooled to 4 soft tokens per image, bidirectional attention within an image."""
    import torch
    from transformers import (Gemma3Config, Gemma3ForConditionalGeneration, Gemma3ImageProcessor,
                              Gemma3Processor)

    named = {"boi_token": "<start_of_image>", "image_token": "<image_soft_token>", "eoi_token": "<end_of_image>"}
    tok = _tokenizer(("<bos>", "<start_of_turn>", "<end_of_turn>", *named.values()), named=named, bos="<bos>",
                     words=("model",))
    image_size, patch, n_tokens = 32, 8, 4  # 4x4 patches avg-pooled (kernel 2) to 2x2 = 4 tokens
    text = _text_config(tok, "gemma3_text", head_dim=16, query_pre_attn_scalar=16, sliding_window=16,
                        initializer_range=0.02)
    text.update(bos_token_id=tok.bos_token_id, num_key_value_heads=1)
    torch.manual_seed(seed)
    config = Gemma3Config(
        text_config=text,
        vision_config=dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64,
                           num_hidden_layers=2, num_attention_heads=2, image_size=image_size, patch_size=patch),
        mm_tokens_per_image=n_tokens, boi_token_index=tok.boi_token_id, eoi_token_index=tok.eoi_token_id,
        image_token_index=tok.image_token_id)
    model = Gemma3ForConditionalGeneration(config).eval()
    # the projection is initialised to zeros (images would change nothing): draw it at std 1/sqrt(fan_in)
    weight = model.model.multi_modal_projector.mm_input_projection_weight
    torch.nn.init.normal_(weight, std=1 / math.sqrt(weight.shape[0]))
    image_processor = Gemma3ImageProcessor(size={"height": image_size, "width": image_size},
                                           image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor = Gemma3Processor(image_processor=image_processor, tokenizer=tok, image_seq_length=n_tokens,
                                chat_template=GEMMA3_TEMPLATE)
    return tv._save(folder, model, processor, _ids(tok, "<end_of_turn>", "</s>"), min_new_tokens)


def make_tiny_mllama(folder: Path, seed: int = 0, min_new_tokens: int = 4) -> Path:
    """Llama 3.2 Vision: tiled ViT (up to 2 tiles of 32px) read by a gated cross-attention layer (layer 1 of 3)."""
    import torch
    from transformers import MllamaConfig, MllamaForConditionalGeneration, MllamaImageProcessor, MllamaProcessor

    tok = _tokenizer(("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|image|>",
                      "<|python_tag|>"), named={"image_token": "<|image|>"}, bos="<|begin_of_text|>")
    tile, tiles, hidden = 32, 2, 32
    torch.manual_seed(seed)
    config = MllamaConfig(
        vision_config=dict(hidden_size=hidden, intermediate_size=64, num_hidden_layers=2, num_global_layers=1,
                           attention_heads=2, image_size=tile, patch_size=8, max_num_tiles=tiles,
                           intermediate_layers_indices=[0], vision_output_dim=2 * hidden,
                           supported_aspect_ratios=[[1, 1], [1, 2], [2, 1]]),
        text_config=dict(_text_config(tok, "mllama_text_model", num_hidden_layers=3, cross_attention_layers=[1]),
                         bos_token_id=tok.bos_token_id),
        image_token_index=tok.image_token_id)
    model = MllamaForConditionalGeneration(config).eval()
    tv._let_images_through(model.model.multi_modal_projector)
    # cross-attention gates start at 0 (tanh(0): the image is ignored); open them
    for layer in model.model.language_model.layers:
        for name in ("cross_attn_attn_gate", "cross_attn_mlp_gate"):
            if hasattr(layer, name):
                torch.nn.init.constant_(getattr(layer, name), 1.0)
    image_processor = MllamaImageProcessor(size={"height": tile, "width": tile}, max_image_tiles=tiles)
    processor = MllamaProcessor(image_processor=image_processor, tokenizer=tok, chat_template=MLLAMA_TEMPLATE)
    return tv._save(folder, model, processor, _ids(tok, "<|eot_id|>", "</s>"), min_new_tokens)


BUILDERS = {"qwen2_vl": make_tiny_qwen2_vl, "qwen2_5_vl": make_tiny_qwen2_5_vl, "internvl": make_tiny_internvl,
            "gemma3": make_tiny_gemma3, "mllama": make_tiny_mllama}

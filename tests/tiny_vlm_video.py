"""Tiny random models of the families that take a video natively (Qwen2-VL, Qwen2.5-VL, LLaVA-OneVision,
LLaVA-NeXT-Video), saved into folders that ``AutoProcessor`` / ``AutoModelForImageTextToText`` load offline.

The Qwen and OneVision models are the image builders' (tiny_vlm_families_a/_b) with a chat template that also
writes the video part, as the real checkpoints' templates do (the image builders' templates know images only).
LLaVA-NeXT-Video is built here: CLIP tower, anyres image tiling, video frames pooled 2x2, Vicuna-style
``USER: <video>\\n... ASSISTANT:`` prompts. Nothing is downloaded; the video processors need torchvision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tiny_vlm_families_a as fa
import tiny_vlm_families_b as fb
import tiny_vlms as tv

# Qwen2-VL / Qwen2.5-VL's published ChatML: each image or video where it stands in the content
QWEN_VIDEO_TEMPLATE = (
    "{% for m in messages %}{% if loop.first and m['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{ '<|im_start|>' + m['role'] + '\n' }}"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{% elif c['type'] == 'video' %}{{ '<|vision_start|><|video_pad|><|vision_end|>' }}"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}{{ '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
# LLaVA-OneVision's ChatML (tiny_vlm_families_b's) with the video's <video>\n where it stands
LLAVA_ONEVISION_VIDEO_TEMPLATE = fb.LLAVA_ONEVISION_TEMPLATE.replace(
    "{% if c['type'] == 'image' %}{{ '<image>\n' }}",
    "{% if c['type'] == 'image' %}{{ '<image>\n' }}{% elif c['type'] == 'video' %}{{ '<video>\n' }}")
# llava-hf LLaVA-NeXT-Video: a turn's images first, then its videos, then its text
LLAVA_NEXT_VIDEO_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}{% for c in m['content'] %}{{ c['text'] }}{% endfor %}{{ ' ' }}"
    "{% else %}{{ m['role'].upper() + ': ' }}"
    "{% for c in m['content'] if c['type'] == 'image' %}{{ '<image>\n' }}{% endfor %}"
    "{% for c in m['content'] if c['type'] == 'video' %}{{ '<video>\n' }}{% endfor %}"
    "{% for c in m['content'] if c['type'] == 'text' %}{{ c['text'] }}{% endfor %}{{ ' ' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}")

VIDEO_TOKEN = "<video>"


def _retemplate(folder: Path, template: str) -> Path:
    """Save the folder's processor again with ``template`` as its chat template."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(folder)
    processor.chat_template = template
    processor.save_pretrained(folder)
    return folder


def make_tiny_qwen2_vl_video(folder: Path, seed: int = 0, min_new_tokens: int = 4) -> Path:
    """tiny_vlm_families_a's Qwen2-VL (8-pixel patches merged 2x2, 2-frame temporal patches) + video template."""
    return _retemplate(fa.make_tiny_qwen2_vl(folder, seed, min_new_tokens), QWEN_VIDEO_TEMPLATE)


def make_tiny_qwen2_5_vl_video(folder: Path, seed: int = 0, min_new_tokens: int = 4) -> Path:
    """tiny_vlm_families_a's Qwen2.5-VL + video template (time positions: tokens_per_second of the config)."""
    return _retemplate(fa.make_tiny_qwen2_5_vl(folder, seed, min_new_tokens), QWEN_VIDEO_TEMPLATE)


def make_tiny_llava_onevision_video(folder: Path, seed: int = 0, min_new_tokens: int = 4) -> Path:
    """tiny_vlm_families_b's LLaVA-OneVision (32-pixel frames, 4x4 patches pooled to 2x2) + video template."""
    return _retemplate(fb.make_tiny_llava_onevision(folder, seed, min_new_tokens), LLAVA_ONEVISION_VIDEO_TEMPLATE)


def make_tiny_llava_next_video(folder: Path, seed: int = 0, image_size: int = 32, min_new_tokens: int = 4) -> Path:
    """LLaVA-NeXT-Video: LLaVA-NeXT's anyres image path (CLIP, CLS dropped) and video frames resized and cropped
    to 32 px, 4x4 patches average-pooled (stride 2) to 4 tokens per frame."""
    import torch
    from transformers import (LlavaNextImageProcessor, LlavaNextVideoConfig, LlavaNextVideoForConditionalGeneration,
                              LlavaNextVideoProcessor, LlavaNextVideoVideoProcessor)

    fa._need_torchvision("LLaVA-NeXT-Video")
    tokenizer = tv.word_tokenizer((tv.IMAGE_TOKEN, VIDEO_TOKEN))
    pinpoints = [[image_size, image_size], [image_size, 2 * image_size], [2 * image_size, image_size]]
    torch.manual_seed(seed)
    config = LlavaNextVideoConfig(
        vision_config=tv._clip_vision(image_size), text_config=tv.llama_text_config(len(tokenizer)),
        image_token_index=tokenizer.convert_tokens_to_ids(tv.IMAGE_TOKEN),
        video_token_index=tokenizer.convert_tokens_to_ids(VIDEO_TOKEN), image_grid_pinpoints=pinpoints,
        vision_feature_select_strategy="default", vision_feature_layer=-2, spatial_pool_stride=2,
        spatial_pool_mode="average")
    model = LlavaNextVideoForConditionalGeneration(config).eval()
    fb._images_matter(model.model.language_model, model.model.multi_modal_projector)
    crop = {"height": image_size, "width": image_size}
    image_processor = LlavaNextImageProcessor(size={"shortest_edge": image_size}, crop_size=crop,
                                              image_grid_pinpoints=pinpoints)
    video_processor = LlavaNextVideoVideoProcessor(size={"shortest_edge": image_size}, crop_size=crop)
    processor = LlavaNextVideoProcessor(video_processor=video_processor, image_processor=image_processor,
                                        tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default",
                                        num_additional_image_tokens=1, chat_template=LLAVA_NEXT_VIDEO_TEMPLATE)
    return tv._save(folder, model, processor, [tokenizer.eos_token_id], min_new_tokens)


BUILDERS = {"qwen2_vl": make_tiny_qwen2_vl_video, "qwen2_5_vl": make_tiny_qwen2_5_vl_video,
            "llava_onevision": make_tiny_llava_onevision_video, "llava_next_video": make_tiny_llava_next_video}


def random_frames(seed: int, n: int = 4, size: tuple[int, int] = (40, 40)) -> tuple[Any, ...]:
    """``n`` random RGB frames (one clip)."""
    return tuple(tv.random_image(seed * 100 + i, size) for i in range(n))

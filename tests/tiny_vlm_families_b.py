"""Tiny random image+prompt->text models of five more families (LLaVA-OneVision, Idefics3, SmolVLM, PaliGemma,
InstructBLIP), each saved into a folder that ``AutoProcessor`` / ``AutoModelForImageTextToText`` load offline.

Same conventions as ``tiny_vlms``: a word-level tokenizer (with the special tokens each family's processor
reads), a processor carrying a chat template that follows the family's published prompt layout where the
real checkpoints ship one, a model with random weights from a tiny config, and a generation config that
suppresses every special token but EOS so that random weights still write words. They exist to test how
the adapter drives each family: image-token expansion, image splitting, prefix-LM masks, Q-Former queries,
left padding and batch invariance. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tiny_vlms as tv
from tiny_vlms import END_OF_UTTERANCE, FAKE_IMAGE_TOKEN, IMAGE_TOKEN, random_image  # noqa: F401

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
BEGIN_OF_TEXT = "<|begin_of_text|>"
GLOBAL_IMAGE_TOKEN = "<global-img>"
ROW_COL_TOKENS = tuple(f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7))  # Idefics3 reads 6x6

# First transformers release that ships each family: checked by listing the PyPI wheels on either side of each
# (pip download --no-deps transformers==X; unzip -l | grep models/<family>/modeling_): absent in 4.30.2, 4.40.2,
# 4.44.2, 4.45.2, 4.49.0 and present in the versions below. (AutoModelForImageTextToText itself: 4.46.0.)
MIN_TRANSFORMERS = {"llava_onevision": "4.45.0", "idefics3": "4.46.0", "smolvlm": "4.50.0",
                    "paligemma": "4.41.0", "instructblip": "4.31.0"}

# Packages beyond the core environment that loading the family's processor needs in transformers 5.x: a
# processor with a video_processor slot cannot be built (nor loaded) without torchvision, None included.
NEEDS = {"llava_onevision": ("torchvision",), "smolvlm": ("torchvision", "num2words")}

FAMILY_NOTES = {
    "llava_onevision": "anyres-max: image_processor.image_grid_pinpoints (the (h, w) grids an image may be tiled "
                       "to) and size; vision_aspect_ratio='anyres_max_9' caps the unpadded features. One image per "
                       "prompt: base + tiles (count varies with the image's size); SEVERAL images in one prompt: "
                       "each only base + 1 newline token (batch_num_images). Chat template: Qwen2 ChatML.",
    "idefics3": "image_processor.do_image_splitting (off: one global image per image) and size={'longest_edge': "
                "N} (the image is resized to it, then cut into max_image_size tiles: more tiles, more tokens); "
                "image_seq_len per tile = (tile/patch)**2 / scale_factor**2. The template starts with "
                "<|begin_of_text|> (= BOS) so the processor must not add a second one.",
    "smolvlm": "as Idefics3 (do_image_splitting, size longest_edge, max_image_size); the processor needs the "
               "num2words package and its video processor torchvision.",
    "paligemma": "no chat template: the processor writes <image>*n + BOS + prefix + '\\n' and returns "
                 "token_type_ids (0: prefix, attended bidirectionally); prompts are task prefixes "
                 "('caption en', 'answer en ...'). image_processor.image_seq_length must equal the model's. "
                 "The images must come first: text before the first <image> ends up in front of them. The "
                 "processor also returns 'labels' (drop them before generate).",
    "instructblip": "no chat template: the plain instruction goes to the LM (num_query_tokens <image> tokens "
                    "in front, before any padding) and to the Q-Former's own tokenizer (qformer_input_ids). "
                    "One image per prompt. The Q-Former has absolute positions: its text must be RIGHT-padded "
                    "(padding_side='left' as a processor kwarg pads both tokenizers left: not batch-invariant).",
}

# Qwen2 ChatML as LLaVA-OneVision writes it (each image's <image>\n where it appears in the content).
LLAVA_ONEVISION_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}"
    "{% endif %}{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' }}"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}{{ '<image>\n' }}{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def _idefics3_template(start: str) -> str:
    """Idefics3-8B-Llama3 (start <|begin_of_text|>) / SmolVLM (start <|im_start|>): ``User:<image>TEXT``."""
    return (
        start + "{% for m in messages %}{{ m['role'] | capitalize }}"
        "{% if m['content'] is string %}{{ ': ' + m['content'] }}{% else %}"
        "{% if m['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
        "{% for c in m['content'] %}{% if c['type'] == 'image' %}{{ '<image>' }}{% else %}{{ c['text'] }}"
        "{% endif %}{% endfor %}{% endif %}{{ '<end_of_utterance>\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}")


def _set_bos(tokenizer: Any, bos: str | None, add: bool) -> Any:
    """Make ``bos`` (None: keep ``<s>``) the BOS token, written in front of every text only if ``add``."""
    from tokenizers import processors

    bos = bos or tokenizer.bos_token
    tokenizer._tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A" if add else "$A", pair=f"{bos} $A $B" if add else "$A $B",
        special_tokens=[(bos, tokenizer.convert_tokens_to_ids(bos))] if add else [])
    tokenizer.bos_token = bos
    return tokenizer


def _save(folder: Path, model: Any, processor: Any, eos_ids: list[int], min_new_tokens: int,
          also_suppress: tuple[str, ...] = ()) -> Path:
    """``tiny_vlms._save``, also suppressing ``also_suppress`` (tokens that ``all_special_ids`` misses)."""
    tv._save(folder, model, processor, eos_ids, min_new_tokens)
    if also_suppress:
        gen = model.generation_config
        ids = set(processor.tokenizer.convert_tokens_to_ids(list(also_suppress))) - set(eos_ids)
        gen.suppress_tokens = sorted(set(gen.suppress_tokens) | ids)
        gen.save_pretrained(folder)
    return folder


def _images_matter(*modules: Any) -> None:
    """Re-draw the linears of the LM (and connector / Q-Former) at std 1/sqrt(fan_in): at std 0.02 the last
    token's own embedding dominates its residual stream, and greedy text hardly depends on the image."""
    for module in modules:
        tv._let_images_through(module)


def _siglip_vision(image_size: int, patch: int = 8, hidden: int = 32, **extra: Any) -> dict:
    return dict(model_type="siglip_vision_model", hidden_size=hidden, intermediate_size=2 * hidden,
                num_hidden_layers=2, num_attention_heads=2, image_size=image_size, patch_size=patch, **extra)


def make_tiny_llava_onevision(folder: Path, seed: int = 0, min_new_tokens: int = 4) -> Path:
    """LLaVA-OneVision: SigLIP tower, anyres-max tiling (base 16 tokens + tiles + newlines), Qwen2 LM, ChatML."""
    import torch
    from transformers import (LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration,
                              LlavaOnevisionImageProcessor, LlavaOnevisionProcessor, LlavaOnevisionVideoProcessor)

    tokenizer = _set_bos(tv.word_tokenizer((IMAGE_TOKEN, "<video>", IM_START, IM_END)), None, add=False)  # Qwen2
    image_size, patch = 32, 8
    pinpoints = [[32, 32], [32, 64], [64, 32], [64, 64]]
    torch.manual_seed(seed)
    config = LlavaOnevisionConfig(
        vision_config=_siglip_vision(image_size, patch, vision_use_head=False),
        text_config=dict(tv.llama_text_config(len(tokenizer)), model_type="qwen2"),
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        video_token_index=tokenizer.convert_tokens_to_ids("<video>"), image_grid_pinpoints=pinpoints,
        vision_feature_select_strategy="full", vision_feature_layer=-1)
    model = LlavaOnevisionForConditionalGeneration(config).eval()
    _images_matter(model.model.language_model)
    image_processor = LlavaOnevisionImageProcessor(size={"height": image_size, "width": image_size},
                                                   image_grid_pinpoints=pinpoints)
    video_processor = LlavaOnevisionVideoProcessor(size={"height": image_size, "width": image_size})
    processor = LlavaOnevisionProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                        video_processor=video_processor,
                                        num_image_tokens=(image_size // patch) ** 2,
                                        vision_feature_select_strategy="full",
                                        chat_template=LLAVA_ONEVISION_TEMPLATE)
    eos = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(IM_END)]
    return tv._save(folder, model, processor, eos, min_new_tokens)


def _idefics3_like(folder: Path, seed: int, min_new_tokens: int, smol: bool) -> Path:
    import torch
    import transformers as tf

    prefix = "SmolVLM" if smol else "Idefics3"
    bos = IM_START if smol else BEGIN_OF_TEXT
    extra = (FAKE_IMAGE_TOKEN, IMAGE_TOKEN, END_OF_UTTERANCE, GLOBAL_IMAGE_TOKEN, bos, *ROW_COL_TOKENS)
    # Llama 3 (Idefics3) writes its BOS in front of every text; SmolLM2 (SmolVLM) adds none
    tokenizer = _set_bos(tv.word_tokenizer(extra + (("<video>",) if smol else ())), bos, add=not smol)
    tile, patch, scale = 32, 8, 2
    image_seq_len = (tile // patch) ** 2 // scale ** 2
    torch.manual_seed(seed)
    config = getattr(tf, f"{prefix}Config")(
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN), scale_factor=scale,
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=tile, patch_size=patch),
        text_config=dict(tv.llama_text_config(len(tokenizer)), bos_token_id=tokenizer.bos_token_id))
    model = getattr(tf, f"{prefix}ForConditionalGeneration")(config).eval()
    _images_matter(model.model.connector, model.model.text_model)
    image_processor = getattr(tf, f"{prefix}ImageProcessor")(
        size={"longest_edge": 2 * tile}, max_image_size={"longest_edge": tile}, do_image_splitting=True)
    kwargs = dict(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=image_seq_len,
                  chat_template=_idefics3_template(bos))
    if smol:  # a video processor is required (it needs torchvision); the processor needs num2words
        video_processor = tf.SmolVLMVideoProcessor(size={"longest_edge": 2 * tile},
                                                   max_image_size={"longest_edge": tile})
        processor = tf.SmolVLMProcessor(video_processor=video_processor, **kwargs)
    else:
        processor = tf.Idefics3Processor(**kwargs)
    eos = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(END_OF_UTTERANCE)]
    # the processor re-registers only 3 of the extra specials, so the rest are named for suppression here
    return _save(folder, model, processor, eos, min_new_tokens, extra)


def make_tiny_idefics3(folder: Path, seed: int = 0, min_new_tokens: int = 4) -> Path:
    """Idefics3: SigLIP-style tower on 32px tiles, pixel-shuffle connector (4 tokens a tile), Llama LM."""
    return _idefics3_like(folder, seed, min_new_tokens, smol=False)


def make_tiny_smolvlm(folder: Path, seed: int = 0, min_new_tokens: int = 4) -> Path:
    """SmolVLM: Idefics3's architecture and splitting, ``<|im_start|>User:...`` prompts (needs num2words)."""
    return _idefics3_like(folder, seed, min_new_tokens, smol=True)


def make_tiny_paligemma(folder: Path, seed: int = 0, min_new_tokens: int = 4) -> Path:
    """PaliGemma: SigLIP tower (16 image tokens), linear projector, Gemma prefix-LM; no chat template."""
    import torch
    from transformers import (PaliGemmaConfig, PaliGemmaForConditionalGeneration, PaliGemmaProcessor,
                              SiglipImageProcessor)
    from transformers.models.paligemma.processing_paligemma import EXTRA_TOKENS

    tokenizer = _set_bos(tv.word_tokenizer((IMAGE_TOKEN,)), None, add=False)  # the processor writes BOS itself
    image_size, patch = 32, 8
    image_processor = SiglipImageProcessor(size={"height": image_size, "width": image_size})
    image_processor.image_seq_length = (image_size // patch) ** 2
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer)  # adds 1152 loc/seg
    torch.manual_seed(seed)
    config = PaliGemmaConfig(
        vision_config=_siglip_vision(image_size, patch, vision_use_head=False, projection_dim=32),
        text_config=dict(tv.llama_text_config(len(tokenizer)), model_type="gemma", head_dim=16),
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN), vocab_size=len(tokenizer),
        projection_dim=32, hidden_size=32)
    model = PaliGemmaForConditionalGeneration(config).eval()
    _images_matter(model.model.language_model)
    # the 1152 <locNNNN>/<segNNN> tokens are plain added tokens: suppressed too, so that the text is words
    return _save(folder, model, processor, [tokenizer.eos_token_id], min_new_tokens, EXTRA_TOKENS)


def make_tiny_instructblip(folder: Path, seed: int = 0, min_new_tokens: int = 4) -> Path:
    """InstructBLIP: ViT + instruction-aware Q-Former (own tokenizer, 4 queries) + Llama (Vicuna) LM."""
    import torch
    from transformers import (BlipImageProcessor, InstructBlipConfig, InstructBlipForConditionalGeneration,
                              InstructBlipProcessor)

    tokenizer = tv.word_tokenizer((IMAGE_TOKEN,))
    qformer_tokenizer = tv.word_tokenizer()
    image_size, num_query_tokens = 32, 4
    torch.manual_seed(seed)
    config = InstructBlipConfig(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=image_size, patch_size=8, initializer_range=0.02),  # 1e-10: blind
        qformer_config=dict(vocab_size=len(qformer_tokenizer), hidden_size=32, intermediate_size=64,
                            num_hidden_layers=1, num_attention_heads=2, encoder_hidden_size=32),
        text_config=tv.llama_text_config(len(tokenizer)),
        num_query_tokens=num_query_tokens, image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN))
    model = InstructBlipForConditionalGeneration(config).eval()
    _images_matter(model.qformer, model.language_model)
    image_processor = BlipImageProcessor(size={"height": image_size, "width": image_size})
    processor = InstructBlipProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                      qformer_tokenizer=qformer_tokenizer, num_query_tokens=num_query_tokens)
    return tv._save(folder, model, processor, [tokenizer.eos_token_id], min_new_tokens)


BUILDERS = {"llava_onevision": make_tiny_llava_onevision, "idefics3": make_tiny_idefics3,
            "smolvlm": make_tiny_smolvlm, "paligemma": make_tiny_paligemma, "instructblip": make_tiny_instructblip}

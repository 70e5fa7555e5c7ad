"""Tiny random image+prompt->text models (LLaVA, LLaVA-NeXT, Idefics v1, Idefics2, BLIP-2) saved into a folder.

Each builder makes a word-level tokenizer with `tokenizers`, the processor the family needs (with a chat
template where the family has one), a model with random weights from a tiny config, and saves both with
``save_pretrained`` so that ``from_pretrained(folder)`` loads them offline. Nothing is downloaded.

The saved generation config sets ``min_new_tokens`` and suppresses the special tokens (pad, BOS, image
tokens) but EOS: random weights often pick EOS or pad at once, and a test of batch invariance on empty outputs
could not fail. Real checkpoints ship their own generation config too and the adapter honours it, so this is a
property of the test models, not a special case in the adapter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# Plain words of the vocabulary (prompts, chat-template role names and what the models may generate).
VOCAB_WORDS = (
    "a an the of with is what which where how many colour color shape image photo picture describe this "
    "that there in on at and or red green blue yellow black white circle square triangle small big left "
    "right top bottom one two three yes no question answer user assistant system inst you are helpful "
    "short reply word please").split()
PUNCT = (":", "?", ".", ",", "[", "]", "/", "!")
BASE_SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")
IMAGE_TOKEN = "<image>"
FAKE_IMAGE_TOKEN = "<fake_token_around_image>"
END_OF_UTTERANCE = "<end_of_utterance>"

# Chat templates written for these tiny models (they follow each family's published prompt layout).
LLAVA_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}{% for c in m['content'] %}{{ c['text'] }}{% endfor %}{{ ' ' }}"
    "{% else %}{{ m['role'].upper() + ': ' }}"
    "{% for c in m['content'] if c['type'] == 'image' %}{{ '<image>\n' }}{% endfor %}"
    "{% for c in m['content'] if c['type'] == 'text' %}{{ c['text'] }}{% endfor %}{{ ' ' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}")
LLAVA_NEXT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'system' %}{% for c in m['content'] %}{{ c['text'] }}{% endfor %}{{ '\n' }}"
    "{% elif m['role'] == 'user' %}{{ '[INST] ' }}"
    "{% for c in m['content'] if c['type'] == 'image' %}{{ '<image>\n' }}{% endfor %}"
    "{% for c in m['content'] if c['type'] == 'text' %}{{ c['text'] }}{% endfor %}{{ ' [/INST]' }}"
    "{% else %}{% for c in m['content'] %}{{ ' ' + c['text'] }}{% endfor %}{{ eos_token }}{% endif %}"
    "{% endfor %}")
IDEFICS2_TEMPLATE = (
    "{% for m in messages %}{{ m['role'].capitalize() + ':' }}"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}{{ '<image>' }}"
    "{% else %}{{ ' ' + c['text'] }}{% endif %}{% endfor %}{{ '<end_of_utterance>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}")


def word_tokenizer(extra_special: tuple[str, ...] = (), *, template: str = "<s> $A", pad: bool = True) -> Any:
    """A word-level fast tokenizer: lowercased words and punctuation; ``template`` adds ``<s>`` in front (like
    Llama/OPT) or ``</s>`` behind (``"$A </s>"``, like T5).

    ``pad=False`` leaves the tokenizer without a pad token (as many decoder-only checkpoints ship)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = [*BASE_SPECIALS, *extra_special]
    vocab = {tok: i for i, tok in enumerate(specials + list(dict.fromkeys(VOCAB_WORDS)) + list(PUNCT))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)  # joins words with spaces, tidies punctuation
    tok.post_processor = processors.TemplateProcessing(single=template, special_tokens=[("<s>", 2), ("</s>", 3)])
    kwargs = {"pad_token": "<pad>"} if pad else {}
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   model_max_length=4096, **kwargs)
    if extra_special:
        fast.add_special_tokens({"additional_special_tokens": list(extra_special)})
    return fast


def _save(folder: Path, model: Any, processor: Any, eos_ids: list[int], min_new_tokens: int) -> Path:
    tokenizer = processor.tokenizer
    gen = model.generation_config
    gen.min_new_tokens = min_new_tokens
    gen.eos_token_id = eos_ids if len(eos_ids) > 1 else eos_ids[0]
    # a trained model never writes pad, BOS or image tokens; a random one would, and they decode to nothing
    gen.suppress_tokens = sorted(set(tokenizer.all_special_ids) - set(eos_ids))
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _let_images_through(module: Any) -> None:
    """Re-draw a perceiver resampler's linear weights at std 1/sqrt(fan_in): at the usual std 0.02 its output
    is almost only its learned latents, the same for every image, and the image would not change the text."""
    import math

    import torch

    for sub in module.modules():
        if isinstance(sub, torch.nn.Linear):
            torch.nn.init.normal_(sub.weight, std=1 / math.sqrt(sub.in_features))


def llama_text_config(vocab_size: int, hidden: int = 32, **extra: Any) -> dict:
    """A tiny Llama config (as a dict) on the word tokenizer's special-token ids."""
    return dict(model_type="llama", vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden,
                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                bos_token_id=2, eos_token_id=3, pad_token_id=0, **extra)


def _clip_vision(image_size: int, patch: int = 8, hidden: int = 32) -> dict:
    return dict(model_type="clip_vision_model", hidden_size=hidden, intermediate_size=2 * hidden,
                num_hidden_layers=2, num_attention_heads=2, image_size=image_size, patch_size=patch,
                projection_dim=hidden)


def make_tiny_llava(folder: Path, seed: int = 0, image_size: int = 32, min_new_tokens: int = 4,
                    pad_token: bool = True) -> Path:
    """LLaVA-1.5 layout: CLIP vision tower (CLS dropped), MLP projector, Llama LM, ``USER: <image>\\n...``."""
    import torch
    from transformers import CLIPImageProcessor, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    tokenizer = word_tokenizer((IMAGE_TOKEN,), pad=pad_token)
    image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    torch.manual_seed(seed)
    config = LlavaConfig(vision_config=_clip_vision(image_size),
                         text_config=llama_text_config(len(tokenizer)), image_token_id=image_token_id,
                         vision_feature_select_strategy="default", vision_feature_layer=-2)
    model = LlavaForConditionalGeneration(config).eval()
    image_processor = CLIPImageProcessor(size={"shortest_edge": image_size},
                                         crop_size={"height": image_size, "width": image_size})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=LLAVA_TEMPLATE)
    return _save(folder, model, processor, [tokenizer.eos_token_id], min_new_tokens)


def make_tiny_llava_next(folder: Path, seed: int = 0, image_size: int = 32, min_new_tokens: int = 4) -> Path:
    """LLaVA-NeXT ("anyres"): the image is tiled by aspect ratio, so the image-token count varies per image."""
    import torch
    from transformers import (LlavaNextConfig, LlavaNextForConditionalGeneration, LlavaNextImageProcessor,
                              LlavaNextProcessor)

    tokenizer = word_tokenizer((IMAGE_TOKEN,))
    image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    pinpoints = [[image_size, image_size], [image_size, 2 * image_size], [2 * image_size, image_size]]
    torch.manual_seed(seed)
    config = LlavaNextConfig(vision_config=_clip_vision(image_size),
                             text_config=llama_text_config(len(tokenizer)), image_token_index=image_token_id,
                             image_grid_pinpoints=pinpoints, vision_feature_select_strategy="default",
                             vision_feature_layer=-2)
    model = LlavaNextForConditionalGeneration(config).eval()
    image_processor = LlavaNextImageProcessor(size={"shortest_edge": image_size},
                                              crop_size={"height": image_size, "width": image_size},
                                              image_grid_pinpoints=pinpoints)
    processor = LlavaNextProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8,
                                   vision_feature_select_strategy="default", num_additional_image_tokens=1,
                                   chat_template=LLAVA_NEXT_TEMPLATE)
    return _save(folder, model, processor, [tokenizer.eos_token_id], min_new_tokens)


def make_tiny_idefics(folder: Path, seed: int = 0, image_size: int = 32, min_new_tokens: int = 4) -> Path:
    """Idefics v1 (Flamingo-style: perceiver resampler + gated cross-attention); no chat template."""
    import torch
    from transformers import IdeficsConfig, IdeficsForVisionText2Text, IdeficsImageProcessor, IdeficsProcessor

    tokenizer = word_tokenizer((IMAGE_TOKEN, FAKE_IMAGE_TOKEN, END_OF_UTTERANCE))
    torch.manual_seed(seed)
    config = IdeficsConfig(
        vocab_size=len(tokenizer), additional_vocab_size=0, hidden_size=32, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=2, cross_layer_interval=1, use_resampler=True,
        max_position_embeddings=512, pad_token_id=0, bos_token_id=2, eos_token_id=3,
        # alpha "ones" opens the gated cross-attention (zeros, the training init, would ignore the image)
        alpha_initializer="ones",
        vision_config=dict(embed_dim=32, image_size=image_size, patch_size=8, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=64),
        perceiver_config=dict(resampler_n_latents=4, resampler_depth=1, resampler_n_heads=2,
                              resampler_head_dim=8))
    model = IdeficsForVisionText2Text(config).eval()
    _let_images_through(model.model.perceiver_resampler)
    image_processor = IdeficsImageProcessor(image_size=image_size)
    processor = IdeficsProcessor(image_processor=image_processor, tokenizer=tokenizer, image_size=image_size)
    return _save(folder, model, processor, [tokenizer.eos_token_id,
                                            tokenizer.convert_tokens_to_ids(END_OF_UTTERANCE)], min_new_tokens)


def make_tiny_idefics2(folder: Path, seed: int = 0, image_size: int = 32, min_new_tokens: int = 4) -> Path:
    """Idefics2: SigLIP-style vision tower, perceiver resampler to a fixed number of image tokens, Mistral LM."""
    import torch
    from transformers import (Idefics2Config, Idefics2ForConditionalGeneration, Idefics2ImageProcessor,
                              Idefics2Processor)

    tokenizer = word_tokenizer((FAKE_IMAGE_TOKEN, IMAGE_TOKEN, END_OF_UTTERANCE))
    image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    n_latents = 4
    torch.manual_seed(seed)
    config = Idefics2Config(
        image_token_id=image_token_id,
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=image_size, patch_size=8),
        perceiver_config=dict(hidden_size=32, resampler_n_latents=n_latents, resampler_depth=1,
                              resampler_n_heads=2, resampler_head_dim=8, num_key_value_heads=1),
        text_config=dict(llama_text_config(len(tokenizer)), model_type="mistral"))
    model = Idefics2ForConditionalGeneration(config).eval()
    _let_images_through(model.model.connector)
    image_processor = Idefics2ImageProcessor(size={"longest_edge": image_size, "shortest_edge": image_size},
                                             do_image_splitting=False)
    processor = Idefics2Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=n_latents,
                                  chat_template=IDEFICS2_TEMPLATE)
    return _save(folder, model, processor, [tokenizer.eos_token_id,
                                            tokenizer.convert_tokens_to_ids(END_OF_UTTERANCE)], min_new_tokens)


def make_tiny_blip2(folder: Path, seed: int = 0, image_size: int = 32, min_new_tokens: int = 4,
                    language_model: str = "opt") -> Path:
    """BLIP-2: ViT + Q-Former (query tokens) + an OPT (decoder-only) or T5 (encoder-decoder, as in the Flan-T5
    checkpoints) LM; no chat template, ``Question: ... Answer:`` prompts."""
    import torch
    from transformers import Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, BlipImageProcessor

    tokenizer = word_tokenizer((IMAGE_TOKEN,), template="$A </s>" if language_model == "t5" else "<s> $A")
    image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    num_query_tokens = 4
    if language_model == "t5":
        text_config = dict(model_type="t5", vocab_size=len(tokenizer), d_model=32, d_ff=64, d_kv=16,
                           num_layers=2, num_decoder_layers=2, num_heads=2, pad_token_id=0, eos_token_id=3,
                           decoder_start_token_id=0, initializer_factor=3.0)  # 1.0: every text the same
    else:
        text_config = dict(model_type="opt", vocab_size=len(tokenizer), hidden_size=32, ffn_dim=64,
                           word_embed_proj_dim=32, num_hidden_layers=2, num_attention_heads=2,
                           max_position_embeddings=512, pad_token_id=0, bos_token_id=2, eos_token_id=3)
    torch.manual_seed(seed)
    config = Blip2Config(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=image_size, patch_size=8),
        qformer_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                            num_hidden_layers=1, num_attention_heads=2, encoder_hidden_size=32),
        text_config=text_config,
        num_query_tokens=num_query_tokens, image_token_index=image_token_id)
    model = Blip2ForConditionalGeneration(config).eval()
    image_processor = BlipImageProcessor(size={"height": image_size, "width": image_size})
    processor = Blip2Processor(image_processor=image_processor, tokenizer=tokenizer,
                               num_query_tokens=num_query_tokens)
    return _save(folder, model, processor, [tokenizer.eos_token_id], min_new_tokens)


BUILDERS = {"llava": make_tiny_llava, "llava_next": make_tiny_llava_next, "idefics": make_tiny_idefics,
            "idefics2": make_tiny_idefics2, "blip2": make_tiny_blip2,
            "blip2_t5": lambda folder, seed=0: make_tiny_blip2(folder, seed, language_model="t5")}


def random_image(seed: int, size: tuple[int, int] = (40, 40)) -> Image.Image:
    """A random RGB image (sizes vary per request to exercise per-image token counts and padding)."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


VARIED_PROMPTS = ["what colour is this", "describe the image", "how many", "is there a red circle on the left",
                  "what shape", "a", "which colour is the big square in the top right of this picture", "yes or no"]
VARIED_SIZES = [(40, 40), (64, 32), (32, 64), (48, 40)]


def varied_requests(n: int = 16) -> list:
    """``n`` requests for batch-invariance tests: prompt lengths from 1 to 16 words and four image sizes (so a
    batch pads and tiling families tile differently)."""
    from mmbench.capabilities import GenerationRequest

    return [GenerationRequest(VARIED_PROMPTS[i % 8] + " please" * (i // 8 * (i % 3)),
                              (random_image(i, VARIED_SIZES[i % 4]),)) for i in range(n)]


def run_requests(adapter: Any, requests: list, config: Any, batch_size: int = 16) -> list:
    """prepare + generate per chunk of ``batch_size`` requests, as the runner does."""
    out = []
    for i in range(0, len(requests), batch_size):
        out += adapter.generate(adapter.prepare(requests[i:i + batch_size], config), config)
    return out

"""mini-flamingo: IdeficsForVisionText2Text (the Flamingo reproduction) = mini-clip's vision weights (frozen) +
perceiver resampler + gated cross-attention layers + mini-lm's weights in the LLaMA-style decoder."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import (CLIPModel, IdeficsConfig, IdeficsForVisionText2Text, IdeficsProcessor,
                          LlamaForCausalLM, PreTrainedTokenizerFast)
from transformers.models.idefics.image_processing_pil_idefics import IdeficsImageProcessorPil

from mmbench.mini import shapes
from mmbench.mini.train import common
from mmbench.mini.train import lm as lm_train
from mmbench.mini.train import tokenizer as tok_lib
from mmbench.mini.train import vlm


@dataclass(frozen=True)
class FlamingoBridge:
    """The bridge's own hyper-parameters (everything else is copied from mini-clip and mini-lm)."""

    n_latents: int = 16
    resampler_depth: int = 2
    cross_layer_interval: int = 2  # a gated cross-attention block before every 2nd decoder layer
    # Flamingo starts its tanh gates at 0 so that the frozen LM is untouched; here the LM is trained too, and
    # with closed gates no gradient reaches the perceiver or the cross-attention (the bridge stays blind for
    # hundreds of steps), so the gates start open (tanh(1) = 0.76).
    alpha_initializer: str = "ones"


def build(clip: CLIPModel, lm: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast,
          bridge: FlamingoBridge = FlamingoBridge()) -> tuple[IdeficsForVisionText2Text, IdeficsProcessor]:
    """Copy mini-clip's vision weights and mini-lm's weights into a fresh Idefics; freeze the vision encoder."""
    v, t = clip.config.vision_config, lm.config
    # Idefics reads its vision tower's last hidden state; a tower without mini-clip's last layer gives exactly
    # LLaVA's penultimate-layer features (vlm.VISION_FEATURE_LAYER).
    vision_layers = v.num_hidden_layers + 1 + vlm.VISION_FEATURE_LAYER
    config = IdeficsConfig(
        vocab_size=t.vocab_size, additional_vocab_size=0, hidden_size=t.hidden_size,
        intermediate_size=t.intermediate_size, num_hidden_layers=t.num_hidden_layers,
        num_attention_heads=t.num_attention_heads, hidden_act=t.hidden_act, rms_norm_eps=t.rms_norm_eps,
        max_position_embeddings=t.max_position_embeddings, rope_parameters=dict(t.rope_parameters),
        dropout=0.0, alpha_initializer=bridge.alpha_initializer, alpha_type="float", cross_layer_interval=bridge.cross_layer_interval,
        qk_layer_norms=False, freeze_text_layers=False, freeze_lm_head=False, freeze_vision_layers=True,
        use_resampler=True, tie_word_embeddings=False, pad_token_id=t.pad_token_id,
        bos_token_id=t.bos_token_id, eos_token_id=t.eos_token_id,
        vision_config=dict(embed_dim=v.hidden_size, image_size=v.image_size, patch_size=v.patch_size,
                           intermediate_size=v.intermediate_size, num_hidden_layers=vision_layers,
                           num_attention_heads=v.num_attention_heads, hidden_act=v.hidden_act,
                           layer_norm_eps=v.layer_norm_eps),
        perceiver_config=dict(use_resampler=True, resampler_n_latents=bridge.n_latents,
                              resampler_depth=bridge.resampler_depth, resampler_n_heads=t.num_attention_heads,
                              resampler_head_dim=v.hidden_size // t.num_attention_heads))
    model = IdeficsForVisionText2Text(config)
    inner = model.model
    kept = inner.vision_model.state_dict().keys()
    inner.vision_model.load_state_dict({k: w for k, w in clip.vision_model.state_dict().items() if k in kept})
    inner.embed_tokens.weight.data.copy_(lm.model.embed_tokens.weight.data)
    for mine, theirs in zip(inner.layers, lm.model.layers):
        mine.load_state_dict(theirs.state_dict())
    inner.norm.load_state_dict(lm.model.norm.state_dict())
    model.lm_head.weight.data.copy_(lm.lm_head.weight.data)
    inner.vision_model.requires_grad_(False)
    model.generation_config = lm_train.generation_config(tokenizer)
    # IdeficsProcessor does not keep a chat template through save/load; the tokenizer in the same folder
    # carries the identical template (see vlm.chat_template_of).
    tokenizer.chat_template = tok_lib.IDEFICS_CHAT_TEMPLATE
    image_processor = IdeficsImageProcessorPil(image_size=shapes.IMAGE_SIZE, image_mean=list(common.IMAGE_MEAN),
                                               image_std=list(common.IMAGE_STD))
    processor = IdeficsProcessor(image_processor=image_processor, tokenizer=tokenizer)
    processor.chat_template = tok_lib.IDEFICS_CHAT_TEMPLATE
    return model, processor


def encoder(processor: IdeficsProcessor) -> vlm.Encoder:
    """Training batches exactly as ``processor(images=[...], text=[render(prompt)])`` builds them, plus the reply."""
    tok = processor.tokenizer
    image_id = tok.convert_tokens_to_ids(tok_lib.IMAGE)
    # IdeficsProcessor writes bos and the image markers in front of the (space-stripped) text.
    head = f"{tok.bos_token}{tok_lib.FAKE}{tok_lib.IMAGE}{tok_lib.FAKE}"

    def render_ids(prompt: str) -> list[int]:
        return tok(head + vlm.render(processor, prompt).strip(" "), add_special_tokens=False)["input_ids"]

    cache = vlm.PromptCache(render_ids, tok)

    def encode(examples: list[vlm.Example], pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = vlm.text_batch(examples, cache, tok.pad_token_id)
        # Text from the image token on attends to the (one) image; bos and the marker before it do not.
        after_image = (batch["input_ids"] == image_id).long().cumsum(dim=1).clamp(max=1)
        batch["image_attention_mask"] = (after_image * batch["attention_mask"]).unsqueeze(-1)
        batch["pixel_values"] = pixels.unsqueeze(1)
        return batch

    return encode

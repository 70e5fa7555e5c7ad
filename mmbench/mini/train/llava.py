"""mini-llava (and mini-llava-blind): LlavaForConditionalGeneration = mini-clip's vision tower (frozen) + MLP
projector + mini-lm, trained on image-prompt-reply examples rendered with the processor's chat template."""

from __future__ import annotations

from transformers import (CLIPModel, LlamaForCausalLM, LlavaConfig, LlavaForConditionalGeneration,
                          LlavaProcessor, PreTrainedTokenizerFast)

from mmbench.mini.train import clip as clip_train
from mmbench.mini.train import lm as lm_train
from mmbench.mini.train import tokenizer as tok_lib
from mmbench.mini.train import vlm


def n_image_tokens(model: CLIPModel | LlavaForConditionalGeneration) -> int:
    """All vision tokens of a layer: the patches and the CLS token ("full" strategy); of mini-clip or of a LLaVA
    built on it."""
    v = model.config.vision_config
    return (v.image_size // v.patch_size) ** 2 + 1


def build(clip: CLIPModel, lm: LlamaForCausalLM,
          tokenizer: PreTrainedTokenizerFast) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    """mini-clip's vision weights + a fresh projector + mini-lm's weights; the vision tower is frozen."""
    config = LlavaConfig(
        vision_config=clip.config.vision_config.to_dict(), text_config=lm.config.to_dict(),
        image_token_index=tokenizer.convert_tokens_to_ids(tok_lib.IMAGE), projector_hidden_act="gelu",
        # All tokens of the penultimate layer: exactly what mini-flamingo's (one layer shorter) tower outputs.
        vision_feature_select_strategy="full", vision_feature_layer=vlm.VISION_FEATURE_LAYER,
        image_seq_length=n_image_tokens(clip),
        multimodal_projector_bias=True, tie_word_embeddings=False)
    model = LlavaForConditionalGeneration(config)
    model.model.vision_tower.load_state_dict(clip.vision_model.state_dict())
    model.model.language_model.load_state_dict(lm.model.state_dict())
    model.lm_head.load_state_dict(lm.lm_head.state_dict())
    model.model.vision_tower.requires_grad_(False)
    model.generation_config = lm_train.generation_config(tokenizer)
    tokenizer.chat_template = tok_lib.LLAVA_CHAT_TEMPLATE
    processor = LlavaProcessor(
        image_processor=clip_train.image_processor(), tokenizer=tokenizer,
        patch_size=clip.config.vision_config.patch_size, vision_feature_select_strategy="full",
        num_additional_image_tokens=1, chat_template=tok_lib.LLAVA_CHAT_TEMPLATE)
    return model, processor


def encoder(processor: LlavaProcessor, n_tokens: int, n_images: int = 1) -> vlm.Encoder:
    """Training batches exactly as ``processor(images, text=render(prompt))`` builds them, plus the reply
    (``n_images`` images per prompt: a clip's frames)."""
    tok = processor.tokenizer
    image = processor.image_token

    def render_ids(prompt: str) -> list[int]:
        # LlavaProcessor expands each <image> into one placeholder per vision token.
        text = vlm.render(processor, prompt, n_images).replace(image, image * n_tokens)
        return tok(text, add_special_tokens=False)["input_ids"]

    return vlm.prompt_encoder(render_ids, tok)

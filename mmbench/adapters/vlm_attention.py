"""How much a vision-language model looks at its image while it generates, read from the model itself.

- Inline image tokens (LLaVA-style): the share of attention mass that the positions producing each generated
  token put on the image-token positions, averaged over layers, heads and generated tokens (eager attention).
- Gated cross-attention (Flamingo-style: Idefics v1, Llama 3.2 Vision): the size of what the gated
  cross-attention blocks add to the residual stream, ||block output - block input|| / ||block input||,
  averaged over blocks and the positions producing generated tokens.
- Q-Former (BLIP-2, InstructBLIP with a decoder-only LM): the inline share above, on the query outputs the
  language model reads instead of patches, and beside it how focused the queries' cross-attention to the
  patches is: 1 - (entropy of each query's attention over the vision tokens) / log(vision tokens), averaged
  over cross-attention layers, heads and queries (0: every query reads all patches alike; 1: each reads one).

The measures are not comparable with each other; each result names its measure. The answer is
generated again greedily for the measurement, so this costs one extra generation per item.
"""

from __future__ import annotations

from typing import Any

from mmbench.errors import MMBenchError

SHARE = "image_attention_share"
GATE = "xattn_gate_ratio"
QUERY_SHARE = "qformer_query_share"
PATCH_FOCUS = "qformer_patch_focus"


def _qformer_cross_attention(model: Any) -> list[Any]:
    """The attention modules through which a Q-Former's queries read the vision tokens (none: no Q-Former)."""
    qformer = getattr(model, "qformer", None)
    if qformer is None or getattr(model, "query_tokens", None) is None:
        return []
    return [m for name, m in qformer.named_modules() if name.endswith("crossattention.attention")]


def _gated_layers(model: Any) -> list[Any]:
    """Idefics v1's gated_cross_attn_layers, or the decoder layers that cross-attend to the image (Mllama's
    MllamaCrossAttentionDecoderLayer: gated cross-attention and gated MLP, like a Flamingo block)."""
    inner = getattr(model, "model", model)
    own = list(getattr(inner, "gated_cross_attn_layers", None) or [])
    return own or [m for m in model.modules() if type(m).__name__.endswith("CrossAttentionDecoderLayer")]


def image_token_id(model: Any) -> int | None:
    cfg = model.config
    for key in ("image_token_id", "image_token_index"):
        if getattr(cfg, key, None) is not None:
            return int(getattr(cfg, key))
    return None


def measure_name(model: Any) -> str | None:
    """The measure this model supports, or None."""
    if _gated_layers(model):
        return GATE
    if image_token_id(model) is not None:
        return QUERY_SHARE if _qformer_cross_attention(model) else SHARE
    return None


def image_attention(model: Any, inputs: dict, new_ids: list[list[int]], eos_ids: list[int], pad_id: int | None,
                    new_token_type: int = 0) -> list[dict[str, float]]:
    """Per row of ``inputs`` (a left-padded processor batch on the model's device) whose greedy continuations
    are ``new_ids``: {measure: value}, the main measure (``measure_name``) first. ``new_token_type``: the token type of generated tokens where the inputs
    carry token_type_ids (Gemma 3 marks image tokens 1, text 0; PaliGemma marks its causal suffix 1)."""
    import torch

    measure = measure_name(model)
    if measure is None:
        raise MMBenchError(f"{type(model).__name__} has neither inline image tokens nor gated cross-attention: "
                           f"no attention probe for it")
    prompt = inputs["input_ids"]
    batch, plen = prompt.shape
    lengths = []  # generated tokens up to and including EOS
    for row in new_ids:
        n = next((i + 1 for i, t in enumerate(row) if t in eos_ids), None)
        n = n if n is not None else next((i for i, t in enumerate(row) if t == pad_id), len(row))
        lengths.append(max(n, 1))
    width = max(lengths)
    new = torch.full((batch, width), pad_id if pad_id is not None else 0, dtype=prompt.dtype, device=prompt.device)
    for r, row in enumerate(new_ids):
        new[r, :lengths[r]] = torch.tensor(row[:lengths[r]], dtype=prompt.dtype)
    ids = torch.cat([prompt, new], dim=1)
    gen_mask = torch.zeros((batch, width), dtype=inputs["attention_mask"].dtype, device=prompt.device)
    for r, n in enumerate(lengths):
        gen_mask[r, :n] = 1
    feed = dict(inputs, input_ids=ids, attention_mask=torch.cat([inputs["attention_mask"], gen_mask], dim=1))
    for key in ("image_attention_mask", "cross_attention_mask"):  # new tokens see the images the last prompt
        if key in feed:                                            # token sees (Idefics v1, Mllama)
            mask = feed[key]
            feed[key] = torch.cat([mask, mask[:, -1:].repeat(1, width, *([1] * (mask.dim() - 2)))], dim=1)
    for key in ("token_type_ids", "mm_token_type_ids"):
        if key in feed and feed[key].shape == prompt.shape:
            feed[key] = torch.cat([feed[key], torch.full_like(new, new_token_type if key == "token_type_ids"
                                                               else 0)], dim=1)
    # the positions whose outputs are the generated tokens: the last prompt position onwards
    rows = [list(range(plen - 1, plen - 1 + n)) for n in lengths]
    with torch.inference_mode():
        if measure == GATE:
            return [{GATE: v} for v in _gate_ratio(model, feed, rows)]
        cross = _qformer_cross_attention(model)
        shares, focus = _attention_share(model, feed, rows, ids == image_token_id(model), cross)
        if measure == QUERY_SHARE:
            return [{QUERY_SHARE: s, PATCH_FOCUS: f} for s, f in zip(shares, focus)]
        return [{SHARE: s} for s in shares]


def _gate_ratio(model: Any, feed: dict, rows: list[list[int]]) -> list[float]:
    import torch

    captured: list[torch.Tensor] = []

    def hook(module, args, kwargs, output):
        hidden_in = kwargs.get("hidden_states", args[0] if args else None)
        hidden_out = output[0] if isinstance(output, tuple) else output
        change = (hidden_out - hidden_in).float().norm(dim=-1)
        captured.append(change / hidden_in.float().norm(dim=-1).clamp(min=1e-12))

    handles = [layer.register_forward_hook(hook, with_kwargs=True) for layer in _gated_layers(model)]
    try:
        model(**feed)
    finally:
        for h in handles:
            h.remove()
    if not captured:
        raise MMBenchError("the gated cross-attention blocks did not run: cannot measure their output")
    ratio = torch.stack(captured).mean(0)  # [batch, seq], averaged over blocks
    return [float(ratio[r, pos].mean()) for r, pos in enumerate(rows)]


def _attention_share(model: Any, feed: dict, rows: list[list[int]], is_image: Any,
                     cross: list[Any]) -> tuple[list[float], list[float]]:
    """The share of attention on the image positions per row; and per row the patch focus of the Q-Former's
    cross-attention modules ``cross`` (read in the same forward; empty without them)."""
    import math

    import torch

    queries: list[torch.Tensor] = []  # per cross-attention layer: [batch, heads, queries, vision tokens]

    def hook(module, args, output):
        weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
        if weights is not None:
            queries.append(weights.float())

    before = model.config._attn_implementation
    model.set_attn_implementation("eager")  # only eager attention returns its weights
    handles = [m.register_forward_hook(hook) for m in cross]
    try:
        out = model(**feed, output_attentions=True)
    finally:
        for h in handles:
            h.remove()
        model.set_attn_implementation(before)
    focus: list[float] = []
    if cross:
        if not queries:
            raise MMBenchError(f"{type(model).__name__}: the Q-Former returned no cross-attention weights")
        entropy = torch.stack([-(w * w.clamp(min=1e-30).log()).sum(-1).mean((1, 2)) for w in queries]).mean(0)
        focus = (1.0 - entropy / math.log(queries[0].shape[-1])).clamp(0.0, 1.0).tolist()  # rounding: [0, 1]
    # wrappers (BLIP-2, InstructBLIP) return their language model's outputs inside their own
    own = getattr(out, "attentions", None) or getattr(getattr(out, "language_model_outputs", None), "attentions", None)
    attentions = [a for a in (own or ()) if a is not None]
    if not attentions:
        raise MMBenchError(f"{type(model).__name__} returned no attention weights")
    # [layers, batch, heads, query, key] -> mass on image keys per (batch, query), mean over layers and heads
    mass = torch.stack([(a.float() * is_image[:, None, None, :].float()).sum(-1).mean(1) for a in attentions]).mean(0)
    return [float(mass[r, pos].mean()) for r, pos in enumerate(rows)], focus

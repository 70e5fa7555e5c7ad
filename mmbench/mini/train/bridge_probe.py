"""What each bridge passes on: linear probes of shape, colour and position on the vision features a bridge reads
and on the tokens it hands to the language model.

The scenes are mini-shapes' zeroshot-test (600 single objects): the first 400 fit a ridge classifier per
attribute (the features flattened and standardised, one-hot targets, solved in closed form), the last 200 test
it. Chance: shape 1/5, colour 1/6, grid cell 1/9. A bridge that keeps an attribute linearly readable
in its output lets the language model use it; one that drops it cannot answer about it whatever the LM does.
Hand-written rather than scikit-learn's RidgeClassifier: the core dependencies do not include scikit-learn, and
the closed form is a few lines of torch.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import torch

from mmbench.mini import shapes
from mmbench.mini.train import vlm

N_FIT = 400
RIDGE = 100.0  # the L2 penalty on standardised features (the conclusions hold from 1 to 1000)
SPLIT = "zeroshot-test"


def _cell(v: float) -> int:
    return min(2, int(v) * 3 // shapes.IMAGE_SIZE)


@lru_cache(maxsize=1)
def scenes_and_labels() -> tuple[np.ndarray, dict[str, list[str]]]:
    """The probe's images (uint8) and per-attribute labels of their single object (generated once; read only)."""
    scenes = shapes.generate(SPLIT)
    objs = [s.objects[0] for s in scenes]
    labels = {"shape": [o["shape"] for o in objs], "colour": [o["colour"] for o in objs],
              "cell": [f"{_cell(o['x'])},{_cell(o['y'])}" for o in objs]}
    return np.stack([np.asarray(s.image, dtype=np.uint8) for s in scenes]), labels


@torch.no_grad()
def bridge_tokens(model: Any, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the vision tokens the bridge reads, the tokens it gives the language model) for a mini bridge: LLaVA's
    projected penultimate tokens, Idefics' perceiver latents (read by the gated cross-attention), BLIP-2's
    Q-Former outputs after the language projection."""
    inner = getattr(model, "model", None)
    if hasattr(model, "qformer"):  # Blip2ForConditionalGeneration
        vision = model.vision_model(pixel_values=pixels).last_hidden_state
        queries = model.qformer(query_embeds=model.query_tokens.expand(len(pixels), -1, -1),
                                encoder_hidden_states=vision).last_hidden_state
        return vision, model.language_projection(queries)
    if inner is not None and hasattr(inner, "perceiver_resampler"):  # IdeficsForVisionText2Text
        vision = inner.vision_model(pixel_values=pixels).last_hidden_state
        return vision, inner.perceiver_resampler(vision)
    if inner is not None and hasattr(inner, "multi_modal_projector"):  # LlavaForConditionalGeneration
        vision = inner.vision_tower(pixels, output_hidden_states=True).hidden_states[model.config.vision_feature_layer]
        return vision, inner.multi_modal_projector(vision)
    raise TypeError(f"{type(model).__name__} is not a mini bridge (LLaVA, Idefics or BLIP-2)")


def linear_probe(features: torch.Tensor, labels: dict[str, list[str]]) -> dict[str, float]:
    """Held-out accuracy of a ridge classifier per attribute: one-hot targets, closed form in the dual (the
    N_FIT x N_FIT kernel), float64, fit on the first N_FIT rows and tested on the rest."""
    x = features.detach().reshape(len(features), -1).double()
    x = (x - x[:N_FIT].mean(0)) / (x[:N_FIT].std(0) + 1e-6)
    fit, test = x[:N_FIT], x[N_FIT:]
    kernel = fit @ fit.T + RIDGE * torch.eye(N_FIT, dtype=x.dtype)
    out = {}
    for name, values in labels.items():
        classes = sorted(set(values))
        y = torch.tensor([classes.index(v) for v in values])
        dual = torch.linalg.solve(kernel, torch.nn.functional.one_hot(y[:N_FIT], len(classes)).double())
        predicted = (test @ (fit.T @ dual)).argmax(1)
        out[name] = round(float((predicted == y[N_FIT:]).double().mean()), 3)
    return out


def measure(model: Any) -> dict[str, dict[str, float]]:
    """Linear-probe accuracies on the vision features a mini bridge reads and on what it hands the LM."""
    images, labels = scenes_and_labels()
    vision, bridged = bridge_tokens(model.eval(), vlm.normalise(images))
    return {"vision features": linear_probe(vision, labels), "bridge output": linear_probe(bridged, labels)}


DESCRIPTION = (f"linear probes (ridge classifiers, penalty {RIDGE:g} on standardised features, fit on {N_FIT} "
               f"of mini-shapes {SPLIT}'s single objects, "
               f"accuracy on the other 200; chance: shape 0.2, colour 0.167, grid cell 0.111) of the vision "
               f"features the bridge reads and of the tokens it gives the language model "
               f"(mmbench.mini.train.bridge_probe)")

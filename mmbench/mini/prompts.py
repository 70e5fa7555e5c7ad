"""Prompt strings shared by the mini-suite task definitions and the training of the mini models.

The VLMs are trained on exactly what ``processor.apply_chat_template`` renders for these prompts, so a task
that uses other wording measures the model off its training distribution (which can be the point of a probe).
"""

from __future__ import annotations

# User prompt for VQA; ``{question}`` is the question text as stored in the data.
VQA_PROMPT = "{question}\nAnswer the question using a single word or phrase."
# User prompt for captioning.
CAPTION_PROMPT = "Provide a one-sentence caption for the provided image."
# Zero-shot classification templates for mini-clip; ``{c}`` is a class name ("red circle"). The class embedding
# is the normalised mean of the normalised template embeddings, as in the CLIP paper.
ZEROSHOT_TEMPLATES: tuple[str, ...] = ("a photo of a {c}.", "a {c}.")


def vqa_prompt(question: str) -> str:
    """The user prompt for one VQA question."""
    return VQA_PROMPT.format(question=question)


def zeroshot_prompts(class_name: str) -> list[str]:
    """The zero-shot prompts for one class name."""
    return [t.format(c=class_name) for t in ZEROSHOT_TEMPLATES]

"""The mini models' word-level tokenizer and the chat templates of the two VLM formats.

A word-level vocabulary (a few hundred words: the closed vocabulary of mini-shapes plus the prompts) keeps
sequences short, which is what makes training on two CPU cores possible. Built with the ``tokenizers``
library from a fixed word list, so it is deterministic, and wrapped in ``PreTrainedTokenizerFast``.
"""

from __future__ import annotations

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from mmbench.mini import prompts, shapes

PAD, UNK, IMAGE, BOS, EOS, FAKE = "<pad>", "<unk>", "<image>", "<s>", "</s>", "<fake_token_around_image>"
# Fixed order: ids 0..5. CLIP's text pooling treats eos_token_id == 2 as a legacy value (argmax of the ids), so
# eos must not be 2.
SPECIAL_TOKENS = (PAD, UNK, IMAGE, BOS, EOS, FAKE)

# LLaVA-1.5 style: the image placeholder (expanded by LlavaProcessor into one token per vision feature) comes
# first in the user turn. Renders "<s>USER: <image>\n{prompt} ASSISTANT:" for the evaluation message.
LLAVA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ 'USER: ' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ASSISTANT: ' }}{% else %}{{ 'SYSTEM: ' }}{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}{{ '<image>\\n' }}"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}"
    "{% if message['role'] != 'user' %}{{ '\\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ ' ASSISTANT:' }}{% endif %}"
)
# Idefics (v1): IdeficsProcessor itself writes "<s><fake_token_around_image><image><fake_token_around_image>"
# in front of each prompt when it is given images=[...] (a flat list, one image per prompt), so the template
# renders no image marker and no bos: the model sees "<s><fake><image><fake>User: {prompt}\nAssistant:".
IDEFICS_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ 'User: ' }}"
    "{% elif message['role'] == 'assistant' %}{{ '\\nAssistant: ' }}{% else %}{{ 'System: ' }}{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '\\nAssistant:' }}{% endif %}"
)
# Words of the chat templates and of common instructions, so that they are not <unk>.
_EXTRA_TEXT = (
    "USER: ASSISTANT: SYSTEM: User: Assistant: System: question answer photo image picture "
    "0 1 2 3 4 5 6 7 8 9 ten yes no"
)


def vocabulary(n_scenes: int = 3000, seed: int = shapes.DEFAULT_SEED) -> list[str]:
    """All words of the mini-shapes text (captions, questions, answers), the prompts and the templates, sorted."""
    pre = pre_tokenizers.Whitespace()
    texts = [prompts.vqa_prompt(""), prompts.CAPTION_PROMPT, _EXTRA_TEXT]
    texts += [t.format(c=c) for t in prompts.ZEROSHOT_TEMPLATES for c in shapes.CLASS_NAMES]
    texts += [a for alts in shapes._DISSENT.values() for a in alts] + list(shapes._DISSENT)
    texts += list(shapes.NUMBER_WORDS.values()) + list(shapes.POSITIONS.values())
    for scene in shapes.generate("train", seed=seed, n=n_scenes):
        texts += scene.captions
        texts += [q["question"] + " " + " ".join(q["answers"]) for q in scene.questions]
    words = {w.lower() for t in texts for w, _ in pre.pre_tokenize_str(t)}
    return sorted(words)


def vlm_vocabulary(words: list[str]) -> list[str]:
    """``words`` followed by the words only the VLMs' prompts use (mini-mc's instruction and its option
    letters A-D, kept upper case so they differ from the article "a"; mini-pope's questions), appended so
    that every id of ``words`` keeps its meaning: the VLMs start from mini-lm, whose embedding rows follow
    ``words``, and get new rows for these."""
    from mmbench.mini import questions

    pre = pre_tokenizers.Whitespace()
    texts = [questions.MC_INSTRUCTION, *(questions.pope_question(c) for c in shapes.CLASS_NAMES)]
    known = set(words)
    extra = sorted({w.lower() for t in texts for w, _ in pre.pre_tokenize_str(t)} - known)
    return list(words) + extra + list(questions.LETTERS)


def build_tokenizer(words: list[str], *, clip: bool = False) -> PreTrainedTokenizerFast:
    """A lowercasing word-level tokenizer over ``words``.

    ``clip=True`` adds "<s> ... </s>" around every text (CLIP pools the text at the eos token) and pads on the
    right (CLIP's text positions are absolute); otherwise no special tokens are added automatically (the chat
    templates write bos) and padding is on the left, as batched generation needs.
    """
    vocab = {tok: i for i, tok in enumerate(list(SPECIAL_TOKENS) + [w for w in words if w not in SPECIAL_TOKENS])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    # Join words with spaces and glue punctuation back ("circle ." -> "circle."); a word-level vocabulary has no
    # "##" pieces, so the WordPiece decoder does exactly that.
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    # upper-case option letters (the VLMs' vocabulary) are matched before lowercasing, as whole words only
    tok.add_tokens([AddedToken(w, normalized=False, single_word=True) for w in words
                    if len(w) == 1 and w.isupper()])
    if clip:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{BOS} $A {EOS}", special_tokens=[(BOS, vocab[BOS]), (EOS, vocab[EOS])])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, unk_token=UNK, bos_token=BOS, eos_token=EOS,
        padding_side="right" if clip else "left", model_max_length=512,
        extra_special_tokens={} if clip else {"image_token": IMAGE},
    )

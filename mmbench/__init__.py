"""mmbench: evaluate multimodal models (vision-language, speech, text-to-image) with numbers you can trust."""

__version__ = "0.1.0"

"""Training of the mini model zoo (mini-clip, mini-lm, mini-llava, mini-flamingo, mini-llava-blind) on mini-shapes.

One module per model family, ``vlm`` for what the two VLM bridges share, ``driver`` for the command line.
"""

"""The built-in mini suite: offline data and tiny reference models."""

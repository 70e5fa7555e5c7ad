"""Built-in task definitions (YAML), shipped as package data of mmbench."""

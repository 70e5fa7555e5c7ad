"""Built-in leaderboard definitions (YAML) and the committed mini-suite tables, shipped as package data."""

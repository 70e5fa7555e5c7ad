"""Task kinds (Python): classification, retrieval, ... Task definitions (YAML) live in the top-level tasks/."""

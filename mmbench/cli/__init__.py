"""The mmbench command line: run, list, score (and the commands later issues add)."""

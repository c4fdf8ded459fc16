"""Alignment tasks: teacher instances from the target and their scoring."""

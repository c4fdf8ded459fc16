"""Plugins written the way a third party would: one file each, registered on import.

``always_first`` adds an explainer; ``genre_count`` adds a task kind with its own answer type.
Load one in a run with ``recxbench run SUITE --plugin plugins.always_first`` (``tests/`` on the path).
"""

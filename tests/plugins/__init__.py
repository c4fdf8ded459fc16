"""Example plugins for tests, written the way a third party would: one file each, registered on
import (``--plugin plugins.<module>`` with ``tests/`` on ``sys.path``).

``always_first`` adds an explainer, ``genre_count`` a task kind with its own answer type,
``tsv_format`` a dataset format.
"""

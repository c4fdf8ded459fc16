"""lm-evaluation-harness interop: a run's instances as lm-eval tasks, lm-eval's answers back on the board.

* :mod:`bench.lmeval.export` — ``recxbench export-lmeval``: task YAMLs, JSON-lines datasets, utils.py;
* :mod:`bench.lmeval.bundle` — what the exported ``utils.py`` calls: the run's tasks and catalog rebuilt;
* :mod:`bench.lmeval.convert` — lm-eval outputs -> recxbench predictions (one rule for both directions);
* :mod:`bench.lmeval.importer` — ``recxbench import-lmeval``: check, score, republish;
* :mod:`bench.lmeval.model` — the lm-eval model ``recxbench`` (needs the ``lmeval`` extra).

Nothing here imports lm-eval except :mod:`bench.lmeval.model`, so exporting and importing work
without it installed.
"""

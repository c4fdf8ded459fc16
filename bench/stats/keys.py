"""What keys the statistics of a board: the seed of each table's draws and the published test names.

Shared by the board (:mod:`bench.evidence`) and ``recxbench compare`` (:mod:`bench.compare`), which
sit above the statistics and must draw and name them the same way.
"""

from __future__ import annotations

from bench.seeds import derive_seed

#: internal test id (:attr:`bench.stats.PairedTest.test`) -> the ``test`` value written in results.json
TEST_NAMES = {
    "randomization": "paired_randomization",
    "mcnemar": "mcnemar_exact",
    "bootstrap": "paired_bootstrap",
    "wilcoxon": "wilcoxon",
}


def stat_seed(seed: int, *parts: str) -> int:
    """A stable per-table seed: the same table gets the same draws on every machine.

    ``SeedSequence([seed, *crc32(parts)]).generate_state(1)[0]``, i.e. :func:`bench.seeds.derive_seed`
    with the table's names as the purpose.
    """
    return derive_seed(seed, *parts)

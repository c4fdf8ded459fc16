"""Statistics for explainer boards: confidence intervals, paired tests, corrections, ranks, claims.

Every score vector is *per instance*: ``a[i]`` and ``b[i]`` are two explainers' scores on the same
teacher instance ``i`` (check with :func:`assert_paired` / :func:`align_by_ids`). All resampling is
vectorised numpy, processed in chunks of at most ``_CHUNK_ELEMENTS`` (2^21) random numbers so memory
stays bounded (about 35 MB while n <= 2^21, 16 bytes per instance beyond), and seeded with
:class:`numpy.random.SeedSequence` from ``(seed, crc32(purpose), n, chunk index)`` only. So:

* the same inputs give the same random draws on every machine (no salted ``hash()``);
* the resample matrices do not depend on *which* vectors are tested, so a whole table of explainers
  shares one resample matrix per chunk (:func:`bootstrap_ci_many`, :func:`compare_all_pairs`) and the
  result equals testing each vector / pair on its own with the same seed.

Floating-point sums may differ in the last bits between BLAS builds; comparisons against an observed
statistic therefore use a tie tolerance (see :func:`paired_randomization`) so that exact ties in real
arithmetic (integer or grid-valued metrics) are always counted as ties.

Notation: ``n`` instances, ``R`` resamples, ``d_i = a_i - b_i``, ``mean(v) = sum_i v_i / n``.

Layout (one job per module; everything public is re-exported here, so ``from bench import stats;
stats.compare_all_pairs(...)`` is the way to use it):

* :mod:`bench.stats._core`: validation, seeding, resample matrices, chunking, BLAS thread guard;
* :mod:`bench.stats.ci`: bootstrap CIs of the mean (:func:`bootstrap_ci`, :func:`bootstrap_ci_many`,
  :func:`bootstrap_ci_tables`) and the Wilson interval;
* :mod:`bench.stats.paired`: :class:`PairedTest` and the paired tests (:func:`paired_test`);
* :mod:`bench.stats.all_pairs`: every pair of a table (:func:`compare_all_pairs`, :func:`compare_tables`);
* :mod:`bench.stats.align`: pairing checks (:func:`assert_paired`, :func:`align_by_ids`);
* :mod:`bench.stats.multiple`: Holm / Benjamini-Hochberg (:func:`adjust`);
* :mod:`bench.stats.ranking`: significance tiers and mean ranks;
* :mod:`bench.stats.claims`: ``"A > B on task/metric"`` claims;
* :mod:`bench.stats.keys`: the seed of a table's draws (:func:`stat_seed`) and the published test names;
* :mod:`bench.stats.ratio`: ratio metrics such as F1 (CIs and tests that resample the parts);
* :mod:`bench.stats.auc`: ROC AUC CIs and paired tests that recompute the AUC on every resample
  (the resampled-AUC kernel in :mod:`bench.stats.auc_kernel`);
* :mod:`bench.stats.identical`: pairs with identical answers, left untested and out of the family;
* :mod:`bench.stats.units`: clustered instances (resample users) and :func:`table_statistics`, the one
  call per (task, metric) table.
"""

from __future__ import annotations

import logging

from bench.errors import UserError as UserError
from bench.stats._core import Alternative, Correction, K, Method
from bench.stats.align import align_by_ids, assert_paired
from bench.stats.all_pairs import compare_all_pairs, compare_tables
from bench.stats.auc import auc_bootstrap_ci_many, compare_all_pairs_auc
from bench.stats.ci import bootstrap_ci, bootstrap_ci_many, bootstrap_ci_tables, wilson_ci
from bench.stats.claims import Claim, ComparisonLookup, comparison_index, evaluate_claim, parse_claim
from bench.stats.keys import TEST_NAMES, stat_seed
from bench.stats.multiple import adjust, benjamini_hochberg, holm
from bench.stats.paired import (
    PairedTest,
    mcnemar_exact,
    paired_bootstrap,
    paired_randomization,
    paired_test,
    wilcoxon_signed_rank,
)
from bench.stats.ranking import mean_rank, rank_groups, ranked_task_counts
from bench.stats.ratio import RatioParts, bootstrap_ci_ratio_many, compare_all_pairs_ratio, ratio_value
from bench.stats.units import TableStats, cluster_parts, table_statistics

logger = logging.getLogger(__name__)

__all__ = [
    "Alternative",
    "Claim",
    "ComparisonLookup",
    "Correction",
    "K",
    "Method",
    "PairedTest",
    "RatioParts",
    "TEST_NAMES",
    "TableStats",
    "adjust",
    "align_by_ids",
    "assert_paired",
    "auc_bootstrap_ci_many",
    "benjamini_hochberg",
    "bootstrap_ci",
    "bootstrap_ci_many",
    "bootstrap_ci_ratio_many",
    "bootstrap_ci_tables",
    "cluster_parts",
    "compare_all_pairs",
    "compare_all_pairs_auc",
    "compare_all_pairs_ratio",
    "compare_tables",
    "comparison_index",
    "evaluate_claim",
    "holm",
    "mcnemar_exact",
    "mean_rank",
    "paired_bootstrap",
    "paired_randomization",
    "paired_test",
    "parse_claim",
    "rank_groups",
    "ranked_task_counts",
    "ratio_value",
    "stat_seed",
    "table_statistics",
    "wilcoxon_signed_rank",
    "wilson_ci",
]

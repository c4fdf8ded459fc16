"""A realistic fake ``results.json`` / ``manifest.json`` pair for the report tests.

Five explainers (one not applicable to one task, one whose *name* is hostile HTML), three tasks
(one with a lower-is-better metric), comparisons for every pair on each main metric (from which
the rank groups are derived the way the stats layer does), and claims of all three verdicts.
:func:`make_explained_results` adds an ``explanation_rubric`` task with its ``explanations`` block
(judge, agreement, examples with a hostile explanation text); ``agreement=None`` gives the
never-checked judge.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

#: An explainer name that would run script if a renderer forgot to escape it.
HOSTILE_NAME = "<script>alert(1)</script> & co"
#: A dataset name that would retitle the page (and so be detectable in a browser) if unescaped.
HOSTILE_DATASET = "ml-100k <img src=x onerror=\"document.title='PWNED'\"> & <script>alert(1)</script>"
#: The explainer that has no result for ``history_reconstruction`` (shown as n/a).
NA_EXPLAINER = "embed-probe"

TASKS: dict[str, dict[str, Any]] = {
    "next_item": {
        "main_metric": "hr@10",
        "metrics": [
            ("hr@10", True, True, "Hit rate @10 against the target's top-1."),
            ("ndcg@10", True, False, "NDCG @10 against the target's top-1."),
            ("hallucination_rate", False, False, "Share of generated items not in the catalog."),
        ],
        "description": "Predict the target's next recommendation from the user's history.",
    },
    "item_ranking": {
        "main_metric": "ndcg@5",
        "metrics": [
            ("ndcg@5", True, False, "Graded NDCG of the predicted order of 5 candidates."),
            ("kendall_tau", True, False, "Kendall tau-b against the target's order."),
        ],
        "description": "Order 5 candidates the way the target would.",
    },
    "history_reconstruction": {
        "main_metric": "hcr@9",
        "metrics": [
            ("hcr@9", True, False, "History coverage of the 9 history items."),
            ("history_precision", True, False, "Share of predicted items that are in the history."),
        ],
        "description": "Recover the history from the target's user embedding.",
    },
}

#: explainer -> (access, {task: main-metric value}); other metrics are derived from it.
EXPLAINERS: dict[str, tuple[str, dict[str, float]]] = {
    "target-oracle": ("white-box", {"next_item": 0.98, "item_ranking": 0.95, "history_reconstruction": 0.71}),
    "recexplainer-h": (
        "embedding",
        {"next_item": 0.41, "item_ranking": 0.78, "history_reconstruction": 0.52},
    ),
    HOSTILE_NAME: ("behavior", {"next_item": 0.39, "item_ranking": 0.74, "history_reconstruction": 0.18}),
    NA_EXPLAINER: ("embedding", {"next_item": 0.22, "item_ranking": 0.69}),
    "random": ("behavior", {"next_item": 0.006, "item_ranking": 0.61, "history_reconstruction": 0.05}),
}

USERS = 283


def _half(value: float) -> float:
    return round(0.02 + 0.05 * value * (1 - value), 4)


def _p(diff: float) -> float:
    """A made-up corrected p-value that shrinks with the difference (significant past ~0.05)."""
    return round(min(1.0, 0.5 * 10 ** (-abs(diff) * 30)), 6)


def _groups(values: dict[str, float], significant: set[frozenset[str]]) -> dict[str, int]:
    """Group 1 = not significantly worse than the best; then repeat on the rest."""
    order = sorted(values, key=lambda n: -values[n])
    groups: dict[str, int] = {}
    group = 0
    while len(groups) < len(order):
        group += 1
        rest = [n for n in order if n not in groups]
        top = rest[0]
        for n in rest:
            if n == top or frozenset((n, top)) not in significant:
                groups[n] = group
    return groups


def make_results(*, dataset_name: str = HOSTILE_DATASET, seed: int = 0, shift: float = 0.0) -> dict[str, Any]:
    """A complete ``results.json`` dict (``shift`` perturbs the values to fake another seed)."""
    results: list[dict[str, Any]] = []
    comparisons: list[dict[str, Any]] = []
    for task, spec in TASKS.items():
        main = spec["main_metric"]
        values = {
            n: min(1.0, max(0.0, round(v[task] + shift * (i % 2 * 2 - 1), 4)))
            for i, (n, (_, v)) in enumerate(EXPLAINERS.items())
            if task in v
        }
        significant: set[frozenset[str]] = set()
        for a, b in itertools.combinations(values, 2):
            diff = round(values[a] - values[b], 4)
            p = _p(diff)
            sig = p < 0.05
            if sig:
                significant.add(frozenset((a, b)))
            comparisons.append(
                {
                    "task": task,
                    "metric": main,
                    "a": a,
                    "b": b,
                    "diff": diff,
                    "test": "paired_randomization",
                    "p_value": round(p / 4, 6),
                    "p_adjusted": p,
                    "significant": sig,
                }
            )
        groups = _groups(values, significant)
        for name, value in values.items():
            access = EXPLAINERS[name][0]
            for j, (metric, _hib, _, _) in enumerate(spec["metrics"]):
                if metric == "hallucination_rate":
                    if access == "white-box":
                        continue  # the oracle generates no text: metric not applicable
                    v = round(0.3 * (1 - value), 4)
                else:
                    v = value if metric == main else round(value * (0.9 - 0.1 * j), 4)
                h = _half(v)
                results.append(
                    {
                        "explainer": name,
                        "access": access,
                        "task": task,
                        "metric": metric,
                        "value": v,
                        "ci_low": round(max(0.0, v - h), 4),
                        "ci_high": round(min(1.0, v + h), 4),
                        "n": USERS,
                        "group": groups[name],
                    }
                )
    return {
        "schema_version": 1,
        "suite": "quick",
        "seed": seed,
        "alpha": 0.05,
        "correction": "holm",
        "dataset": {
            "name": dataset_name,
            "users": 943,
            "items": 1682,
            "interactions": 100000,
            "sha256": "9f2c" * 16,
        },
        "target": {
            "name": "sasrec",
            "config": {"hidden": 64, "layers": 2, "heads": 1, "dropout": 0.2, "max_len": 50, "epochs": 200},
            "test": {"hr@10": 0.1241, "ndcg@10": 0.0712, "mrr@10": 0.0519},
            "valid": {"hr@10": 0.1304, "ndcg@10": 0.0755, "mrr@10": 0.0551},
            "baselines": {"popularity": {"test": {"hr@10": 0.0583, "ndcg@10": 0.0291, "mrr@10": 0.0205}}},
            "train_seconds": 40.1,
        },
        "protocol": {
            "split": "chronological leave-one-out (last item test, second-to-last valid)",
            "history_len": 9,
            "users": {"align_train": 566, "align_valid": 94, "align_test": 283},
            "tasks": {
                "next_item": {"k": 10, "candidates": "full catalog"},
                "item_ranking": {
                    "n_candidates": 5,
                    "sampling": "uniform over the target's ranking of unseen items",
                },
                "history_reconstruction": {"k": 9},
            },
            "decoding": {"temperature": 0.0, "max_new_tokens": 128, "constrained": False},
        },
        "tasks": {
            task: {
                "main_metric": spec["main_metric"],
                "version": 1,
                "description": spec["description"],
                "config_sha256": f"{i + 1:x}" * 64,
                "metrics": [
                    {"name": n, "higher_is_better": hib, "binary": binary, "description": d}
                    for n, hib, binary, d in spec["metrics"]
                ],
            }
            for i, (task, spec) in enumerate(TASKS.items())
        },
        "explainers": {
            name: {"access": access, "summary": f"{name} explainer ({access} access)"}
            for name, (access, _) in EXPLAINERS.items()
        },
        "results": results,
        "comparisons": comparisons,
        "claims": [
            {
                "claim": "target-oracle > random on item_ranking/ndcg@5",
                "verdict": "supported",
                "p_adjusted": 0.0001,
                "diff": 0.34,
            },
            {
                "claim": f"{HOSTILE_NAME} > recexplainer-h on next_item/hr@10",
                "verdict": "refuted",
                "p_adjusted": 0.62,
                "diff": -0.02,
            },
            {
                "claim": "embed-probe > random on item_ranking/ndcg@5 (see https://example.org/claims)",
                "verdict": "inconclusive",
                "p_adjusted": 0.08,
                "diff": 0.08,
            },
        ],
    }


def make_manifest(*, seed: int = 0) -> dict[str, Any]:
    """A ``manifest.json`` dict matching :func:`make_results`."""
    return {
        "harness_version": "0.1.0",
        "git_sha": "3e5a7c1d9b2f4e6a8c0d1e2f3a4b5c6d7e8f9a0b",
        "created": "2025-03-14T09:26:53Z",
        "suite": "quick",
        "suite_sha256": "ab12" * 16,
        "seed": seed,
        "device": "cpu (16 cores)",
        "dataset_sha256": "9f2c" * 16,
        "target_checkpoint_sha256": "c0ffee" * 10 + "beef",
        "packages": {"numpy": "2.4.6", "torch": "2.5.1", "scipy": "1.14.1", "jinja2": "3.1.6"},
        "stages": {"data": 1.2, "target": 40.1, "instances": 3.4, "explainers": 95.0, "stats": 6.3},
        "task_config_sha256": {t: f"{i + 1:x}" * 64 for i, t in enumerate(TASKS)},
        "judge": {"name": "none"},
    }


def make_run_pair() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Two comparable runs (same suite, seeds 0 and 1)."""
    runs = [make_results(seed=0), make_results(seed=1, shift=0.01)]
    return runs, [make_manifest(seed=0), make_manifest(seed=1)]


def incomparable_pair() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Two runs whose item_ranking task configs differ."""
    a, b = make_results(), make_results(seed=1)
    b = copy.deepcopy(b)
    b["tasks"]["item_ranking"]["config_sha256"] = "0" * 64
    return [a, b], [make_manifest(), make_manifest(seed=1)]


# ----------------------------------------------------------------------------------- explanations

EXPLANATION_TASK = "explanation_rubric"
JUDGE_ID = "local:smollm2-135m/loglik"
#: An explanation text that would run script (or retitle the page) if a renderer forgot to escape it.
HOSTILE_EXPLANATION = (
    "Like: you loved <script>alert(1)</script> and "
    "<img src=x onerror=\"document.title='PWNED'\"> Hidden Vendetta 2 & co."
)
#: The agreement the shipped smollm2 judge really has: κ = 0, so the board must caution.
LOW_AGREEMENT = {
    "accuracy": 0.25,
    "kappa": 0.0,
    "weighted_kappa": 0.036,
    "spearman": 0.093,
    "n": 24,
    "graded_set": "ml-100k.jsonl",
    "date": "2026-11-23",
}
#: explainer -> shares of grades 0..3 (explainers not listed give no explanations: n/a).
GRADE_SHARES: dict[str, tuple[float, float, float, float]] = {
    "recexplainer-h": (0.125, 0.25, 0.375, 0.25),
    HOSTILE_NAME: (0.25, 0.375, 0.25, 0.125),
    "random": (0.5, 0.375, 0.125, 0.0),
}
EXPLANATION_METRICS = [
    ("rubric", True, False, "judge's rubric grade 0-3"),
    *((f"rubric_eq_{k}", k >= 2, True, f"descriptive: share of explanations graded {k}") for k in range(4)),
    ("judge_parse_failure", False, True, "judge reply held no readable grade (graded 0)"),
    ("cf_fidelity", True, False, "deleting the cited history items moves the item toward f's decision"),
    ("cites_items", True, True, "explanation names >= 1 history item"),
    ("cited_hallucination", False, False, "share of cited titles not in the shown history"),
    ("decision_correct", True, True, "decision stated at the start equals f's"),
    ("length_words", False, False, "descriptive: words in the explanation"),
]
LONG_EXPLANATION = (
    "Like. The history leans heavily on slow-burning thrillers with a convoy or a chase at their "
    "centre: Hidden Vendetta 2, Night Convoy and The Long Road all share the same premise of a small "
    "crew moving something dangerous across hostile country, and the user rated every one of them "
    "highly. Secret Convoy 4 continues that series directly, keeps the same lead and the same "
    "director, and the target model places sequels of already-liked series near the top of this "
    "user's ranking. The one comedy in the history (Summer Camp) is the exception rather than the "
    "rule, so it should not pull the decision the other way.\n\nIn short: same series, same genre."
)


def _explanations_block(agreement: dict[str, Any] | None) -> dict[str, Any]:
    history = ["Hidden Vendetta 2", "Night Convoy", "Heat & Dust <b>(1983)</b>", "Summer Camp"]

    def expl(text: str, grade: int | None, cf: float | None, ok: float | None, cited: list[str]) -> dict:
        return {
            "text": text,
            "grade": grade,
            "cf_fidelity": cf,
            "decision_correct": ok,
            "cited_titles": cited,
        }

    examples = [
        {
            "instance_id": "explanation_rubric/31/0",
            "user_id": "31",
            "history": history,
            "item": "Secret Convoy 4",
            "decision": "like",
            "explanations": {
                "recexplainer-h": expl(HOSTILE_EXPLANATION, 1, 0.083, 1.0, ["Hidden Vendetta 2"]),
                HOSTILE_NAME: expl(LONG_EXPLANATION, 3, 0.214, 1.0, ["Hidden Vendetta 2", "Night Convoy"]),
                "random": expl("Dislike. Nothing in common.", 0, 0.0, 0.0, []),
            },
        },
        {
            "instance_id": "explanation_rubric/77/1",
            "user_id": "77",
            "history": history[::-1],
            "item": "Summer Camp 3 & <i>Friends</i>",
            "decision": "dislike",
            "explanations": {
                "recexplainer-h": expl("Dislike: the user avoids comedies.", 2, -0.012, 1.0, []),
                HOSTILE_NAME: expl("Dislike, because of Night Convoy.", 2, 0.05, 1.0, ["Night Convoy"]),
                "random": expl("", None, None, None, []),
            },
        },
    ]
    return {EXPLANATION_TASK: {"judge": {"id": JUDGE_ID, "agreement": agreement}, "examples": examples}}


def make_explained_results(
    *, agreement: dict[str, Any] | None = LOW_AGREEMENT, **kwargs: Any
) -> dict[str, Any]:
    """:func:`make_results` plus the ``explanation_rubric`` task and its ``explanations`` block."""
    results = make_results(**kwargs)
    means = {n: round(sum(k * p for k, p in enumerate(shares)), 4) for n, shares in GRADE_SHARES.items()}
    significant: set[frozenset[str]] = set()
    for a, b in itertools.combinations(means, 2):
        diff = round(means[a] - means[b], 4)
        p = _p(diff / 3)
        if p < 0.05:
            significant.add(frozenset((a, b)))
        results["comparisons"].append(
            {
                "task": EXPLANATION_TASK,
                "metric": "rubric",
                "a": a,
                "b": b,
                "diff": diff,
                "test": "paired_randomization",
                "p_value": round(p / 4, 6),
                "p_adjusted": p,
                "significant": p < 0.05,
            }
        )
    groups = _groups(means, significant)
    for name, shares in GRADE_SHARES.items():
        values = {
            "rubric": means[name],
            **{f"rubric_eq_{k}": share for k, share in enumerate(shares)},
            "judge_parse_failure": 0.0,
            "cf_fidelity": round(0.02 + 0.05 * means[name], 4),
            "cites_items": round(1 - shares[0], 4),
            "cited_hallucination": round(0.1 * shares[1], 4),
            "decision_correct": round(1 - shares[0], 4),
            "length_words": 40.0 + 10 * means[name],
        }
        for metric, v in values.items():
            h = _half(min(v, 1.0)) * (3 if metric == "rubric" else 1)
            results["results"].append(
                {
                    "explainer": name,
                    "access": EXPLAINERS[name][0],
                    "task": EXPLANATION_TASK,
                    "metric": metric,
                    "value": v,
                    "ci_low": round(v - h, 4),
                    "ci_high": round(v + h, 4),
                    "n": 200,
                    "group": groups[name],
                }
            )
    results["tasks"][EXPLANATION_TASK] = {
        "main_metric": "rubric",
        "version": 1,
        "description": "Explain the target's like/dislike decision; a judge grades it 0-3.",
        "config_sha256": "e" * 64,
        "metrics": [
            {"name": n, "higher_is_better": hib, "binary": binary, "description": d}
            for n, hib, binary, d in EXPLANATION_METRICS
        ],
    }
    results["protocol"]["tasks"][EXPLANATION_TASK] = {"judge_id": JUDGE_ID, "max_users": 100}
    results["explanations"] = _explanations_block(agreement)
    return results

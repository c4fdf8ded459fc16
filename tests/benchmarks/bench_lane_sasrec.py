"""LANE's own claim at small scale: does the title-initialised encoder plus preference attention
improve SASRec on ML-100k? ``sasrec`` vs ``sasrec-title-init`` vs ``lane-sasrec``, 3 seeds.

Run on demand (one torch thread)::

    python tests/benchmarks/bench_lane_sasrec.py [--seeds 0 1 2] [--max-titles 50] [--epochs 200]

Protocol:

* leave-one-out split (``bench.data.dataset.leave_one_out``); test history = train + valid;
* **full ranking** over all items (history masked, ``evaluate_full_ranking`` rules), and LANE's
  **sampled** protocol: the test item among 100 negatives drawn uniformly from the items the user
  never interacted with, seeded (``bench.seeds.rng(0, "lane-sampled-negatives")``) and stored in
  ``docs/lane_negatives.npz`` (reused when present, so every model and seed ranks the same lists);
* HR@10 and NDCG@10 (``NDCG = 1 / log2(rank + 2)`` for rank < 10, rank 0-based);
* per-user metrics averaged over the seeds, then paired sign-flip randomization tests across users
  (``bench.stats.paired.paired_randomization``, 10,000 resamples) of each pair of models.

Item initialisation (deviation from LANE, stated in ``docs/LANE.md``): all-MiniLM-L6-v2 title
embeddings (384-d) reduced by PCA to SASRec's hidden size (64) and rescaled to SASRec's init std
(0.02), instead of a 384-d SASRec. Preferences: the forced-JSON extractor on each user's last
``--max-titles`` train titles (LANE: 200, minus the last three items; here the train sequence
already excludes valid and test), cached; embedded with MiniLM and projected with the same PCA.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
NEGATIVES = REPO / "docs" / "lane_negatives.npz"


def pca(x: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, components [dim, d])`` of ``x`` (rows = samples), by SVD of the centred data."""
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return mean, vt[:dim]


def sampled_negatives(split, n_neg: int = 100) -> np.ndarray:
    from bench import seeds

    if NEGATIVES.is_file():
        return np.load(NEGATIVES)["negatives"]
    rng = seeds.rng(0, "lane-sampled-negatives")
    n_items = split.dataset.n_items
    out = np.zeros((len(split.train), n_neg), dtype=np.int64)
    for r in range(len(split.train)):
        seen = set(split.train[r].tolist()) | {int(split.valid[r]), int(split.test[r])}
        pool = np.array([i for i in range(n_items) if i not in seen])
        out[r] = rng.choice(pool, size=n_neg, replace=False)
    np.savez(NEGATIVES, negatives=out)
    return out


def per_user(model, split, negatives: np.ndarray) -> dict[str, np.ndarray]:
    from bench.recommenders.evaluation import scores_with_exclusions

    hist = [np.concatenate([split.train[r], [split.valid[r]]]) for r in range(len(split.train))]
    tg = np.asarray(split.test)
    out = {k: np.zeros(len(hist)) for k in ("hr@10", "ndcg@10", "s_hr@10", "s_ndcg@10")}
    for start in range(0, len(hist), 256):
        sl = slice(start, start + 256)
        s = scores_with_exclusions(model, hist[sl], hist[sl], keep=tg[sl])
        rows = np.arange(s.shape[0])
        t = s[rows, tg[sl]]
        full_rank = (s > t[:, None]).sum(1)
        samp_rank = (s[rows[:, None], negatives[sl]] > t[:, None]).sum(1)
        for name, rank in (("", full_rank), ("s_", samp_rank)):
            hit = rank < 10
            out[f"{name}hr@10"][sl] = hit
            out[f"{name}ndcg@10"][sl] = np.where(hit, 1.0 / np.log2(rank + 2.0), 0.0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--max-titles", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--device", default="cpu", help="where the LLM extracts preferences (auto, cpu, cuda)")
    ap.add_argument(
        "--dtype",
        default=None,
        help="the LLM's dtype (default: bfloat16 on CUDA, float32 on CPU; part of the cache key)",
    )
    ap.add_argument(
        "--extract-only",
        action="store_true",
        help="extract (and cache) the preferences, then stop (no encoder needed)",
    )
    ap.add_argument("--max-users", type=int, default=None, help="with --extract-only: the first N users only")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from bench.data.dataset import leave_one_out
    from bench.data.resolve import resolve_dataset
    from bench.explainers.lane import extractor_params, load_lane_defaults
    from bench.llm.backbone import load_backbone
    from bench.llm.encoder import EncodingCache, load_encoder
    from bench.llm.preferences import PreferenceExtractor, summary
    from bench.recommenders.lane_sasrec import LaneSASRec, SASRecTitleInit
    from bench.recommenders.sasrec import SASRec
    from bench.stats.paired import paired_randomization
    from bench.wheels import cache_root

    ds = resolve_dataset("ml-100k")
    split = leave_one_out(ds)
    hidden = 64
    backbone = load_backbone("smollm2-135m", device=args.device, dtype=args.dtype)
    # the `lane` explainer's extraction settings (lane.yaml), with LANE's longer history
    ex = PreferenceExtractor(
        backbone, **{**extractor_params(load_lane_defaults()), "max_titles": args.max_titles}
    )
    t0 = time.perf_counter()
    users = split.train[: args.max_users] if args.extract_only and args.max_users else split.train
    prefs = ex.extract([[ds.titles[i] for i in seq] for seq in users])
    t_ext = time.perf_counter() - t0
    print(f"preferences: {summary(prefs)}; {t_ext:.0f} s, cache hits {ex.hits}, misses {ex.misses}")
    print(f"backbone: {backbone.device}, {backbone.dtype}")
    if args.extract_only:
        return
    enc, cache = load_encoder("minilm"), EncodingCache(cache_root() / "encodings")
    titles = cache.encode(enc, list(ds.titles))
    mean, comp = pca(titles, hidden)
    init = (titles - mean) @ comp.T
    init = (init / init.std() * 0.02).astype(np.float32)
    pv = cache.encode(enc, [v or "-" for p in prefs for v in p.values]).reshape(len(prefs), 5, -1)
    pv = (((pv - mean) @ comp.T) / ((titles - mean) @ comp.T).std() * 0.02).astype(np.float32)
    table = {}
    for r, p in enumerate(prefs):
        entry = (pv[r], np.array(p.usable, dtype=bool))
        table[tuple(int(x) for x in split.train[r])] = entry
        table[tuple(int(x) for x in np.concatenate([split.train[r], [split.valid[r]]]))] = entry

    negatives = sampled_negatives(split)
    models = {
        "sasrec": lambda: SASRec(ds.n_items, epochs=args.epochs),
        "sasrec-title-init": lambda: SASRecTitleInit(ds.n_items, item_init=init, epochs=args.epochs),
        "lane-sasrec": lambda: LaneSASRec(ds.n_items, item_init=init, prefs=table, epochs=args.epochs),
    }
    results: dict[str, dict[str, np.ndarray]] = {}
    for name, make in models.items():
        runs = []
        for seed in args.seeds:
            t1 = time.perf_counter()
            m = make()
            m.fit(split, seed=seed, disable_progress=True)
            runs.append(per_user(m, split, negatives))
            print(f"{name} seed {seed}: {time.perf_counter() - t1:.0f} s, load {os.getloadavg()[0]:.1f}")
        results[name] = {k: np.mean([r[k] for r in runs], axis=0) for k in runs[0]}
        print(name, {k: round(float(v.mean()), 4) for k, v in results[name].items()})
    names = list(models)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            for k in ("hr@10", "ndcg@10", "s_hr@10", "s_ndcg@10"):
                t = paired_randomization(results[a][k], results[b][k], resamples=10_000, seed=0)
                print(f"{a} vs {b} {k}: diff {t.diff:+.4f}, p {t.p_value:.4f} (n={t.n})")


if __name__ == "__main__":
    main()

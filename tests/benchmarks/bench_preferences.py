"""Forced-format preference extraction on ML-100k with SmolLM2-135M: how many users get five usable
preferences, how many values needed a repair, and how long it takes.

Run on demand: ``python tests/benchmarks/bench_preferences.py [USERS] [MAX_TITLES]``. The prompt
follows LANE's structure (a role, the task, requirements, the answer format, the history as a list
of titles) in recxbench's own words; the figures go to ``docs/PERFORMANCE.md``.
"""

from __future__ import annotations

import sys
import time

PROMPT = (
    "You are an expert at understanding what people enjoy. Below are the titles a user watched, "
    "oldest first. Summarise the five preferences this user most likely has, in a few words each, "
    "each different from the others, aimed at predicting what they will watch next. Answer only "
    'with a JSON object {{"Preference1": "...", ..., "Preference5": "..."}}.\n\n'
    "Titles watched: {titles}"
)


def main(users: int = 30, max_titles: int = 20) -> None:
    from bench.data.dataset import leave_one_out
    from bench.data.resolve import resolve_dataset
    from bench.llm.backbone import load_backbone
    from bench.llm.chat import format_prompt
    from bench.llm.forced_json import fill_json

    ds = resolve_dataset("ml-100k")
    split = leave_one_out(ds)
    backbone = load_backbone("smollm2-135m", device="cpu")
    prompts = []
    for row in range(users):
        titles = [ds.titles[i] for i in split.train[row][-max_titles:]]
        prompts.append(format_prompt(backbone, PROMPT.format(titles=titles)))
    keys = [f"Preference{i}" for i in range(1, 6)]
    t0 = time.perf_counter()
    filled = fill_json(backbone, prompts, keys, max_value_tokens=16, batch_size=8)
    dt = time.perf_counter() - t0
    complete = sum(f.complete for f in filled)
    repaired = sum(len(f.repaired) for f in filled)
    dropped = sum(len(f.dropped) for f in filled)
    print(
        f"users {users}: five usable {complete}/{users} ({complete / users:.1%}); values repaired "
        f"{repaired}/{5 * users}, dropped {dropped}/{5 * users}; {dt:.1f} s ({dt / users:.2f} s/user)"
    )
    for f in filled[:3]:
        print(f.text)


if __name__ == "__main__":
    main(*(int(x) for x in sys.argv[1:3]))

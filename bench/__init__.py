"""recxbench: a benchmark and evaluation harness for explainers of recommender systems.

The import package is ``bench``; the distribution and console script are ``recxbench``.
The flow is one-way: suite -> data -> target -> instances -> explainers -> scores -> stats -> report.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("recxbench")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+src"

__all__ = ["__version__"]

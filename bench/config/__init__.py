"""Suite configuration: YAML files -> one typed, frozen :class:`SuiteConfig` built once.

``schema`` holds every key with its default, the dataclasses and the value checks; ``load`` reads
the files, merges defaults, applies ``--set`` overrides and loads the suite's tasks. No other
module reads the suite by string keys.
"""

from bench.config.load import find_suite, load_suite, load_task, parse_set, task_search_path
from bench.config.schema import (
    SUITE_DEFAULTS,
    DatasetConfig,
    ExplainerSpec,
    StatsConfig,
    SuiteConfig,
    TargetConfig,
    TaskSpec,
    UsersConfig,
)

__all__ = [
    "SUITE_DEFAULTS",
    "DatasetConfig",
    "ExplainerSpec",
    "StatsConfig",
    "SuiteConfig",
    "TargetConfig",
    "TaskSpec",
    "UsersConfig",
    "find_suite",
    "load_suite",
    "load_task",
    "parse_set",
    "task_search_path",
]

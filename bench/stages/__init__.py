"""The stages of a run, in flow order; each fills its part of :class:`bench.state.RunState`.

``data`` (dataset, split, catalog) -> ``target`` (f, its card) -> ``instances`` (teacher
instances per task and user part) -> ``explain`` (every explainer's predictions). Each stage's
output is cached under ``RUN_DIR/cache/<stage>/<key>``, the key a hash of every input of the stage,
so a rerun skips finished stages and a crashed run resumes.
"""

from bench.stages.data import stage_data
from bench.stages.explain import PREDICTIONS_PROTOCOL, stage_explainers
from bench.stages.instances import INSTANCES_PROTOCOL, split_users, stage_instances
from bench.stages.target import stage_target, teacher_views

__all__ = [
    "INSTANCES_PROTOCOL",
    "PREDICTIONS_PROTOCOL",
    "split_users",
    "stage_data",
    "stage_explainers",
    "stage_instances",
    "stage_target",
    "teacher_views",
]

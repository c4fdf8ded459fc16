"""Fixtures shared by the test modules (pytest finds them here; nothing is imported by hand).

LLM-layer fixtures build nothing until a test asks for them, so modules without torch never pay:

* ``tiny`` — the session's tiny-random backbone (50 made-up titles, seed 0), built once in its own
  ``RECXBENCH_HOME`` for every module that uses it;
* ``single_thread`` — torch on one thread for a whole module (tiny matmuls are fastest, and far
  less noisy on a busy 2-core box, on one thread); a module opts in with
  ``pytestmark = pytest.mark.usefixtures("single_thread")``;
* ``llm_home`` — a fresh ``RECXBENCH_HOME`` for one test (never the user's cache), offline;
* ``restore_registries`` — whatever a test registers is forgotten after it (other tests see the
  registries as the package and the imported plugin modules left them).
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the harness never needs a hub; neither do its tests


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    """The session's tiny-random backbone (see :func:`llm_fixtures.tiny_backbone`)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("tokenizers")
    from llm_fixtures import tiny_backbone

    return tiny_backbone(tmp_path_factory.mktemp("llm-home"))


@pytest.fixture(scope="module")
def single_thread():
    """torch on one intra-op thread for the module's tests, restored afterwards."""
    from llm_fixtures import one_thread

    with one_thread():
        yield


@pytest.fixture
def llm_home(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """A private ``RECXBENCH_HOME`` for one test."""
    from llm_fixtures import private_home

    return private_home(tmp_path, monkeypatch)


@pytest.fixture
def restore_registries():
    from bench import registry

    regs = (registry.explainers, registry.recommenders, registry.task_kinds, registry.datasets)
    saved = [(r, dict(r._items), r._entry_points_loaded) for r in regs]
    yield
    for r, items, loaded in saved:
        r._items.clear()
        r._items.update(items)
        r._entry_points_loaded = loaded

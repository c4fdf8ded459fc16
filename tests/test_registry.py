"""The generic registry: registration, lazy imports, entry points, plugins and the typo errors."""

from __future__ import annotations

import sys
import types

import pytest

from bench import registry as reg
from bench.errors import UserError
from bench.registry import Registry, load_plugin


class Thing:
    pass


def test_register_get_and_decorator() -> None:
    r: Registry = Registry("thing")
    r.register("a", Thing)

    @r.register("b")
    class Other:
        pass

    assert r.get("a") is Thing and r.get("b") is Other
    assert r.names() == ["a", "b"] and list(r) == ["a", "b"]
    assert "a" in r and "c" not in r and 3 not in r


def test_lazy_string_is_imported_on_first_get(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("recx_lazy_probe")
    module.Target = Thing  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "recx_lazy_probe", module)
    r: Registry = Registry("thing")
    r.register("lazy", "recx_lazy_probe:Target")
    assert r.get("lazy") is Thing
    assert r.get("lazy") is Thing  # resolved once, then cached


def test_registering_another_object_under_a_taken_name_is_refused() -> None:
    r: Registry = Registry("thing")
    r.register("a", Thing)
    r.register("a", Thing)  # the same object again is fine (re-imports)
    with pytest.raises(ValueError, match="already registered"):
        r.register("a", object())


def test_unknown_name_suggests_close_matches() -> None:
    r: Registry = Registry("explainer")
    for name in ("popularity", "random", "surrogate-tree"):
        r.register(name, Thing)
    with pytest.raises(UserError) as err:
        r.get("populariti")
    assert "unknown explainer 'populariti'" in str(err.value) and "'popularity'" in str(err.value)
    with pytest.raises(UserError) as err:
        r.get("zzz")
    assert "popularity, random, surrogate-tree" in str(err.value)


def test_entry_points_are_listed_and_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("recx_ep_probe")
    module.Plugin = Thing  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "recx_ep_probe", module)

    class EntryPoint:
        name, value = "from-ep", "recx_ep_probe:Plugin"

    seen = []

    def fake_entry_points(*, group: str) -> list:
        seen.append(group)
        return [EntryPoint()]

    monkeypatch.setattr(reg, "entry_points", fake_entry_points)
    r: Registry = Registry("explainer", entry_point_group="recxbench.explainers")
    assert r.names() == ["from-ep"] and r.get("from-ep") is Thing
    assert seen == ["recxbench.explainers"]  # loaded once


def test_load_plugin_imports_or_says_why() -> None:
    load_plugin("json")  # any importable module
    with pytest.raises(UserError, match="cannot import plugin module 'no_such_recx_plugin'"):
        load_plugin("no_such_recx_plugin")


def test_builtins_resolve() -> None:
    from bench.data.sources import DatasetSource
    from bench.explainers.base import Explainer
    from bench.tasks.base import Task

    for name in reg.explainers.names():
        cls = reg.explainers.get(name)
        assert issubclass(cls, Explainer) and cls.name == name, name
    for name in reg.task_kinds.names():
        cls = reg.task_kinds.get(name)
        assert issubclass(cls, Task) and cls.kind == name, name
    for name in reg.recommenders.names():
        assert reg.recommenders.get(name).name == name
    assert {"atomic", "ml-100k", "ml-1m", "tiny", "opaque"} <= set(reg.datasets.names())
    assert all(isinstance(reg.datasets.get(n), DatasetSource) for n in ("atomic", "tiny"))

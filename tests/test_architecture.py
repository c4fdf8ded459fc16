"""The house rules that keep the code one-way and small, checked on the source itself.

* the import graph of ``bench`` has no cycle (a package's ``__init__`` re-exporting its own
  submodules is not one) and no arrow from a lower layer to a higher one — the layers follow the
  flow ``suite -> data -> target -> instances -> explainers -> scores -> stats -> report``;
* no module is over ~400 lines;
* the suite is read through :class:`bench.config.SuiteConfig`, never by string keys;
* one device resolver, one atomic write, one seed derivation; no ``print`` in library code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "bench"

#: layer of each module prefix, lowest first; a module may import its own layer and lower ones only
LAYERS: tuple[tuple[str, ...], ...] = (
    # foundation: records, hashing, files, seeds, devices, the registry, pure metric/stat kernels
    (
        "bench",
        "bench.errors",
        "bench.types",
        "bench.answers",
        "bench.hashing",
        "bench.io",
        "bench.resources",
        "bench.seeds",
        "bench.device",
        "bench.registry",
        "bench.wheels",
        "bench.metrics",
        "bench.stats",
    ),
    ("bench.config",),  # suite
    ("bench.data",),  # data
    ("bench.recommenders",),  # target
    ("bench.llm", "bench.judge"),  # language models (used by tasks' judges and by explainers)
    ("bench.tasks",),  # instances and their scoring
    ("bench.access", "bench.explainers"),  # explainers
    ("bench.state",),  # what the stages hand each other
    ("bench.stages",),  # data -> target -> instances -> explain, cached
    # scores, stats; bench.reload reopens a finished run (its suite, then the cached stages)
    ("bench.scoring", "bench.evidence", "bench.manifest", "bench.results", "bench.reload"),
    # report; bench.rescore republishes a run from its samples files, bench.lmeval exports a run to
    # lm-eval and imports lm-eval's answers (through rescore), bench.api reads boards as DataFrames
    (
        "bench.report",
        "bench.compare",
        "bench.publish",
        "bench.export",
        "bench.rescore",
        "bench.lmeval",
        "bench.api",
    ),
    ("bench.runner",),  # the whole flow
    ("bench.cli", "bench.__main__"),  # the front door
)


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        if "_tasks" in path.parts:
            continue
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """``bench`` modules imported by ``name`` (type-checking and function-level imports included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def resolve(dotted: str) -> str | None:
        while dotted and dotted not in MODULES:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # ``from pkg import sub`` imports the submodule; ``from mod import name`` the module
            targets = [
                f"{module}.{a.name}" if f"{module}.{a.name}" in MODULES else module for a in node.names
            ]
        for t in targets:
            if t.startswith("bench"):
                mod = resolve(t)
                if mod and mod != name:
                    found.add(mod)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def layer(module: str) -> int:
    best, rank = -1, -1
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            covers = module == p or (p != "bench" and module.startswith(p + "."))  # the root: itself only
            if covers and len(p) > best:
                best, rank = len(p), i
    if rank < 0:
        raise AssertionError(f"module {module} is in no layer: add it to LAYERS in {__file__}")
    return rank


def _is_reexport(src: str, dst: str) -> bool:
    """A package ``__init__`` importing one of its own submodules (re-exporting it)."""
    return MODULES[src].name == "__init__.py" and dst.startswith(src + ".")


def test_every_module_has_a_layer() -> None:
    for name in MODULES:
        layer(name)


def _upward(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{src} (layer {layer(src)}) imports {dst} (layer {layer(dst)})"
        for src, dsts in graph.items()
        for dst in sorted(dsts)
        if layer(dst) > layer(src)
    ]


def test_no_arrow_runs_back_up_the_flow() -> None:
    assert _upward(GRAPH) == []


def test_the_checks_can_fail() -> None:
    """The import finder sees real edges, and an upward edge is reported."""
    assert "bench.stages" in GRAPH["bench.runner"] and "bench.config" in GRAPH["bench.state"]
    assert "bench.explainers.base" in GRAPH["bench.stages.explain"]
    assert _upward({"bench.data.dataset": {"bench.report.html"}}) != []


#: registries whose entries are resolved by ``.get`` at run time, and the layer of what they hold
REGISTRY_LAYERS = {
    "explainers": "bench.explainers",
    "task_kinds": "bench.tasks",
    "recommenders": "bench.recommenders",
    "datasets": "bench.data",
    "recipes": "bench.data",
}


def test_registry_lookups_do_not_reach_up() -> None:
    """``registry.<kind>.get(name)`` imports the entry: only modules at or above its layer may ask."""
    bad = []
    for name, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        for reg, home in REGISTRY_LAYERS.items():
            if f"{reg}.get(" in text and layer(name) < layer(home):
                bad.append(f"{name} resolves {reg} entries (layer {layer(home)})")
    assert bad == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_import_graph_has_no_cycle() -> None:
    graph = {s: {d for d in ds if not _is_reexport(s, d)} for s, ds in GRAPH.items()}
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_cycle() -> None:
    """The check above can fail: a two-module circle is found."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_400_lines(name: str) -> None:
    n = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert n <= 400, f"{name} has {n} lines: past ~400 lines a module is two things"


def _sources(exclude: tuple[str, ...] = ()) -> dict[str, str]:
    return {
        n: p.read_text(encoding="utf-8")
        for n, p in MODULES.items()
        if not any(n == e or n.startswith(e + ".") for e in exclude)
    }


def test_the_suite_is_read_through_typed_config_only() -> None:
    offenders = [
        n
        for n, text in _sources(exclude=("bench.config",)).items()
        if "suite.raw" in text or "as_dict()[" in text or "SUITE_DEFAULTS" in text
    ]
    assert offenders == []


def test_one_device_resolver_and_one_seed_derivation() -> None:
    defines = [n for n, t in _sources().items() if "def resolve_device" in t]
    assert defines == ["bench.device"]
    # bench.data.synthetic: the generated datasets' own streams (random.Random of the generator's
    # ``seed`` parameter) are part of the datasets' definition, pinned by hashes in the data tests
    seeding = []
    for name, text in _sources(exclude=("bench.seeds", "bench.data.synthetic")).items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call):
                f = node.func
                called = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if called in ("SeedSequence", "default_rng", "Random", "seed"):
                    seeding.append(f"{name}:{node.lineno} {called}()")
    assert seeding == []


def test_no_print_in_library_code() -> None:
    offenders = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(f"{name}:{node.lineno}")
    assert offenders == []


def test_one_atomic_write() -> None:
    """Files and directories are put in place by ``bench.io`` alone (temporary sibling + rename)."""
    offenders = [
        n
        for n, t in _sources(exclude=("bench.io",)).items()
        if any(x in t for x in ("os.replace(", "mkstemp(", "mkdtemp(", "NamedTemporaryFile("))
    ]
    assert offenders == []

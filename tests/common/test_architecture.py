"""The architecture's two promises, checked on the code itself: `common/` never imports
`domains/` and has no import circle; a fifth domain is one folder and one registry line
(every command runs on it, and the reliability tests pick it up)."""

from __future__ import annotations

import ast
import importlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import common.domain
from common import cli
from common.domain import domain_names

REPO = Path(__file__).resolve().parents[2]
COMMON = REPO / "common"
# An import circle that another change in flight removes (the range test on the one
# training path); once it is gone the test below says to delete this entry.


def imported_names(path: Path) -> set[str]:
    """Every module an import in `path` names, function-level imports included; for
    `from a import b` both `a` and `a.b` (b may be a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def common_modules() -> dict[str, Path]:
    return {f"common.{p.stem}": p for p in sorted(COMMON.glob("*.py")) if p.stem != "__init__"}


def import_graph() -> dict[str, set[str]]:
    modules = common_modules()
    return {name: {n for n in imported_names(path) if n in modules and n != name}
            for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None when the graph is acyclic."""
    state: dict[str, str] = {}  # "open" while on the path, "done" after
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_module_of_common_imports_domains():
    offenders = {name: sorted(n for n in imported_names(path)
                              if n == "domains" or n.startswith("domains."))
                 for name, path in common_modules().items()}
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"common/ imports domains/: {offenders}"


def test_the_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_common_modules_import_no_circle():
    graph = import_graph()
    cycle = find_cycle(graph)
    assert cycle is None, f"import circle in common/: {' -> '.join(cycle)}"


def test_makefile_domains_are_the_registry():
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = subprocess.run(["make", "-s", "-C", str(REPO), "help"], capture_output=True,
                         text=True, check=True).stdout
    (line,) = [x for x in out.splitlines() if x.strip().startswith("domains:")]
    assert line.split(":", 1)[1].split() == domain_names()


# -- a fifth domain: one folder, one registry line --------------------------------------
FIFTH_COMMAND = '''

def cmd_hello(argv):
    print("hello from the fifth domain:", " ".join(argv))
    return 0


DOMAIN = dataclasses.replace(TOY, commands=(
    Command("toy-hello", "WORDS ...", "greet", cmd_hello),))
'''


@pytest.fixture
def fifth_domain(tmp_path, monkeypatch):
    """The toy domain as its own package in a folder of tmp_path, plus one registry entry."""
    package = tmp_path / "packages" / "fifth_domain"
    package.mkdir(parents=True)
    source = (REPO / "tests" / "toy_domain.py").read_text(encoding="utf-8")
    source = source.replace("from common.domain import DataBundle, Domain",
                            "import dataclasses\n\nfrom common.domain import Command, "
                            "DataBundle, Domain")
    (package / "__init__.py").write_text(source + FIFTH_COMMAND, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "packages"))
    monkeypatch.setitem(common.domain.DOMAIN_MODULES, "toy", "fifth_domain")
    yield "toy"
    importlib.invalidate_caches()


def test_a_fifth_domain_runs_every_command(fifth_domain, tmp_path, capsys):
    out = tmp_path / "runs"
    data = common.domain.get_domain("toy").write_demo_data(tmp_path / "data")
    tiny = ["--smoke", "--data", str(data), "--output", str(out), "--monitor-every", "0",
            "--log-lr-every", "0"]
    assert cli.main(["train", "toy", *tiny, "--epochs", "1", "--run-name", "t"]) == 0
    summary = json.loads((out / "toy" / "t" / "summary.json").read_text())
    assert summary["status"] == "completed" and "toy linear regression, 256" in summary["data"]

    assert cli.main(["lr-find", "toy", *tiny, "--num-steps", "12", "--run-name", "f"]) == 0
    assert "train at it: lrsuite train toy --lr" in capsys.readouterr().out
    assert any((out / "toy" / "f").rglob("*.png"))

    assert cli.main(["sweep", "toy", *tiny, "--name", "s", "--rates", "0.01,0.1",
                     "--schedules", "constant", "--optimizers", "",
                     "--range-test-steps", "10"]) == 0
    report = (out / "toy" / "sweeps" / "s" / "report.md").read_text()
    assert "one Dense unit over 8 features" in report  # the domain's own description

    assert cli.main(["tune", "toy", *tiny, "--tuner", "random", "--max-trials", "2",
                     "--max-epochs", "1", "--name", "k"]) == 0
    best = json.loads((out / "toy" / "tuning" / "k" / "best.json").read_text())
    assert best["domain"] == "toy" and best["trials"] == 2

    assert cli.main(["demo", "--output", str(out / "demo"), "--domains", "toy"]) == 0
    assert (out / "demo" / "toy" / "sweeps" / "demo" / "report.md").is_file()

    capsys.readouterr()
    assert cli.main(["toy-hello", "a", "b"]) == 0  # the command the domain declares
    assert capsys.readouterr().out.strip() == "hello from the fifth domain: a b"
    assert cli.main(["--help"]) == 0
    assert re.search(r"toy-hello WORDS \.\.\. +greet", capsys.readouterr().out)


def test_the_reliability_tests_take_their_domains_from_the_registry(fifth_domain):
    import tests.reliability.conftest as reliability

    try:
        assert "toy" in importlib.reload(reliability).DOMAINS
    finally:
        common.domain.DOMAIN_MODULES.pop("toy")
        assert "toy" not in importlib.reload(reliability).DOMAINS

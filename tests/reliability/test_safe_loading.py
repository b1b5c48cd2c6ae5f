"""Saved models load in Keras's safe mode: a `.keras` file that carries Python code (a
Lambda layer) is refused with one line, exit 2, and its code never runs.

The suite loads a model.keras in one place, `lrsuite translate --run DIR`
(domains/translation/decoding.py). `--resume` restores BackupAndRestore weights from
backup/, never model.keras, so it deserialises no layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import keras

from domains.translation.tokenizer import Vocabularies
from tests.reliability.conftest import REPO, run_lrsuite, tail

SOURCE_FOLDERS = ("common", "domains")


def _load_calls() -> list[tuple[str, ast.Call]]:
    calls = []
    for folder in SOURCE_FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in ("load_model", "enable_unsafe_deserialization"):
                    calls.append((f"{path.relative_to(REPO)}:{node.lineno}", node))
    return calls


def test_no_model_loader_turns_safe_mode_off():
    calls = _load_calls()
    assert any(where.startswith("domains/translation/decoding.py") for where, _ in calls)
    for where, call in calls:
        func = call.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id
        assert name != "enable_unsafe_deserialization", where
        for keyword in call.keywords:
            if keyword.arg == "safe_mode":  # absent means Keras's default, True
                assert isinstance(keyword.value, ast.Constant) and keyword.value.value is True, where
        assert not any(keyword.arg is None for keyword in call.keywords), f"{where}: **kwargs"


def _lambda_model(marker: Path) -> keras.Model:
    """A model whose Lambda layer creates `marker` whenever its code runs."""
    touch = eval(  # the point: code stored in a model file
        f"lambda x: (__import__('pathlib').Path({str(marker)!r}).touch(), x)[1]")
    inputs = keras.Input((4,), name="source_ids")
    return keras.Model(inputs, keras.layers.Lambda(touch, name="payload")(inputs))


def test_translate_refuses_a_model_with_a_lambda_layer(tmp_path):
    run_dir = tmp_path / "run"
    marker = tmp_path / "code-ran"
    Vocabularies(source=["", "[UNK]", "ein"], target=["", "[UNK]", "[START]", "[END]", "one"],
                 lowercase=False, max_source_length=8, max_target_length=8).save(run_dir / "vocab")
    _lambda_model(marker).save(run_dir / "model.keras")
    marker.unlink()  # building the model ran the code once, here: the marker works
    result = run_lrsuite("translate", "--run", run_dir, "ein Haus .")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, tail(result)
    assert len(lines) == 1 and lines[0].startswith("lrsuite: error: "), tail(result)
    assert str(run_dir / "model.keras") in lines[0] and "Lambda" in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert not marker.exists()  # the layer's code never ran
    assert result.stdout == ""

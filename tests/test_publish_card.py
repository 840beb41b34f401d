"""The regenerate-all command's model card: republishing the same tensors keeps the comparison it was published with."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "publish_model.py"


@pytest.fixture
def publish(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    spec = importlib.util.spec_from_file_location("publish_model_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "REPO", tmp_path)
    (tmp_path / "docs").mkdir()
    return module


CARD = """# Model card

## Against the model it replaces (the same images, paired)
| set | images | previous | this model |
|---|---:|---:|---:|
| ISIC 2017 validation | 150 | 0.8583 | 0.8559 |

## Full-resolution photos
numbers
"""


def test_a_republication_keeps_the_standing_comparison(publish, tmp_path: Path) -> None:
    (tmp_path / "docs" / "MODEL_CARD.md").write_text(CARD, encoding="utf-8")
    text = publish.section_of_card("## Against the model it replaces")
    assert text.startswith("| set | images | previous | this model |")
    assert "0.8559" in text and "Full-resolution" not in text
    same = publish.PreviousModel(name="v2", sha256="same", dice={})
    assert publish.previous_text(same, "same", {}) == text


def test_without_a_card_a_republication_says_where_the_comparison_is(publish) -> None:
    assert publish.section_of_card("## Against the model it replaces") == ""
    same = publish.PreviousModel(name="v2", sha256="same", dice={})
    assert "republication of `v2`" in publish.previous_text(same, "same", {})

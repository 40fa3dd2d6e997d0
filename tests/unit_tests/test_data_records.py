from pathlib import Path

import pytest
from fakes import write_jsonl
from pydantic import ValidationError

from mixaug import DataError, Example, SyntheticRecord, check_labels, get_spec, load_examples


def test_jsonl_and_csv(tmp_path: Path) -> None:
    j = write_jsonl(tmp_path / "a.jsonl", [{"text": " hi ", "label": "positive", "extra": 1}])
    assert load_examples(j) == [Example(text="hi", label="positive")]
    c = tmp_path / "a.csv"
    c.write_text('label,text\nnegative,"so, so bad"\n', encoding="utf-8")
    assert load_examples(c) == [Example(text="so, so bad", label="negative")]


def test_integer_labels_become_strings(tmp_path: Path) -> None:
    j = write_jsonl(tmp_path / "a.jsonl", [{"text": "x", "label": 1}, {"text": "y", "label": 0}])
    spec = check_labels(load_examples(j), get_spec("generic"))
    assert spec.mapping == {"0": "0", "1": "1"}


def test_line_numbers_in_errors(tmp_path: Path) -> None:
    j = tmp_path / "a.jsonl"
    j.write_text('{"text": "x", "label": "positive"}\n\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"a\.jsonl:3: expected a JSON object"):
        load_examples(j)


def _record(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "x",
        "text": "t",
        "label": "positive",
        "soft_label": {"positive": 0.7, "negative": 0.3},
        "generated_label": "positive",
        "label_mass": 0.9,
        "anchors": [],
        "anchor_strategy": "random",
        "model": "m",
        "prompt_hash": "h",
        "seed": 0,
        "task": "sst2",
        "soft_label_source": "inline",
    }
    return base | kw


def test_record_validation() -> None:
    SyntheticRecord.model_validate(_record())
    with pytest.raises(ValidationError, match="sum"):
        SyntheticRecord.model_validate(_record(soft_label={"positive": 0.7, "negative": 0.2}))
    with pytest.raises(ValidationError, match="argmax"):
        SyntheticRecord.model_validate(_record(label="negative"))
    with pytest.raises(ValidationError, match="soft_label_source"):
        SyntheticRecord.model_validate(_record(soft_label_source="guess"))
    with pytest.raises(ValidationError, match="api_key"):
        SyntheticRecord.model_validate(_record(api_key="secret"))

from pathlib import Path

import pytest

from mixaug import SpecError, TaskSpec, get_spec, load_spec_yaml
from mixaug.specs import BUILTIN_SPECS

PAPER = {
    "sst2": ("movie review", "sentiment", {"positive": "positive", "negative": "negative"}),
    "cr": ("customer review", "sentiment", {"positive": "positive", "negative": "negative"}),
    "mpqa": ("text", "sentiment", {"positive": "positive", "negative": "negative"}),
    "subj": ("text", "objective", {"subjective": "no", "objective": "yes"}),
    "cola": ("text", "grammar", {"acceptable": "correct", "unacceptable": "incorrect"}),
    "trec6": (
        "question",
        "type",
        {
            "ABBR": "abbreviation",
            "DESC": "description",
            "ENTY": "entity",
            "HUM": "human",
            "LOC": "location",
            "NUM": "numeric",
        },
    ),
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_builtin_specs_follow_the_paper(name: str) -> None:
    text_type, label_type, verbalizer = PAPER[name]
    spec = get_spec(name)
    assert (spec.text_type, spec.label_type, spec.verbalizer) == (text_type, label_type, verbalizer)


def test_generic_is_identity_over_data_labels() -> None:
    spec = get_spec("generic").with_labels(["b", "a"])
    assert spec.mapping == {"b": "b", "a": "a"}
    assert spec.label_for_word("A") == "a"


def test_header_lists_words_with_or() -> None:
    assert get_spec("trec6").header() == (
        "Each item in the following list contains a question and the respective type. "
        "Type is one of 'abbreviation', 'description', 'entity', 'human', 'location' or "
        "'numeric'."
    )
    assert get_spec("subj").header().endswith("Objective is one of 'no' or 'yes'.")


@pytest.mark.parametrize(
    ("verbalizer", "needle"),
    [
        ({"a": "same", "b": "Same"}, "both map to the word"),
        ({"a": "", "b": "x"}, "empty word"),
        ({"a": "  ", "b": "x"}, "empty word"),
        ({"a": "x)", "b": "y"}, "delimits the prompt"),
        ({"a": "x:y", "b": "y"}, "delimits the prompt"),
        ({"a": "it's", "b": "y"}, "delimits the prompt"),
        ({"a": "x\ny", "b": "y"}, "delimits the prompt"),
        ({"a": "only"}, "at least two labels"),
    ],
)
def test_bad_verbalizers_are_rejected(verbalizer: dict[str, str], needle: str) -> None:
    with pytest.raises(SpecError, match=needle):
        TaskSpec(text_type="text", label_type="label", verbalizer=verbalizer)


def test_text_type_with_delimiter_is_rejected() -> None:
    with pytest.raises(SpecError, match="text_type"):
        TaskSpec(text_type="review:", label_type="x", verbalizer={"a": "a", "b": "b"})


def test_unknown_task_lists_valid_names() -> None:
    with pytest.raises(SpecError) as e:
        get_spec("sst-2")
    for name in BUILTIN_SPECS:
        assert name in str(e.value)


def test_spec_from_yaml(tmp_path: Path) -> None:
    p = tmp_path / "hunger.yaml"
    p.write_text(
        "text_type: utterance\nlabel_type: intent\nverbalizer:\n  food: hungry\n  other: other\n",
        encoding="utf-8",
    )
    spec = get_spec(str(p))
    assert spec.name == "hunger"
    assert spec.item_line("I could eat a horse", "food") == (
        "Utterance: I could eat a horse (Intent: hungry)"
    )


def test_yaml_errors_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("text_type: [unclosed\n", encoding="utf-8")
    with pytest.raises(SpecError, match="YAML"):
        load_spec_yaml(bad)
    missing = tmp_path / "missing.yaml"
    missing.write_text("text_type: t\nverbalizer: {a: a, b: b}\n", encoding="utf-8")
    with pytest.raises(SpecError, match="label_type"):
        load_spec_yaml(missing)
    with pytest.raises(SpecError, match="does not exist"):
        load_spec_yaml(tmp_path / "nope.yaml")


def test_unknown_label_names_the_labels() -> None:
    with pytest.raises(SpecError, match="'neutral' is not one of"):
        get_spec("sst2").word_for("neutral")

"""The repository's promises: README commands, CI, examples and configs stay in step."""

import re
from pathlib import Path

import pytest

from mixaug import get_spec, load_config, load_examples

ROOT = Path(__file__).resolve().parents[2]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```bash\n(pip install torch==2\.13\.0 [^\n]+)\n```", text)


def test_readme_has_the_two_setup_commands() -> None:
    main_job, tests = _readme_commands()
    assert "mixaug augment" in main_job and "examples/data/movie_reviews.jsonl" in main_job
    assert '".[test]"' in tests and "pytest" in tests


def test_ci_runs_the_readme_test_command() -> None:
    _, tests = _readme_commands()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    # Verbatim, then `|| exit 1`: a failed install must fail CI.
    assert f"{tests} || exit 1" in ci


@pytest.mark.parametrize("config", sorted((ROOT / "examples" / "configs").glob("*.yaml")))
def test_example_configs_validate(config: Path) -> None:
    load_config(config)


def test_example_spec_and_data() -> None:
    spec = get_spec(str(ROOT / "examples" / "specs" / "restaurant.yaml"))
    assert spec.word_for("recommend") == "worth it"
    data = load_examples(ROOT / "examples" / "data" / "movie_reviews.jsonl")
    assert {e.label for e in data} == {"positive", "negative"}
    assert len(data) >= 20

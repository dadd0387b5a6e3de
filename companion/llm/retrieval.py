"""Retrievers that run here, offline: TF-IDF (scikit-learn) and BM25 (NumPy and SciPy sparse).

Both index a list of :class:`~companion.llm.chunking.Chunk` and answer a query with the ``k``
best chunks and their scores (:class:`Hit`). They share one tokenizer (:func:`tokenize`:
lowercase words, numbers such as ``14.99`` kept whole, common English words dropped), so a
difference between them is the weighting, not the words.

- :class:`TfidfRetriever`: scikit-learn's ``TfidfVectorizer`` (smoothed idf, sublinear term
  frequency, L2-normalised rows); the score is the cosine similarity, in [0, 1].
- :class:`Bm25Retriever`: Okapi BM25 with Lucene's idf, ``log(1 + (N - df + 0.5) / (df + 0.5))``,
  and term frequency ``tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / mean length))``; the
  score of a chunk is the sum over the query's distinct words; unbounded above.

:meth:`search_many` scores a batch of queries with one sparse product; ties are broken by
chunk order, so results are deterministic.

Example:
    >>> from companion.llm.chunking import Chunk
    >>> chunks = [Chunk("a#0", "a", "A", "cancel your plan"), Chunk("b#0", "b", "B", "pay")]
    >>> Bm25Retriever(chunks).search("how do I cancel", k=1)[0].chunk_id
    'a#0'
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy import sparse

from companion.core.checks import check_choice, check_int, check_number, check_text
from companion.errors import InvalidParameterError
from companion.llm.chunking import Chunk

__all__ = [
    "RETRIEVERS",
    "STOP_WORDS",
    "Bm25Retriever",
    "Hit",
    "Retriever",
    "TfidfRetriever",
    "make_retriever",
    "tokenize",
]

RETRIEVERS = ("tfidf", "bm25")
"""The retrievers :func:`make_retriever` builds."""
STOP_WORDS = frozenset(
    "a an and are at be but by can do does for from go has have how i if in is it its me my "
    "no not of on or our so than that the their then there this to up was we what when "
    "where which who why will with you your".split()
)
"""Words too common to tell articles apart."""
_TOKEN = re.compile(r"[a-z0-9]+(?:[.\-][a-z0-9]+)*")


def tokenize(text: str) -> list[str]:
    """Lowercase ``text`` and return its words, without :data:`STOP_WORDS`.

    Example:
        >>> tokenize("Why did my bill go up to 14.99?")
        ['did', 'bill', '14.99']
    """
    if not isinstance(text, str):
        raise InvalidParameterError(f"text must be a str, got {type(text).__name__}")
    return [t for t in _TOKEN.findall(text.lower()) if t not in STOP_WORDS]


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk: its rank (1 = best), ids, score, text and its article's title."""

    rank: int
    chunk_id: str
    article_id: str
    score: float
    text: str
    title: str = ""


class Retriever(Protocol):
    """What the assistant needs of a retriever."""

    name: str
    chunks: tuple[Chunk, ...]

    def scores(self, queries: Sequence[str]) -> np.ndarray:
        """A (queries x chunks) array of scores."""
        ...  # pragma: no cover - a protocol

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The ``k`` best chunks for ``query``."""
        ...  # pragma: no cover - a protocol

    def search_many(self, queries: Sequence[str], k: int = 5) -> list[list[Hit]]:
        """The ``k`` best chunks for each query."""
        ...  # pragma: no cover - a protocol


def _check_chunks(chunks: object) -> tuple[Chunk, ...]:
    if isinstance(chunks, (str, bytes)) or not isinstance(chunks, Sequence) or not chunks or \
            not all(isinstance(c, Chunk) for c in chunks):
        raise InvalidParameterError(
            f"chunks must be a non-empty sequence of Chunk (see chunk_articles), got {chunks!r}"
        )
    ids = [c.chunk_id for c in chunks]
    if len(set(ids)) != len(ids):
        raise InvalidParameterError("chunks must have distinct chunk ids")
    return tuple(chunks)


def _check_queries(queries: object) -> list[str]:
    if isinstance(queries, (str, bytes)) or not isinstance(queries, Sequence):
        raise InvalidParameterError(f"queries must be a list of str, got {queries!r}")
    return [check_text("query", q) for q in queries]


class _Ranked:
    """Top-k selection shared by the retrievers."""

    name: str
    chunks: tuple[Chunk, ...]

    def scores(self, queries: Sequence[str]) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def search_many(self, queries: Sequence[str], k: int = 5) -> list[list[Hit]]:
        """Return the ``k`` best chunks of each query, best first (ties: chunk order)."""
        queries = _check_queries(queries)
        check_int("k", k, minimum=1)
        if not queries:
            return []
        matrix = self.scores(queries)
        k = min(k, len(self.chunks))
        results = []
        for row in matrix:
            order = np.lexsort((np.arange(row.size), -row))[:k]
            results.append([
                Hit(rank + 1, self.chunks[i].chunk_id, self.chunks[i].article_id,
                    float(row[i]), self.chunks[i].text, self.chunks[i].title)
                for rank, i in enumerate(order)
            ])
        return results

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """Return the ``k`` best chunks for ``query``, best first."""
        check_text("query", query)
        return self.search_many([query], k)[0]


class TfidfRetriever(_Ranked):
    """TF-IDF vectors and cosine similarity (scikit-learn's ``TfidfVectorizer``)."""

    name = "tfidf"

    def __init__(self, chunks: Sequence[Chunk]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.chunks = _check_chunks(chunks)
        self.vectorizer = TfidfVectorizer(tokenizer=tokenize, lowercase=False,
                                          token_pattern=None, sublinear_tf=True)
        self.matrix = self.vectorizer.fit_transform([c.text for c in self.chunks])

    def scores(self, queries: Sequence[str]) -> np.ndarray:
        """Cosine similarity of each query with each chunk (rows are L2-normalised)."""
        queries = _check_queries(queries)
        vectors = self.vectorizer.transform(queries)
        return np.asarray((vectors @ self.matrix.T).toarray(), dtype=float)


class Bm25Retriever(_Ranked):
    """Okapi BM25 over a sparse term-frequency matrix.

    Args:
        chunks: what to index.
        k1: term-frequency saturation (> 0; 1.2 by default).
        b: length normalisation, 0 (none) to 1 (full); 0.75 by default.
    """

    name = "bm25"

    def __init__(self, chunks: Sequence[Chunk], k1: float = 1.2, b: float = 0.75) -> None:
        self.chunks = _check_chunks(chunks)
        self.k1 = check_number("k1", k1, positive=True)
        self.b = check_number("b", b, minimum=0.0, maximum=1.0)
        tokens = [tokenize(c.text) for c in self.chunks]
        self.vocabulary = {w: i for i, w in enumerate(sorted({t for ts in tokens for t in ts}))}
        rows, cols = [], []
        for row, words in enumerate(tokens):
            rows += [row] * len(words)
            cols += [self.vocabulary[w] for w in words]
        shape = (len(self.chunks), len(self.vocabulary))
        tf = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)
        tf.sum_duplicates()
        lengths = np.array([len(ts) for ts in tokens], dtype=float)
        n = len(self.chunks)
        df = np.bincount(tf.indices, minlength=shape[1]).astype(float)
        self.idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        norm = self.k1 * (1 - self.b + self.b * lengths / max(lengths.mean(), 1e-12))
        weights = tf.tocoo()
        values = weights.data * (self.k1 + 1) / (weights.data + norm[weights.row])
        values = values * self.idf[weights.col]
        self.weights = sparse.csr_matrix((values, (weights.row, weights.col)), shape=shape)

    def scores(self, queries: Sequence[str]) -> np.ndarray:
        """BM25 score of each chunk for each query (a query word counts once)."""
        queries = _check_queries(queries)
        rows, cols = [], []
        for row, query in enumerate(queries):
            found = sorted({self.vocabulary[w] for w in tokenize(query) if w in self.vocabulary})
            rows += [row] * len(found)
            cols += found
        q = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)),
                              shape=(len(queries), len(self.vocabulary)))
        return np.asarray((q @ self.weights.T).toarray(), dtype=float)


def make_retriever(name: str, chunks: Sequence[Chunk]) -> TfidfRetriever | Bm25Retriever:
    """Build the retriever called ``name`` (one of :data:`RETRIEVERS`) over ``chunks``."""
    check_choice("retriever", name, RETRIEVERS)
    return TfidfRetriever(chunks) if name == "tfidf" else Bm25Retriever(chunks)

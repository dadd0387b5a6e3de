"""The help-centre corpus: articles by version, and chunking them for retrieval.

``corpus("2025-09")`` returns the articles published up to September 2025 (the month of the
price rise, whose article is added then); :func:`chunk_articles` cuts articles into the
passages a retriever indexes, by paragraph or by a fixed window of words with overlap.
Both are deterministic: the same arguments give the same chunks, with the same ids, on any
machine.

Example:
    >>> chunks = chunk_articles(corpus("2025-08")[:1], method="paragraph")
    >>> [c.chunk_id for c in chunks]
    ['billing-date#0', 'billing-date#1']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from companion.core.checks import check_bool, check_choice, check_int
from companion.errors import InvalidParameterError
from companion.llm.articles import ARTICLE_ROWS

__all__ = [
    "CHUNKING_METHODS",
    "CORPUS_VERSIONS",
    "Article",
    "Chunk",
    "chunk_articles",
    "corpus",
]

CORPUS_VERSIONS = ("2025-08", "2025-09")
"""The corpus versions: before the price-rise article (August) and with it (September)."""
CHUNKING_METHODS = ("paragraph", "window")
"""``paragraph``: one chunk per paragraph; ``window``: ``size`` words, ``overlap`` shared."""
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Article:
    """One help article.

    Attributes:
        article_id: a stable id such as ``"payments-failed"``.
        title: the article's title.
        category: ``billing``, ``plans``, ``payments``, ``streaming``, ``account``,
            ``devices`` or ``cancelling``.
        added: the month it was published, ``YYYY-MM``.
        paragraphs: its paragraphs, whitespace normalised.
    """

    article_id: str
    title: str
    category: str
    added: str
    paragraphs: tuple[str, ...]

    @property
    def text(self) -> str:
        """The whole article: paragraphs separated by blank lines."""
        return "\n\n".join(self.paragraphs)


@dataclass(frozen=True)
class Chunk:
    """One passage a retriever indexes: ``chunk_id`` is ``"<article_id>#<n>"``."""

    chunk_id: str
    article_id: str
    title: str
    text: str


def _article(row: tuple[str, str, str, str, str]) -> Article:
    article_id, title, category, added, body = row
    paragraphs = tuple(" ".join(p.split()) for p in body.strip().split("\n\n") if p.strip())
    return Article(article_id, title, category, added, paragraphs)


def corpus(version: str = CORPUS_VERSIONS[-1]) -> tuple[Article, ...]:
    """Return the articles of corpus ``version``: those added in or before that month.

    Args:
        version: one of :data:`CORPUS_VERSIONS`.

    Raises:
        UnknownNameError: ``version`` is not a corpus version.
    """
    check_choice("corpus version", version, CORPUS_VERSIONS)
    return tuple(_article(row) for row in ARTICLE_ROWS if row[3] <= version)


def chunk_articles(
    articles: Sequence[Article],
    method: str = "paragraph",
    *,
    size: int = 60,
    overlap: int = 15,
    with_title: bool = True,
) -> list[Chunk]:
    """Cut ``articles`` into chunks, in article order.

    Args:
        articles: the articles (e.g. :func:`corpus`).
        method: ``"paragraph"`` (one chunk per paragraph) or ``"window"`` (windows of
            ``size`` words over the whole article, each sharing ``overlap`` words with the
            one before; the last window ends at the article's last word).
        size: words per window (``window`` only), 10 to 400.
        overlap: words shared by consecutive windows, 0 to ``size - 1``.
        with_title: start every chunk with its article's title (what the chunk is about,
            when its own words do not say it).

    Raises:
        InvalidParameterError: bad ``size``, ``overlap`` or ``articles``.
        UnknownNameError: an unknown ``method``.
    """
    if isinstance(articles, (str, bytes)) or not isinstance(articles, Sequence) or not all(
        isinstance(a, Article) for a in articles
    ):
        raise InvalidParameterError(
            f"articles must be a sequence of Article (see corpus()), got {articles!r}"
        )
    check_choice("chunking method", method, CHUNKING_METHODS)
    check_int("size", size, minimum=10, maximum=400)
    check_int("overlap", overlap, minimum=0, maximum=size - 1)
    check_bool("with_title", with_title)
    chunks: list[Chunk] = []
    for article in articles:
        if method == "paragraph":
            passages = list(article.paragraphs)
        else:
            words = _WORD.findall(" ".join(article.paragraphs))
            step = size - overlap
            starts = list(range(0, max(len(words) - overlap, 1), step))
            passages = [" ".join(words[s:s + size]) for s in starts]
        for number, passage in enumerate(passages):
            text = f"{article.title}. {passage}" if with_title else passage
            chunks.append(Chunk(f"{article.article_id}#{number}", article.article_id,
                                article.title, text))
    return chunks

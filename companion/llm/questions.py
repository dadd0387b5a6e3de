"""The labelled question set: customers' questions with the articles that answer them.

Each question comes from a seed question of :data:`~companion.llm.articles.QUESTION_SEEDS`,
reworded the way customers write: an opening (``"hi, "``, ``"quick question: "``), a word
swapped for a synonym the articles may not use (``cancel`` -> ``end``), a closing. The
rewording is drawn from a seeded generator, so :func:`question_set` returns the same
questions for the same seed on any machine, and another seed gives another sample of the same
population: the intervals of :mod:`companion.llm.quality` describe that sampling.

Paraphrases of one seed question are not independent (they share most words): each question
carries its ``group`` (the seed question), and the bootstrap resamples groups.

Example:
    >>> qs = question_set(20, seed=1)
    >>> len(qs), qs[0].relevant == (qs[0].group.split("/")[0],)
    (20, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from companion.core.checks import check_int
from companion.errors import InvalidParameterError
from companion.llm.articles import QUESTION_SEEDS
from companion.llm.chunking import CORPUS_VERSIONS, corpus

__all__ = ["PRICE_RISE_ARTICLE", "Question", "question_frame", "question_set", "reword"]

PRICE_RISE_ARTICLE = "price-rise-2025"
"""The article added with the price rise of September 2025 (absent from corpus 2025-08)."""

OPENINGS = ("", "", "", "hi, ", "hello, ", "quick question: ", "please help: ", "hey ")
CLOSINGS = ("", "", "?", "?", " thanks", " please", "??")
SYNONYMS: dict[str, tuple[str, ...]] = {
    "cancel": ("end", "quit", "terminate"),
    "subscription": ("membership", "account", "plan"),
    "charged": ("billed", "debited"),
    "bill": ("statement", "invoice"),
    "price": ("cost", "fee"),
    "money": ("cash", "payment"),
    "watch": ("view", "stream"),
    "tv": ("television", "telly"),
    "download": ("save", "keep"),
    "password": ("passcode", "login details"),
    "login": ("sign in", "log in"),
    "kids": ("children", "little ones"),
    "card": ("bank card", "credit card"),
    "upgrade": ("move up", "switch"),
    "plan": ("package", "tier"),
    "change": ("update", "modify"),
    "delete": ("erase", "remove"),
    "device": ("gadget", "screen"),
    "devices": ("gadgets", "screens"),
    "expensive": ("pricey", "costly"),
    "went up": ("increased", "rose"),
    "video": ("show", "film"),
    "account": ("profile", "login"),
}
"""Words a customer may use instead of the one in the seed question."""


@dataclass(frozen=True)
class Question:
    """One labelled question.

    Attributes:
        question_id: ``"q0001"``, ...
        text: the question as the customer wrote it.
        relevant: the ids of the articles that answer it.
        group: ``"<article_id>/<n>"``: the seed question it rewords.
    """

    question_id: str
    text: str
    relevant: tuple[str, ...]
    group: str


def reword(text: str, rng: np.random.Generator, swap_probability: float = 0.5) -> str:
    """Reword ``text`` as a customer might: an opening, synonyms, a closing.

    Each word of :data:`SYNONYMS` found in ``text`` is swapped with ``swap_probability``.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidParameterError(f"text must be a non-empty string, got {text!r}")
    if not isinstance(rng, np.random.Generator):
        raise InvalidParameterError(f"rng must be a numpy Generator, got {type(rng).__name__}")
    words = f" {text} "
    for word, options in SYNONYMS.items():
        if f" {word} " in words and rng.random() < swap_probability:
            words = words.replace(f" {word} ", f" {options[rng.integers(len(options))]} ", 1)
    opening = OPENINGS[rng.integers(len(OPENINGS))]
    closing = CLOSINGS[rng.integers(len(CLOSINGS))]
    return f"{opening}{words.strip()}{closing}"


def question_set(
    n: int = 240,
    seed: int = 0,
    *,
    corpus_version: str = CORPUS_VERSIONS[-1],
    articles: Sequence[str] | None = None,
) -> list[Question]:
    """Return ``n`` labelled questions about the articles of ``corpus_version``.

    Args:
        n: how many questions (20 to 5,000).
        seed: the seed of the draw.
        corpus_version: only articles of this corpus version are asked about.
        articles: ask only about these article ids (default: every article of the version).

    Each question picks a seed question uniformly among those of the chosen articles and
    rewords it (:func:`reword`).
    """
    check_int("n", n, minimum=20, maximum=5000)
    check_int("seed", seed, minimum=0)
    available = [a.article_id for a in corpus(corpus_version)]
    if articles is not None:
        if isinstance(articles, str) or not isinstance(articles, Sequence) or not articles:
            raise InvalidParameterError(
                f"articles must be a non-empty list of article ids, got {articles!r}"
            )
        unknown = sorted(set(articles) - set(available))
        if unknown:
            raise InvalidParameterError(
                f"articles {unknown} are not in corpus {corpus_version}; accepted: "
                f"{', '.join(available)}"
            )
        available = [a for a in available if a in set(articles)]
    seeds = [(article, number, text) for article in available
             for number, text in enumerate(QUESTION_SEEDS[article])]
    rng = np.random.default_rng([seed, 15])
    picks = rng.integers(len(seeds), size=n)
    questions = []
    for index, pick in enumerate(picks):
        article, number, text = seeds[int(pick)]
        questions.append(Question(f"q{index + 1:04d}", reword(text, rng), (article,),
                                  f"{article}/{number}"))
    return questions


def question_frame(questions: Sequence[Question]) -> pd.DataFrame:
    """The questions as a table: question_id, text, relevant (comma-separated), group."""
    if isinstance(questions, (str, bytes)) or not isinstance(questions, Sequence) or not all(
        isinstance(q, Question) for q in questions
    ):
        raise InvalidParameterError("questions must be a sequence of Question")
    return pd.DataFrame(
        [{"question_id": q.question_id, "text": q.text, "relevant": ",".join(q.relevant),
          "group": q.group} for q in questions],
        columns=["question_id", "text", "relevant", "group"],
    )

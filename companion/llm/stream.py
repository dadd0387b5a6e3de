"""Simulated weeks of the assistant in use: questions with a known onset, and their logs.

:func:`simulate_queries` draws each week's questions from the help centre's seed questions,
reworded (:func:`~companion.llm.questions.reword`). From ``onset_week`` on (the price rise of
1 September 2025 by default) a share of the customers ask about the price rise, which the
deployed corpus (``2025-08``) has no article about: the corpus gap the monitoring must find.
The ``about`` column (the article that answers each question) is the truth, for grading only.

:func:`log_responses` runs an :class:`~companion.llm.assistant.Assistant` on every question and
returns the log a production assistant would write: per response the question's descriptors
(words, share of words unknown to the corpus), the best retrieval score, the answer's length,
whether it refused, and the configuration and prompt versions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from companion.core.checks import check_date, check_int, check_number
from companion.errors import InvalidParameterError
from companion.llm.articles import QUESTION_SEEDS
from companion.llm.assistant import Assistant
from companion.llm.questions import PRICE_RISE_ARTICLE, reword
from companion.llm.retrieval import tokenize

__all__ = ["LOG_COLUMNS", "StreamConfig", "log_responses", "simulate_queries"]

LOG_COLUMNS = ("week", "question", "about", "query_words", "unknown_share", "top_score",
               "top_article", "answer_words", "refused", "config_version", "prompt_version")
"""The columns of a response log (``about`` is the simulator's truth)."""


@dataclass(frozen=True)
class StreamConfig:
    """The simulated weeks.

    Attributes:
        weeks: how many weeks (8 to 104).
        start: the Monday of the first week, ``YYYY-MM-DD``.
        onset_week: index of the first week with price-rise questions (1 to ``weeks - 1``).
        queries_per_week: questions a week (50 to 5,000).
        price_share: share of a week's questions about the price rise from the onset.
        seed: seed of the draws.
    """

    weeks: int = 16
    start: str = "2025-07-07"
    onset_week: int = 8
    queries_per_week: int = 250
    price_share: float = 0.3
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("weeks", self.weeks, minimum=8, maximum=104)
        day = check_date("start", self.start)
        if day.dayofweek != 0 or day != day.normalize():
            raise InvalidParameterError(f"start must be a Monday date, got {self.start!r}")
        check_int("onset_week", self.onset_week, minimum=1, maximum=self.weeks - 1)
        check_int("queries_per_week", self.queries_per_week, minimum=50, maximum=5000)
        check_number("price_share", self.price_share, minimum=0.0, maximum=1.0)
        check_int("seed", self.seed, minimum=0)

    def week_starts(self) -> list[str]:
        """The Monday of every week, ``YYYY-MM-DD``."""
        days = pd.date_range(self.start, periods=self.weeks, freq="7D")
        return [str(d.date()) for d in days]

    @property
    def onset(self) -> str:
        """The Monday of the onset week."""
        return self.week_starts()[self.onset_week]


def simulate_queries(stream: StreamConfig) -> pd.DataFrame:
    """Return the simulated questions: ``week``, ``question``, ``about`` (truth), week by week."""
    if not isinstance(stream, StreamConfig):
        raise InvalidParameterError(f"stream must be a StreamConfig, got {type(stream).__name__}")
    usual = [(a, text) for a, texts in QUESTION_SEEDS.items() if a != PRICE_RISE_ARTICLE
             for text in texts]
    price = QUESTION_SEEDS[PRICE_RISE_ARTICLE]
    rng = np.random.default_rng([stream.seed, 1509])
    rows = []
    for index, week in enumerate(stream.week_starts()):
        share = stream.price_share if index >= stream.onset_week else 0.0
        n_price = int(rng.binomial(stream.queries_per_week, share))
        for _ in range(stream.queries_per_week - n_price):
            article, text = usual[int(rng.integers(len(usual)))]
            rows.append((week, reword(text, rng), article))
        for _ in range(n_price):
            rows.append((week, reword(price[int(rng.integers(len(price)))], rng),
                         PRICE_RISE_ARTICLE))
    return pd.DataFrame(rows, columns=["week", "question", "about"])


def log_responses(assistant: Assistant, queries: pd.DataFrame) -> pd.DataFrame:
    """Answer every query with ``assistant``; return the response log (:data:`LOG_COLUMNS`)."""
    if not isinstance(assistant, Assistant):
        raise InvalidParameterError(
            f"assistant must be an Assistant, got {type(assistant).__name__}"
        )
    if not isinstance(queries, pd.DataFrame) or not {"week", "question", "about"} <= set(queries):
        raise InvalidParameterError(
            "queries must be a DataFrame with week, question and about (see simulate_queries)"
        )
    known = {t for c in assistant.chunks for t in tokenize(c.text)}
    responses = assistant.ask_many(queries["question"].tolist())
    words = [tokenize(q) for q in queries["question"]]
    log = queries[["week", "question", "about"]].reset_index(drop=True).assign(
        query_words=[len(w) for w in words],
        unknown_share=[round(sum(t not in known for t in w) / max(len(w), 1), 4) for w in words],
        top_score=[round(r.top_score, 4) for r in responses],
        top_article=[r.hits[0].article_id if r.hits else "" for r in responses],
        answer_words=[0 if r.refused else len(r.answer.split()) for r in responses],
        refused=[r.refused for r in responses],
        config_version=[r.config_version for r in responses],
        prompt_version=[r.prompt_version for r in responses],
    )
    return log[list(LOG_COLUMNS)]

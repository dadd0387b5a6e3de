"""Retrieval quality on the labelled question set: recall@k and MRR, with intervals.

:func:`score_questions` runs a retriever on every question and records, per question, whether
the top ``k`` chunks hold the articles that answer it (``recall``: the share of its relevant
articles found there) and the reciprocal rank of the first chunk from a relevant article
(``reciprocal_rank``, 0 when none is in the first :data:`RANK_DEPTH`); their means are recall@k
and MRR.

Intervals resample *seed questions* (a question's ``group``): rewordings of one question are
not independent, and resampling them one by one would make the intervals too narrow.
:func:`mean_interval` gives a metric's 95% interval; :func:`paired_difference` the interval of
the difference between two configurations scored on the same questions (each resample takes
the same groups for both, so what the questions share cancels out). Both return an
:class:`~companion.evaluation.Estimate`.

Example:
    >>> import pandas as pd
    >>> a = pd.DataFrame({"question_id": ["q1", "q2"], "group": ["g1", "g2"],
    ...                   "recall": [1.0, 0.0]})
    >>> mean_interval(a, "recall", n_resamples=200).value
    0.5
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from companion.core.checks import check_frame, check_int, check_text
from companion.errors import InvalidParameterError
from companion.evaluation import LEVEL, Estimate
from companion.llm.questions import Question
from companion.llm.retrieval import Retriever

__all__ = ["METRICS", "RANK_DEPTH", "mean_interval", "paired_difference", "score_questions",
           "verdict"]

METRICS = ("recall", "reciprocal_rank")
"""Per-question metrics; their means are recall@k and MRR."""
RANK_DEPTH = 20
"""How deep the reciprocal rank looks: a first relevant chunk below it counts 0."""


def score_questions(
    retriever: Retriever, questions: Sequence[Question], k: int = 5
) -> pd.DataFrame:
    """Score ``retriever`` on ``questions``; one row per question.

    Columns: ``question_id``, ``group``, ``recall`` (share of the relevant articles among the
    top ``k`` chunks' articles), ``reciprocal_rank`` (1 / rank of the first relevant chunk),
    ``top_score`` (the best chunk's score) and ``top_article``.
    """
    if isinstance(questions, (str, bytes)) or not isinstance(questions, Sequence) or not \
            questions or not all(isinstance(q, Question) for q in questions):
        raise InvalidParameterError("questions must be a non-empty sequence of Question")
    check_int("k", k, minimum=1, maximum=RANK_DEPTH)
    if not callable(getattr(retriever, "search_many", None)):
        raise InvalidParameterError(
            f"retriever must have search_many (see make_retriever), got {type(retriever).__name__}"
        )
    hits = retriever.search_many([q.text for q in questions], k=RANK_DEPTH)
    rows = []
    for question, found in zip(questions, hits, strict=True):
        relevant = set(question.relevant)
        top = {h.article_id for h in found[:k]}
        first = next((h.rank for h in found if h.article_id in relevant), None)
        rows.append({
            "question_id": question.question_id, "group": question.group,
            "recall": len(relevant & top) / len(relevant),
            "reciprocal_rank": 0.0 if first is None else 1.0 / first,
            "top_score": found[0].score, "top_article": found[0].article_id,
        })
    return pd.DataFrame(rows)


def _check_metric(frame: object, metric: object, name: str) -> str:
    check_text("metric", metric)
    if not isinstance(frame, pd.DataFrame) or metric not in frame.columns:
        raise InvalidParameterError(
            f"{name} must be a DataFrame with a {metric!r} column, e.g. one of {list(METRICS)}"
        )
    if not pd.api.types.is_numeric_dtype(frame[metric]) or frame[metric].isna().any():
        raise InvalidParameterError(f"{name}[{metric!r}] must be numbers without NaN")
    return str(metric)


def _groups(frame: pd.DataFrame, metric: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    check_frame(name, frame, ["question_id", "group", metric], non_empty=True)
    grouped = frame.groupby("group", sort=True)[metric]
    return grouped.sum().to_numpy(float), grouped.size().to_numpy(float)


def _interval(point: float, draws: np.ndarray, level: float, method: str,
              paired: bool) -> Estimate:
    low, high = np.quantile(draws, [0.5 - level / 2, 0.5 + level / 2])
    low, high = min(float(low), point), max(float(high), point)
    p_value = None
    if paired:
        p_value = float(min(1.0, 2 * min((draws <= 0).mean(), (draws >= 0).mean())))
    return Estimate(point, low, high, level, method, p_value)


def mean_interval(frame: pd.DataFrame, metric: str = "recall", *, n_resamples: int = 2000,
                  seed: int = 0) -> Estimate:
    """Return the mean of ``metric`` over the questions with a 95% bootstrap interval by group.

    ``metric`` is any numeric column of ``frame`` (e.g. :data:`METRICS`, ``top_score``).
    """
    _check_metric(frame, metric, "frame")
    check_int("n_resamples", n_resamples, minimum=100)
    check_int("seed", seed, minimum=0)
    sums, sizes = _groups(frame, metric, "frame")
    rng = np.random.default_rng(seed)
    picks = rng.integers(sums.size, size=(n_resamples, sums.size))
    draws = sums[picks].sum(axis=1) / sizes[picks].sum(axis=1)
    point = float(sums.sum() / sizes.sum())
    return _interval(point, draws, LEVEL, "bootstrap by seed question", paired=False)


def paired_difference(candidate: pd.DataFrame, baseline: pd.DataFrame, metric: str = "recall",
                      *, n_resamples: int = 2000, seed: int = 0) -> Estimate:
    """Return mean ``metric`` of ``candidate`` minus ``baseline``, with a paired 95% interval.

    ``metric`` is any numeric column of both frames. Both frames must score the same
    questions (same ids and groups). The p-value is the
    bootstrap's two-sided p-value of "no difference".

    Raises:
        InvalidParameterError: the frames do not hold the same questions.
    """
    _check_metric(candidate, metric, "candidate")
    _check_metric(baseline, metric, "baseline")
    check_int("n_resamples", n_resamples, minimum=100)
    check_int("seed", seed, minimum=0)
    check_frame("candidate", candidate, ["question_id", "group", metric], non_empty=True)
    check_frame("baseline", baseline, ["question_id", "group", metric], non_empty=True)
    left = candidate.sort_values("question_id").reset_index(drop=True)
    right = baseline.sort_values("question_id").reset_index(drop=True)
    if not (left["question_id"].equals(right["question_id"])
            and left["group"].equals(right["group"])):
        raise InvalidParameterError(
            "candidate and baseline must score the same questions (same question_id and group)"
        )
    paired = left[["question_id", "group"]].assign(delta=left[metric] - right[metric])
    sums, sizes = _groups(paired, "delta", "paired")
    rng = np.random.default_rng(seed)
    picks = rng.integers(sums.size, size=(n_resamples, sums.size))
    draws = sums[picks].sum(axis=1) / sizes[picks].sum(axis=1)
    point = float(sums.sum() / sizes.sum())
    return _interval(point, draws, LEVEL, "bootstrap paired by seed question", paired=True)


def verdict(difference: Estimate, candidate: str, baseline: str) -> str:
    """Say what ``difference`` (candidate - baseline) supports: higher, lower or not told apart."""
    if not isinstance(difference, Estimate):
        raise InvalidParameterError(f"difference must be an Estimate, got {difference!r}")
    if difference.low > 0:
        return f"{candidate} is higher than {baseline}"
    if difference.high < 0:
        return f"{candidate} is lower than {baseline}"
    return f"{candidate} and {baseline} are not told apart"

"""Time the help-centre assistant's retrieval against its floor, and its weekly monitoring.

On the September corpus (40 articles, paragraph chunks with titles) and questions of the
labelled set:

- ``index_build_s``: building each retriever (TF-IDF, BM25) over the chunks;
- ``query_ms``: per question, for each retriever: ``single`` (``search`` one question at a
  time, tokenizing included), ``batched`` (``search_many`` over the whole set, divided by its
  size); and the floor: BM25's own weights as a dense NumPy array, the question's words already
  looked up, scored with one column sum and the top 5 taken with ``argpartition`` (the least
  work any BM25 ranking must do); medians of ``--repeats`` runs with min and max;
- ``same_top5_as_floor``: whether the floor ranks the same top chunk as the companion;
- ``evidently_week_s``: one week's Evidently report (four ``ValueDrift`` metrics) after a
  warm-up; ``monitor_weeks_s``: the twelve monitored weeks of the appendix;
- ``log_responses_s``: sixteen weeks of questions answered and logged (4,000 questions).

Usage: python benchmarks/bench_llm.py [--questions 1000] [--repeats 5]
Writes benchmarks/results/llm.json.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _measure import machine, write_results

from companion.core.env import apply_offline_env


def _timed(call):
    started = time.perf_counter()
    value = call()
    return time.perf_counter() - started, value


def _summary(values: list[float], scale: float = 1.0, digits: int = 4) -> dict:
    values = [v * scale for v in values]
    return {"median": round(statistics.median(values), digits),
            "min": round(min(values), digits), "max": round(max(values), digits)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    apply_offline_env()
    from companion import llm

    chunks = llm.chunk_articles(llm.corpus("2025-09"))
    texts = [q.text for q in llm.question_set(args.questions, seed=0)]
    build, retrievers = {}, {}
    for name in llm.RETRIEVERS:
        times = []
        for _ in range(args.repeats):
            seconds, retrievers[name] = _timed(lambda n=name: llm.make_retriever(n, chunks))
            times.append(seconds)
        build[name] = _summary(times)
    query_ms: dict[str, dict] = {}
    for name, retriever in retrievers.items():
        retriever.search_many(texts[:10])  # warm-up
        single = []
        for _ in range(args.repeats):
            seconds, _ = _timed(lambda r=retriever: [r.search(t, k=5) for t in texts])
            single.append(seconds / len(texts))
        batched = []
        for _ in range(args.repeats):
            seconds, _ = _timed(lambda r=retriever: r.search_many(texts, k=5))
            batched.append(seconds / len(texts))
        query_ms[name] = {"single": _summary(single, 1000), "batched": _summary(batched, 1000)}
    bm25 = retrievers["bm25"]
    dense = bm25.weights.toarray()
    looked_up = [sorted({bm25.vocabulary[w] for w in llm.tokenize(t) if w in bm25.vocabulary})
                 for t in texts]
    floor, tops = [], []
    for _ in range(args.repeats):
        started = time.perf_counter()
        tops = [np.argpartition(-dense[:, idx].sum(axis=1), 5)[:5] for idx in looked_up]
        floor.append((time.perf_counter() - started) / len(texts))
    query_ms["floor_dense_bm25"] = {"single": _summary(floor, 1000)}
    companion_top = [h[0].chunk_id for h in bm25.search_many(texts, k=1)]
    scores = [dense[:, idx].sum(axis=1) for idx in looked_up]
    floor_top = [chunks[int(np.lexsort((np.arange(s.size), -s))[0])].chunk_id for s in scores]
    assert all(len(t) == 5 for t in tops)

    stream = llm.StreamConfig(seed=42)
    assistant = llm.Assistant(llm.PRODUCTION_CONFIG, llm.PROMPT_TEMPLATES[2])
    queries = llm.simulate_queries(stream)
    log_s, log = _timed(lambda: llm.log_responses(assistant, queries))
    reference = log[log["week"] < "2025-08-04"]
    week = log[log["week"] == "2025-09-01"]
    policy = llm.LlmPolicy()
    from companion.llm.monitoring import _report

    _report(reference, week, policy)  # warm-up (imports Evidently)
    report_times = [_timed(lambda: _report(reference, week, policy))[0]
                    for _ in range(args.repeats)]
    monitor_s, _ = _timed(lambda: llm.monitor_weeks(log))
    path = write_results("llm", {
        "machine": machine(),
        "chunks": len(chunks),
        "questions": len(texts),
        "index_build_s": build,
        "query_ms": query_ms,
        "same_top1_as_floor": companion_top == floor_top,
        "log_responses_s": round(log_s, 3),
        "logged_questions": len(log),
        "evidently_week_s": _summary(report_times, digits=3),
        "monitor_weeks_s": round(monitor_s, 3),
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

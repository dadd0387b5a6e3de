"""MLOps for an LLM application: Lumen's help-centre assistant, retrieval-augmented, offline.

The assistant answers customers from help articles the project wrote. Everything an AI
engineer versions, measures and watches is here, and runs on a laptop with no model:

- :mod:`~companion.llm.articles`, :mod:`~companion.llm.chunking`: the articles, corpus versions
  and chunking; :mod:`~companion.llm.questions`: the labelled question set;
- :mod:`~companion.llm.retrieval`: TF-IDF (scikit-learn) and BM25 (SciPy sparse) retrievers;
- :mod:`~companion.llm.quality`: recall@k and MRR, intervals by seed question, paired
  differences between configurations;
- :mod:`~companion.llm.config`: :class:`RagConfig`, the versioned configuration;
  :mod:`~companion.llm.pipeline`: it run as a pipeline and tracked as an MLflow run;
- :mod:`~companion.llm.prompts`: the prompt's versions in MLflow's prompt registry;
- :mod:`~companion.llm.generation`: the pluggable generation client (recorded and
  extractive), :mod:`~companion.llm.assistant`: retrieval, prompt and generation together,
  :mod:`~companion.llm.record`: the recordings the book replays;
- :mod:`~companion.llm.stream`: simulated weeks of questions with a known onset, and their
  response logs; :mod:`~companion.llm.monitoring`: Evidently drift reports, refusal rates,
  alerts, graded against the onset.

No language model runs here: answers are extracted from the retrieved article or replayed
from recordings, and :class:`GenerationClient` is where a real model plugs in. Nothing
happens at import; MLflow and Evidently are imported when called.

Example:
    >>> chunks = chunk_articles(corpus("2025-08"))
    >>> Bm25Retriever(chunks).search("my payment failed", k=1)[0].article_id
    'payments-failed'
"""

from __future__ import annotations

from companion.llm.assistant import Assistant, Response
from companion.llm.chunking import (
    CHUNKING_METHODS,
    CORPUS_VERSIONS,
    Article,
    Chunk,
    chunk_articles,
    corpus,
)
from companion.llm.config import CONFIG_SCHEMA, RagConfig
from companion.llm.generation import (
    RECORDINGS,
    RECORDINGS_SCHEMA,
    REFUSAL,
    ExtractiveClient,
    GenerationClient,
    GenerationRequest,
    RecordedClient,
    fill_prompt,
    is_refusal,
    record_responses,
)
from companion.llm.monitoring import (
    DRIFT_COLUMNS,
    LLM_POLICY,
    LlmPolicy,
    WeeklyMonitoring,
    grade_alerts,
    monitor_weeks,
)
from companion.llm.pipeline import (
    EXPERIMENT,
    RAG_PIPELINE,
    TrackedRun,
    load_run_config,
    run_config,
    tracked_runs,
)
from companion.llm.prompts import (
    ASSISTANT_PROMPT,
    PROMPT_COMMITS,
    PROMPT_TEMPLATES,
    register_assistant_prompts,
)
from companion.llm.quality import (
    METRICS,
    RANK_DEPTH,
    mean_interval,
    paired_difference,
    score_questions,
    verdict,
)
from companion.llm.questions import (
    PRICE_RISE_ARTICLE,
    Question,
    question_frame,
    question_set,
    reword,
)
from companion.llm.record import DEMO_QUESTIONS, PRODUCTION_CONFIG, write_recordings
from companion.llm.retrieval import (
    RETRIEVERS,
    STOP_WORDS,
    Bm25Retriever,
    Hit,
    Retriever,
    TfidfRetriever,
    make_retriever,
    tokenize,
)
from companion.llm.stream import LOG_COLUMNS, StreamConfig, log_responses, simulate_queries

__all__ = [
    "ASSISTANT_PROMPT",
    "CHUNKING_METHODS",
    "CONFIG_SCHEMA",
    "CORPUS_VERSIONS",
    "DEMO_QUESTIONS",
    "DRIFT_COLUMNS",
    "EXPERIMENT",
    "LLM_POLICY",
    "LOG_COLUMNS",
    "METRICS",
    "PRICE_RISE_ARTICLE",
    "PRODUCTION_CONFIG",
    "PROMPT_COMMITS",
    "PROMPT_TEMPLATES",
    "RAG_PIPELINE",
    "RANK_DEPTH",
    "RECORDINGS",
    "RECORDINGS_SCHEMA",
    "REFUSAL",
    "RETRIEVERS",
    "STOP_WORDS",
    "Article",
    "Assistant",
    "Bm25Retriever",
    "Chunk",
    "ExtractiveClient",
    "GenerationClient",
    "GenerationRequest",
    "Hit",
    "LlmPolicy",
    "Question",
    "RagConfig",
    "RecordedClient",
    "Response",
    "Retriever",
    "StreamConfig",
    "TfidfRetriever",
    "TrackedRun",
    "WeeklyMonitoring",
    "chunk_articles",
    "corpus",
    "fill_prompt",
    "grade_alerts",
    "is_refusal",
    "load_run_config",
    "log_responses",
    "make_retriever",
    "mean_interval",
    "monitor_weeks",
    "paired_difference",
    "question_frame",
    "question_set",
    "record_responses",
    "register_assistant_prompts",
    "reword",
    "run_config",
    "score_questions",
    "simulate_queries",
    "tokenize",
    "tracked_runs",
    "verdict",
    "write_recordings",
]

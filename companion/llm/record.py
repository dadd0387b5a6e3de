"""The book's recorded responses: which questions, which configuration, and the command that
writes them.

The chapter answers :data:`DEMO_QUESTIONS` with the production configuration
:data:`PRODUCTION_CONFIG` and version 2 of the prompt, replayed by a
:class:`~companion.llm.generation.RecordedClient` from
:data:`~companion.llm.generation.RECORDINGS`. :func:`write_recordings` wrote that file once,
with the extractive client; to record a live model instead, pass its client. From a shell::

    python -m companion.llm record            # rewrites companion/llm/recordings.json
    python -m companion.llm record --out my.json
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from companion.llm.assistant import Assistant
from companion.llm.config import RagConfig
from companion.llm.generation import (
    RECORDINGS,
    ExtractiveClient,
    GenerationClient,
    record_responses,
)
from companion.llm.prompts import PROMPT_TEMPLATES

__all__ = ["DEMO_QUESTIONS", "PRODUCTION_CONFIG", "main", "write_recordings"]

PRODUCTION_CONFIG = RagConfig(name="v2-bm25-titles", corpus_version="2025-08",
                              chunking="paragraph", with_title=True, retriever="bm25",
                              top_k=5, min_score=3.0, prompt_version=2)
"""The configuration the assistant runs in production from August 2025."""
DEMO_QUESTIONS = (
    "my payment failed, what happens now?",
    "how do I end my membership",
    "the video keeps buffering on my telly",
    "can my kids have their own profile with a pin",
    "what is the weather in paris tomorrow",
)
"""The questions the chapter asks the assistant."""


def write_recordings(
    path: str | os.PathLike[str] = RECORDINGS,
    client: GenerationClient | None = None,
    config: RagConfig = PRODUCTION_CONFIG,
    questions: Sequence[str] = DEMO_QUESTIONS,
) -> Path:
    """Answer ``questions`` with ``config`` and ``client`` (default: extractive) and record them."""
    assistant = Assistant(config, PROMPT_TEMPLATES[config.prompt_version],
                          client or ExtractiveClient(config.min_score))
    return record_responses(path, assistant.requests(list(questions)), assistant.client)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m companion.llm record [--out PATH]``."""
    parser = argparse.ArgumentParser(prog="python -m companion.llm")
    commands = parser.add_subparsers(dest="command", required=True)
    record = commands.add_parser("record", help="write the recorded responses")
    record.add_argument("--out", default=str(RECORDINGS), help="the recordings file")
    args = parser.parse_args(argv)
    written = write_recordings(args.out)
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

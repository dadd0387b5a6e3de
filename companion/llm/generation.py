"""The generation step as a pluggable client: a prompt and retrieved context in, answer text out.

No language model runs in this book. :class:`GenerationClient` is the one place a real model
plugs in (a hosted API or a local model: anything with ``generate(request) -> str``). Two
clients run here:

- :class:`ExtractiveClient` answers from the best chunk's own sentences (those sharing the
  most words with the question) and refuses (:data:`REFUSAL`) when no chunk was retrieved or
  the best score is below ``min_score``. It is deterministic, and it is what wrote the
  recordings.
- :class:`RecordedClient` replays responses stored in a file, keyed by
  :attr:`GenerationRequest.key`: a hash of the prompt version, the question and the ids of the
  context chunks. A request that was not recorded (another prompt version, another retrieval)
  raises :class:`~companion.errors.UnknownNameError` saying so: a replay never invents an
  answer. :func:`record_responses` writes such a file (``python -m companion.llm record``).

Recordings file (JSON, ``llm-recordings/1``): ``{"schema": ..., "client": ..., "responses":
{key: {"prompt_version": int, "question": str, "context": [chunk ids], "answer": str}}}``,
keys sorted.

Example:
    >>> from companion.llm.retrieval import Hit
    >>> hit = Hit(1, "a#0", "a", 5.0, "Cancel. Cancel at any time. There is no fee.", "Cancel")
    >>> ExtractiveClient(min_score=1.0, max_sentences=1).generate(
    ...     GenerationRequest(1, "...", "is there a fee", (hit,)))
    'There is no fee. [a]'
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from companion.core.checks import check_int, check_number, check_path, check_text
from companion.core.files import atomic_write_text
from companion.errors import InvalidParameterError, UnknownNameError
from companion.llm.retrieval import Hit, tokenize

__all__ = [
    "RECORDINGS",
    "RECORDINGS_SCHEMA",
    "REFUSAL",
    "ExtractiveClient",
    "GenerationClient",
    "GenerationRequest",
    "RecordedClient",
    "fill_prompt",
    "is_refusal",
    "record_responses",
]

REFUSAL = ("I could not find this in Lumen's help centre, so I will not guess. "
           "A support agent can help: choose Contact us in the app.")
"""What the assistant says when nothing relevant was retrieved."""
RECORDINGS_SCHEMA = "llm-recordings/1"
RECORDINGS = Path(__file__).resolve().parent / "recordings.json"
"""The recorded responses the book replays (written by ``python -m companion.llm record``)."""
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


def fill_prompt(template: str, **values: str) -> str:
    """Fill a ``{{name}}`` template (MLflow's prompt format) with ``values``.

    Raises:
        InvalidParameterError: a placeholder has no value, or a value has no placeholder.

    Example:
        >>> fill_prompt("Q: {{question}}", question="why?")
        'Q: why?'
    """
    check_text("template", template)
    wanted = set(_PLACEHOLDER.findall(template))
    if wanted != set(values):
        raise InvalidParameterError(
            f"the template's placeholders are {sorted(wanted)}; values were given for "
            f"{sorted(values)}"
        )
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)


@dataclass(frozen=True)
class GenerationRequest:
    """What the generation step receives.

    Attributes:
        prompt_version: the registry version of the prompt template used.
        prompt: the filled prompt (template, context and question), as a model would get it.
        question: the customer's question.
        context: the retrieved chunks, best first.
    """

    prompt_version: int
    prompt: str
    question: str
    context: tuple[Hit, ...]

    def __post_init__(self) -> None:
        check_int("prompt_version", self.prompt_version, minimum=1)
        check_text("prompt", self.prompt)
        check_text("question", self.question)
        if not isinstance(self.context, tuple) or not all(isinstance(h, Hit) for h in self.context):
            raise InvalidParameterError("context must be a tuple of Hit (retrieved chunks)")

    @property
    def key(self) -> str:
        """SHA-256 (16 hex digits) of the prompt version, the question and the context ids."""
        text = json.dumps({"prompt_version": self.prompt_version, "question": self.question,
                           "context": [h.chunk_id for h in self.context]},
                          sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@runtime_checkable
class GenerationClient(Protocol):
    """Anything that turns a :class:`GenerationRequest` into answer text: where a model plugs in."""

    name: str

    def generate(self, request: GenerationRequest) -> str:
        """Return the answer to ``request``."""
        ...  # pragma: no cover - a protocol


def is_refusal(answer: str) -> bool:
    """True if ``answer`` is the assistant's refusal."""
    return isinstance(answer, str) and answer == REFUSAL


def _check_request(request: object) -> GenerationRequest:
    if not isinstance(request, GenerationRequest):
        raise InvalidParameterError(
            f"request must be a GenerationRequest, got {type(request).__name__}"
        )
    return request


class ExtractiveClient:
    """Answer with the best chunk's sentences that share the most words with the question.

    Args:
        min_score: refuse when the best chunk scores below this (>= 0).
        max_sentences: sentences in an answer (1 to 5), kept in the article's order.
    """

    name = "extractive"

    def __init__(self, min_score: float, max_sentences: int = 2) -> None:
        self.min_score = check_number("min_score", min_score, minimum=0.0)
        self.max_sentences = check_int("max_sentences", max_sentences, minimum=1, maximum=5)

    def generate(self, request: GenerationRequest) -> str:
        """Return the extracted answer with its article id, or :data:`REFUSAL`."""
        request = _check_request(request)
        if not request.context or request.context[0].score < self.min_score:
            return REFUSAL
        best = request.context[0]
        text = best.text.removeprefix(f"{best.title}. ") if best.title else best.text
        sentences = [s for s in _SENTENCE.split(text) if s.strip()]
        words = set(tokenize(request.question))
        overlap = [len(words & set(tokenize(s))) for s in sentences]
        chosen = sorted(sorted(range(len(sentences)), key=lambda i: (-overlap[i], i))
                        [:self.max_sentences])
        return " ".join(sentences[i] for i in chosen) + f" [{best.article_id}]"


def _read_recordings(path: Path) -> dict[str, Any]:
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidParameterError(
            f"no recordings file at {path}; write one with record_responses()"
        ) from None
    except json.JSONDecodeError as exc:
        raise InvalidParameterError(f"{path} is not a recordings file: {exc}") from None
    if not isinstance(values, dict) or values.get("schema") != RECORDINGS_SCHEMA or \
            not isinstance(values.get("responses"), dict):
        raise InvalidParameterError(
            f"{path} is not a recordings file (schema {RECORDINGS_SCHEMA!r} with 'responses')"
        )
    return values


class RecordedClient:
    """Replay the responses recorded in ``path``; refuse clearly on a request never recorded."""

    name = "recorded"

    def __init__(self, path: str | os.PathLike[str] = RECORDINGS) -> None:
        self.path = check_path("path", path)
        values = _read_recordings(self.path)
        self.recorded_by = str(values.get("client", ""))
        self.responses: dict[str, dict[str, Any]] = values["responses"]

    def __len__(self) -> int:
        return len(self.responses)

    def generate(self, request: GenerationRequest) -> str:
        """Return the recorded answer to ``request``.

        Raises:
            UnknownNameError: nothing was recorded for this prompt version, question and
                context (the message says which of them has recordings at all).
        """
        request = _check_request(request)
        found = self.responses.get(request.key)
        if found is None:
            same_question = sorted({r["prompt_version"] for r in self.responses.values()
                                    if r["question"] == request.question})
            hint = (f"the question was recorded with prompt version(s) {same_question} "
                    f"(possibly other context)" if same_question
                    else "the question was never recorded")
            raise UnknownNameError(
                f"no recorded response for key {request.key} (prompt v{request.prompt_version}, "
                f"context {[h.chunk_id for h in request.context]}): {hint}; "
                f"{len(self.responses)} responses are recorded. Record it with "
                "record_responses() or plug in a live client"
            )
        return str(found["answer"])


def record_responses(
    path: str | os.PathLike[str],
    requests: Iterable[GenerationRequest],
    client: GenerationClient,
) -> Path:
    """Answer every request with ``client`` and write the recordings file at ``path``.

    The file is replaced atomically; its keys are sorted, so the same requests and client
    write the same bytes.
    """
    target = check_path("path", path)
    if not isinstance(client, GenerationClient):
        raise InvalidParameterError(
            f"client must have generate(request) and name, got {type(client).__name__}"
        )
    requests = list(requests)
    for request in requests:
        _check_request(request)
    responses = {
        r.key: {"prompt_version": r.prompt_version, "question": r.question,
                "context": [h.chunk_id for h in r.context], "answer": client.generate(r)}
        for r in requests
    }
    record = {"schema": RECORDINGS_SCHEMA, "client": client.name,
              "responses": dict(sorted(responses.items()))}
    return atomic_write_text(target, json.dumps(record, indent=1, ensure_ascii=False) + "\n")



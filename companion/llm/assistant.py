"""The help-centre assistant: retrieve, fill the prompt, generate; one :class:`Response` each.

``Assistant(config, template)`` builds the configuration's corpus, chunks and retriever once.
:meth:`Assistant.ask` retrieves ``config.top_k`` chunks for a question, fills the prompt
template (``{{context}}`` and ``{{question}}``, MLflow's prompt format) and asks the
generation client (by default an :class:`~companion.llm.generation.ExtractiveClient` with the
configuration's ``min_score``). :meth:`Assistant.ask_many` does the same for a batch with one
retrieval pass. Every response carries what a log needs: the configuration and prompt
versions, the retrieved ids and scores, the answer and whether it is a refusal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from companion.core.checks import check_text
from companion.errors import InvalidParameterError
from companion.llm.chunking import chunk_articles, corpus
from companion.llm.config import RagConfig
from companion.llm.generation import (
    ExtractiveClient,
    GenerationClient,
    GenerationRequest,
    fill_prompt,
    is_refusal,
)
from companion.llm.retrieval import Hit, make_retriever

__all__ = ["Assistant", "Response"]


@dataclass(frozen=True)
class Response:
    """One answered question.

    Attributes:
        question: what was asked.
        hits: the retrieved chunks, best first.
        answer: the client's answer.
        refused: whether the answer is the refusal.
        config_version: the :class:`RagConfig` version that answered.
        prompt_version: the prompt version used.
    """

    question: str
    hits: tuple[Hit, ...]
    answer: str
    refused: bool
    config_version: str
    prompt_version: int

    @property
    def top_score(self) -> float:
        """The best chunk's score (0 if nothing was retrieved)."""
        return self.hits[0].score if self.hits else 0.0


def _context(hits: Sequence[Hit]) -> str:
    return "\n".join(f"[{h.article_id}] {h.text}" for h in hits)


class Assistant:
    """Lumen's help-centre assistant for one configuration and prompt template.

    Args:
        config: the retrieval configuration.
        template: the prompt template (``{{context}}`` and ``{{question}}``) of version
            ``config.prompt_version``.
        client: the generation client (default: extractive, refusing below
            ``config.min_score``).
    """

    def __init__(self, config: RagConfig, template: str,
                 client: GenerationClient | None = None) -> None:
        if not isinstance(config, RagConfig):
            raise InvalidParameterError(f"config must be a RagConfig, got {type(config).__name__}")
        fill_prompt(template, context="-", question="-")  # both placeholders, nothing else
        if client is not None and not isinstance(client, GenerationClient):
            raise InvalidParameterError(
                f"client must have generate(request) and name, got {type(client).__name__}"
            )
        self.config = config
        self.template = template
        self.client: GenerationClient = client or ExtractiveClient(config.min_score)
        self.chunks = chunk_articles(corpus(config.corpus_version), config.chunking,
                                     size=config.chunk_size, overlap=config.chunk_overlap,
                                     with_title=config.with_title)
        self.retriever = make_retriever(config.retriever, self.chunks)

    def __repr__(self) -> str:
        return (f"Assistant({self.config.name!r}, version={self.config.version!r}, "
                f"client={self.client.name!r})")

    def with_client(self, client: GenerationClient) -> Assistant:
        """The same assistant (same index) answering with ``client``."""
        if not isinstance(client, GenerationClient):
            raise InvalidParameterError(
                f"client must have generate(request) and name, got {type(client).__name__}"
            )
        twin = object.__new__(Assistant)
        twin.__dict__.update(self.__dict__)
        twin.client = client
        return twin

    def requests(self, questions: Sequence[str]) -> list[GenerationRequest]:
        """Retrieve for each question and build the generation requests."""
        if isinstance(questions, (str, bytes)) or not isinstance(questions, Sequence):
            raise InvalidParameterError(f"questions must be a list of str, got {questions!r}")
        for question in questions:
            check_text("question", question)
        found = self.retriever.search_many(list(questions), k=self.config.top_k)
        return [
            GenerationRequest(self.config.prompt_version,
                              fill_prompt(self.template, context=_context(hits),
                                          question=question),
                              question, tuple(hits))
            for question, hits in zip(questions, found, strict=True)
        ]

    def ask_many(self, questions: Sequence[str]) -> list[Response]:
        """Answer every question (one retrieval pass for the batch)."""
        responses = []
        for request in self.requests(questions):
            answer = self.client.generate(request)
            responses.append(Response(request.question, request.context, answer,
                                      is_refusal(answer), self.config.version,
                                      request.prompt_version))
        return responses

    def ask(self, question: str) -> Response:
        """Answer one question."""
        check_text("question", question)
        return self.ask_many([question])[0]

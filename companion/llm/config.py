"""The assistant's retrieval configuration: one validated, versioned parameter set.

A :class:`RagConfig` holds every choice that changes what the assistant retrieves and says:
the corpus version, the chunking (method, window size and overlap, titles), the retriever, how
many chunks go to the prompt (``top_k``), the score below which it refuses, and the version of
the prompt in MLflow's prompt registry. It is checked when built, and its
:attr:`~RagConfig.version` is a hash of its canonical JSON: two configurations with the same
values have the same version on any machine, and any change of value makes a new one. That
version is what a tracked run, a recorded response and a monitoring alert refer to.

Example:
    >>> RagConfig(retriever="bm25").version == RagConfig(retriever="bm25").version
    True
    >>> RagConfig(retriever="bm25").version == RagConfig(retriever="tfidf").version
    False
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from companion.core.checks import check_bool, check_choice, check_int, check_number, check_text
from companion.errors import InvalidParameterError
from companion.llm.chunking import CHUNKING_METHODS, CORPUS_VERSIONS
from companion.llm.retrieval import RETRIEVERS

__all__ = ["CONFIG_SCHEMA", "RagConfig"]

CONFIG_SCHEMA = "rag-config/1"
"""The format of :meth:`RagConfig.to_dict` (stored as a run's artifact)."""


@dataclass(frozen=True)
class RagConfig:
    """A retrieval-augmented assistant's configuration (see the module docstring).

    Attributes:
        name: a label for readers (``"v2-bm25"``); not part of the version.
        corpus_version: one of :data:`~companion.llm.chunking.CORPUS_VERSIONS`.
        chunking: ``"paragraph"`` or ``"window"``.
        chunk_size: words per window (``window`` only; 10 to 400).
        chunk_overlap: words shared by consecutive windows (0 to ``chunk_size - 1``).
        with_title: start each chunk with its article's title.
        retriever: ``"tfidf"`` or ``"bm25"``.
        top_k: chunks retrieved into the prompt (1 to 20).
        min_score: the best chunk's score below which the assistant refuses (>= 0).
        prompt_version: the version of the assistant's prompt in the registry (>= 1).
    """

    name: str = "default"
    corpus_version: str = CORPUS_VERSIONS[-1]
    chunking: str = "paragraph"
    chunk_size: int = 60
    chunk_overlap: int = 15
    with_title: bool = True
    retriever: str = "bm25"
    top_k: int = 5
    min_score: float = 3.0
    prompt_version: int = 1

    def __post_init__(self) -> None:
        check_text("name", self.name)
        check_choice("corpus_version", self.corpus_version, CORPUS_VERSIONS)
        check_choice("chunking", self.chunking, CHUNKING_METHODS)
        check_int("chunk_size", self.chunk_size, minimum=10, maximum=400)
        check_int("chunk_overlap", self.chunk_overlap, minimum=0, maximum=self.chunk_size - 1)
        check_bool("with_title", self.with_title)
        check_choice("retriever", self.retriever, RETRIEVERS)
        check_int("top_k", self.top_k, minimum=1, maximum=20)
        object.__setattr__(self, "min_score",
                           check_number("min_score", self.min_score, minimum=0.0))
        check_int("prompt_version", self.prompt_version, minimum=1)

    def parameters(self) -> dict[str, Any]:
        """Every value that makes the version (all fields but ``name``)."""
        values = asdict(self)
        values.pop("name")
        return values

    @property
    def version(self) -> str:
        """The first 12 hex digits of the SHA-256 of :meth:`parameters` as canonical JSON."""
        text = json.dumps(self.parameters(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a record: schema, name, version and parameters."""
        return {"schema": CONFIG_SCHEMA, "name": self.name, "version": self.version,
                **self.parameters()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RagConfig:
        """Rebuild a configuration from :meth:`to_dict`; the stored version must match.

        Raises:
            InvalidParameterError: a wrong schema, unknown or missing keys, or a version
                that does not match the values (the record was edited by hand).
        """
        if not isinstance(values, dict) or values.get("schema") != CONFIG_SCHEMA:
            raise InvalidParameterError(
                f"a configuration record must be a dict with schema {CONFIG_SCHEMA!r}, got "
                f"{values!r}"
            )
        names = {f.name for f in fields(cls)}
        given = {k: v for k, v in values.items() if k not in ("schema", "version")}
        if set(given) != names:
            raise InvalidParameterError(
                f"a configuration record needs exactly {sorted(names)}; missing "
                f"{sorted(names - set(given))}, unknown {sorted(set(given) - names)}"
            )
        config = cls(**given)
        if values.get("version") != config.version:
            raise InvalidParameterError(
                f"the record says version {values.get('version')!r} but its values make "
                f"{config.version!r}: it was changed after it was written"
            )
        return config

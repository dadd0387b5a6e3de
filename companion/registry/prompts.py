"""Prompt templates, versioned like models in MLflow's prompt registry.

Lumen's LLM features keep their prompt templates (``{{variable}}`` placeholders) in the same
store as the models, with versions, commit messages, tags and aliases. These are the bodies of
:meth:`~companion.registry.Registry.register_prompt`,
:meth:`~companion.registry.Registry.load_prompt` and
:meth:`~companion.registry.Registry.set_prompt_alias`. They use the registry's own client:
reads bypass MLflow's prompt cache, so a moved alias is seen at once, and nothing is linked to
an active run or model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from companion.core.checks import check_text
from companion.errors import InvalidParameterError, UnknownNameError
from companion.registry.names import (
    check_alias,
    check_name,
    check_one_of,
    check_version,
    is_missing,
)

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from mlflow.entities.model_registry import PromptVersion

    from companion.registry.store import Registry

__all__ = ["load_prompt", "register_prompt", "set_prompt_alias"]


def register_prompt(
    registry: Registry,
    name: str,
    template: str,
    *,
    commit_message: str,
    tags: Mapping[str, str] | None = None,
) -> PromptVersion:
    """Register ``template`` as the next version of prompt ``name``; return the new version."""
    check_name("prompt name", name)
    check_text("prompt template", template)
    check_text("commit message", commit_message)
    if tags is not None and (
        not isinstance(tags, Mapping)
        or not all(isinstance(k, str) and k and isinstance(v, str) for k, v in tags.items())
    ):
        raise InvalidParameterError(f"tags must map non-empty strings to strings, got {tags!r}")
    return registry.client.register_prompt(
        name=name, template=template, commit_message=commit_message, tags=dict(tags or {})
    )


def prompt_versions(registry: Registry, name: str) -> list[int]:
    """The version numbers of prompt ``name`` (empty if there is no such prompt)."""
    from mlflow.exceptions import MlflowException

    try:
        found = registry.client.search_prompt_versions(name)
    except MlflowException as exc:
        if is_missing(exc):
            return []
        raise
    return sorted(int(v.version) for v in found)


def _load(registry: Registry, name: str, version: int) -> PromptVersion:
    prompt = registry.client.load_prompt(name, version=version, cache_ttl_seconds=0)
    if prompt is None:  # pragma: no cover - allow_missing is False: MLflow raises instead
        raise UnknownNameError(f"prompt {name!r} has no version {version}")
    return prompt


def prompt_aliases(registry: Registry, name: str) -> dict[int, list[str]]:
    """The aliases of each version of prompt ``name``."""
    return {
        number: sorted(_load(registry, name, number).aliases)
        for number in prompt_versions(registry, name)
    }


def load_prompt(
    registry: Registry,
    name: str,
    *,
    version: int | str | None = None,
    alias: str | None = None,
) -> PromptVersion:
    """Load prompt ``name`` by version number or by alias.

    Raises:
        UnknownNameError: the prompt, version or alias does not exist (the message lists
            the versions or aliases there are).
    """
    check_name("prompt name", name)
    check_one_of(version, alias)
    versions = prompt_versions(registry, name)
    if not versions:
        raise UnknownNameError(f"prompt {name!r} does not exist in the registry")
    if version is not None:
        number = check_version(version)
        if number not in versions:
            raise UnknownNameError(f"prompt {name!r} has no version {number}; versions: {versions}")
        return _load(registry, name, number)
    held = prompt_aliases(registry, name)
    by_alias = {a: number for number, names in held.items() for a in names}
    if alias not in by_alias:
        known = ", ".join(f"{a!r} -> v{number}" for a, number in by_alias.items()) or "none set"
        raise UnknownNameError(f"prompt {name!r} has no alias {alias!r}; aliases set: {known}")
    return _load(registry, name, by_alias[alias])


def set_prompt_alias(registry: Registry, name: str, alias: Any, version: int | str) -> None:
    """Point alias ``alias`` of prompt ``name`` at ``version`` (which must exist)."""
    check_alias(alias)
    load_prompt(registry, name, version=version)
    registry.client.set_prompt_alias(name, alias, check_version(version))

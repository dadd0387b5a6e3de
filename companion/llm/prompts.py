"""The assistant's prompt templates, and putting them in MLflow's prompt registry.

:data:`PROMPT_TEMPLATES` holds the two versions the book registers under
:data:`ASSISTANT_PROMPT`: version 1, the first draft, and version 2, which tells the model to
answer only from the articles, to cite them, and to refuse rather than guess. Both use
MLflow's ``{{placeholder}}`` format with ``{{context}}`` and ``{{question}}``.
:func:`register_assistant_prompts` registers them through the registry of
:mod:`companion.registry` (:meth:`~companion.registry.Registry.register_prompt`) and points the
``production`` alias at version 2 and ``previous`` at version 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from companion.errors import InvalidParameterError, UnknownNameError

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from companion.registry import Registry

__all__ = ["ASSISTANT_PROMPT", "PROMPT_COMMITS", "PROMPT_TEMPLATES", "register_assistant_prompts"]

ASSISTANT_PROMPT = "lumen-help-assistant"
"""The prompt's name in the registry."""

PROMPT_TEMPLATES: dict[int, str] = {
    1: ("You are Lumen's help-centre assistant. Answer the customer's question.\n\n"
        "Help articles:\n{{context}}\n\nQuestion: {{question}}\nAnswer:"),
    2: ("You are Lumen's help-centre assistant. Answer the customer's question using only "
        "the help articles below, in at most three sentences, and cite the article id in "
        "brackets. If the articles do not answer it, say that you could not find it and "
        "point to Contact us; never guess a price, a date or a policy.\n\n"
        "Help articles:\n{{context}}\n\nQuestion: {{question}}\nAnswer:"),
}
"""The assistant's prompt, version by version."""
PROMPT_COMMITS: dict[int, str] = {
    1: "first draft",
    2: "answer only from the articles, cite them, refuse rather than guess",
}
"""The commit message of each version."""


def register_assistant_prompts(registry: Registry) -> dict[int, int]:
    """Register every version of the assistant's prompt; set ``production`` and ``previous``.

    Versions already registered with the same template are not registered again, so a
    second call changes nothing.

    Returns:
        The registry's version number of each template version.
    """
    from companion.registry import Registry

    if not isinstance(registry, Registry):
        raise InvalidParameterError(
            f"registry must be a companion.registry.Registry, got {type(registry).__name__}"
        )
    numbers: dict[int, int] = {}
    existing: dict[str, int] = {}
    for number in range(1, len(PROMPT_TEMPLATES) + 1):
        try:
            template = registry.load_prompt(ASSISTANT_PROMPT, version=number).template
            existing[str(template)] = number
        except UnknownNameError:  # no such prompt or version yet: registered below
            break
    for version, template in sorted(PROMPT_TEMPLATES.items()):
        if template in existing:
            numbers[version] = existing[template]
            continue
        created = registry.register_prompt(ASSISTANT_PROMPT, template,
                                           commit_message=PROMPT_COMMITS[version],
                                           tags={"owner": "support", "task": "help-centre"})
        numbers[version] = int(created.version)
    registry.set_prompt_alias(ASSISTANT_PROMPT, "production", numbers[max(numbers)])
    registry.set_prompt_alias(ASSISTANT_PROMPT, "previous", numbers[max(numbers) - 1])
    return numbers

"""The online service's request and response bodies, its limits, and its error messages.

Every body is validated by pydantic in *strict* mode with unknown fields forbidden: an id sent
as a string (``"12"``), a float for an int, a boolean for a number or an extra key is refused
rather than coerced. :func:`error_messages` turns pydantic's errors into short messages that
name the field, the offending value (scalars only, shortened) and what is accepted, and never
echo the rest of the request.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, create_model

from companion.core.checks import check_int

__all__ = [
    "MAX_CUSTOMER_ID",
    "BatchRequest",
    "CustomerRequest",
    "Limits",
    "error_messages",
    "features_request_model",
    "shorten",
]

MAX_CUSTOMER_ID = 2**63 - 1
"""The largest id the online store's int64 entity key holds."""

_STRICT = ConfigDict(strict=True, extra="forbid")


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one request may hold.

    Args:
        max_body_bytes: bodies longer than this are refused with 413 before they are parsed.
        max_batch: the most customer ids (or feature rows) one request may score.
    """

    max_body_bytes: int = 16_384
    max_batch: int = 256

    def __post_init__(self) -> None:
        check_int("max_body_bytes", self.max_body_bytes, minimum=16, maximum=16 * 2**20)
        check_int("max_batch", self.max_batch, minimum=1, maximum=100_000)


CustomerId = StrictInt


class CustomerRequest(BaseModel):
    """``POST /predict``: one customer, by id."""

    model_config = _STRICT
    customer_id: CustomerId = Field(ge=0, le=MAX_CUSTOMER_ID)


class BatchRequest(BaseModel):
    """``POST /predict/batch``: several customers, each once."""

    model_config = _STRICT
    customer_ids: list[StrictInt] = Field(min_length=1)


def features_request_model(
    features: list[str], categories: dict[str, list[str]]
) -> type[BaseModel]:
    """Return the strict body model of ``POST /predict/features`` for a model's inputs.

    ``{"customer_id": int, "features": {name: value, ...}}``: every input of the model, no
    other key; categorical inputs (those in ``categories``) are strings, the others finite
    numbers (an int is a number; a string or a boolean is not).
    """
    fields: dict[str, Any] = {}
    for name in features:
        if name in categories:
            fields[name] = (StrictStr, ...)
        else:
            fields[name] = (StrictFloat, Field(allow_inf_nan=False))
    row = create_model("FeatureRow", __config__=_STRICT, **fields)
    return create_model(
        "FeaturesRequest",
        __config__=_STRICT,
        customer_id=(StrictInt, Field(ge=0, le=MAX_CUSTOMER_ID)),
        features=(row, ...),
    )


def shorten(value: Any, width: int = 40) -> str:
    """Return ``repr(value)`` cut to ``width`` characters; containers are only named."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


_ACCEPTED = {
    "int_type": "a whole number (not a string, float or boolean)",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number (not a string or boolean)",
    "float_parsing": "a finite number",
    "finite_number": "a finite number",
    "string_type": "a string",
    "list_type": "a list",
    "model_type": "a JSON object",
    "dict_type": "a JSON object",
    "model_attributes_type": "a JSON object",
}


def error_messages(errors: Sequence[Mapping[str, Any]], example: str) -> list[dict[str, str]]:
    """Turn pydantic's ``errors()`` into ``{"field", "message"}`` pairs, one per error.

    A message names the field, the offending value when it is a scalar, and what is
    accepted; ``example`` is a valid body quoted when the body is not a JSON object.
    """
    out = []
    for error in errors:
        location = ".".join(str(part) for part in error.get("loc", ())) or "body"
        kind = error.get("type", "")
        value = error.get("input")
        if kind == "json_invalid":
            message = f"the body is not valid JSON; send an object such as {example}"
        elif kind == "missing":
            message = f"field {location!r} is missing; it is required"
        elif kind == "extra_forbidden":
            message = (f"field {location!r} is not accepted (value {shorten(value)}); "
                       f"send only the documented fields, e.g. {example}")
        elif location == "body" or kind in ("model_type", "model_attributes_type"):
            message = f"the body must be a JSON object such as {example}, got {shorten(value)}"
        elif kind in _ACCEPTED:
            message = (f"field {location!r} got {shorten(value)}; accepted: "
                       f"{_ACCEPTED[kind]}")
        else:
            message = f"field {location!r} got {shorten(value)}: {error.get('msg', kind)}"
        out.append({"field": location, "message": message})
    return out

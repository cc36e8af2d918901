"""Typed models of what crosses a boundary: events in (one module per source) and the contracts between stages.

- ``groundtruth``: Ground Truth's events to the pre-annotation and consolidation Lambdas, and the
  items of a consolidation batch.
- ``jobs``: the labeling job state change event (EventBridge) and the kinds of job.
- ``overlay``, ``worktime``: the two Lambdas that take two event shapes parse a discriminated union.
- ``stages``: what one stage writes and the next reads (task inputs, the consolidated label, the
  audit verdict, the orchestrator step's result).

Events accept unknown keys (AWS adds keys over time) and require only what the code uses. Parse with
``parse_event``: its error names the fields that are wrong and never echoes their values (events carry
presigned URLs and worker identities).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from gtaudit.exceptions import InvalidEventError


class EventModel(BaseModel):
    """Base of every event model: unknown keys are kept, not rejected."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


def describe_errors(exc: ValidationError, limit: int = 5) -> str:
    """A short account of a validation failure: field paths and messages, no input values."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False)[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def parse_event[M: BaseModel](model: type[M], event: Any) -> M:
    """Validate a Lambda event against ``model``.

    Parameters
    ----------
    model
        The pydantic model of the event.
    event
        The event as Lambda passes it.

    Returns
    -------
    M
        The parsed event.

    Raises
    ------
    InvalidEventError
        The event does not fit the model. The message names the fields, never their values.
    """
    if not isinstance(event, dict):
        raise InvalidEventError(f"{model.__name__}: the event must be a JSON object, got {type(event).__name__}")
    try:
        return model.model_validate(event)
    except ValidationError as exc:
        raise InvalidEventError(f"{model.__name__}: {describe_errors(exc)}") from None


def tag_by_key(key: str, *, present: str, absent: str, model: type[BaseModel]) -> Callable[[Any], str]:
    """The tag function of a two-shape discriminated union told apart by one top-level key.

    For use as ``pydantic.Discriminator(tag_by_key(...))`` where neither shape has a field whose value
    names it (Powertools' models do not): an event holding ``key`` (or an instance of ``model``, when
    pydantic re-validates a parsed union) is tagged ``present``; anything else ``absent``, and then
    fails validation there with the fields that are wrong.
    """

    def tag(event: Any) -> str:
        if isinstance(event, dict):
            return present if key in event else absent
        return present if isinstance(event, model) else absent

    return tag

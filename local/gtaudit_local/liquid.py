"""Render worker task templates as Ground Truth does: Liquid, autoescape on, GT's own filters.

Ground Truth renders a custom template with ``task.input`` = the pre-annotation Lambda's
``taskInput`` and adds four filters to standard Liquid (reference, section 8):

- ``grant_read_access``: an S3 URI becomes a short-lived HTTPS URL. Locally it becomes the
  ``http://127.0.0.1:<port>/...`` URL that ``url_for`` returns (the runtime serves the object).
- ``to_json``: serialize a value to JSON.
- ``escape`` / ``escape_once``: explicit HTML escaping (the standard filters; under autoescape
  they never escape twice).
- ``skip_autoescape``: output a value as is. Everything else is HTML-escaped on output, so
  ``{{ task.input | to_json }}`` inside ``<script>`` needs ``| skip_autoescape``, exactly as on GT.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from liquid import BoundTemplate, Environment, Markup, is_undefined

UrlFor = Callable[[str], str]

_URL_FOR_KEY = "__gtaudit_url_for__"


def _plain(value: Any) -> Any:
    """Undefined -> None, so filters see plain Python values."""
    return None if is_undefined(value) else value


def _to_json(value: Any) -> str:
    return json.dumps(_plain(value), ensure_ascii=False, default=str)


def _skip_autoescape(value: Any) -> Markup:
    value = _plain(value)
    return Markup("" if value is None else str(value))


class _GrantReadAccess:
    """The filter needs the render's ``url_for``; it reads it from the render context's globals."""

    with_context = True

    def __call__(self, value: Any, *, context: Any) -> str:
        value = _plain(value)
        if value is None:
            return ""
        text = str(value)
        if not text.startswith("s3://"):
            return text  # GT leaves anything that is not an S3 URI alone.
        url_for: UrlFor | None = context.globals.get(_URL_FOR_KEY)
        if url_for is None:
            return text
        return url_for(text)


def make_environment() -> Environment:
    """A Liquid environment with Ground Truth's filters and autoescape on (lax undefined, as GT)."""
    env = Environment(autoescape=True)
    env.add_filter("to_json", _to_json)
    env.add_filter("skip_autoescape", _skip_autoescape)
    env.add_filter("grant_read_access", _GrantReadAccess())
    return env


_ENV = make_environment()


@lru_cache(maxsize=32)
def _parse(template_text: str) -> BoundTemplate:
    return _ENV.from_string(template_text)


def render_task(template_text: str, task_input: Mapping[str, Any] | None, url_for: UrlFor | None = None) -> str:
    """Render a worker task template the way Ground Truth renders it for one task.

    Parameters
    ----------
    template_text
        The Liquid HTML template (what ``UiTemplateS3Uri`` points to).
    task_input
        The pre-annotation Lambda's ``taskInput``; the template sees it as ``task.input``.
    url_for
        Maps an ``s3://`` URI to a URL a browser can load; ``grant_read_access`` calls it.
        Without it, ``grant_read_access`` leaves the URI unchanged.

    Returns
    -------
    str
        The rendered HTML page.

    Raises
    ------
    liquid.exceptions.LiquidError
        The template does not parse, or uses an unknown filter.
    """
    template = _parse(template_text)
    return template.render(task={"input": dict(task_input or {})}, **{_URL_FOR_KEY: url_for})

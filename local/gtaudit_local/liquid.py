"""Render worker task templates as Ground Truth does: Liquid, autoescape on, GT's own filters.

Ground Truth renders a custom template with ``task.input`` = the pre-annotation Lambda's
``taskInput`` and adds its own filters to standard Liquid ("Adding automation with Liquid",
https://docs.aws.amazon.com/sagemaker/latest/dg/sms-custom-templates-step2-automate.html; summed
up in ``docs/worker-uis.md``). What that page promises, and how this module keeps each promise:

- Autoescape: "By default, inputs will be HTML escaped", and the page's own example escapes a
  string literal (``{{ "Have you read 'James & the Giant Peach'?" }}`` renders ``&#39;`` and
  ``&amp;``). python-liquid's autoescape trusts string literals (it evaluates them as ``Markup``),
  so an output statement here evaluates its expression with literals as plain text and escapes
  whatever is not marked safe (:class:`_OutputNode`).
- ``escape`` / ``escape_once``: explicit escaping; either marks its result safe, so autoescape
  never escapes it a second time. ``escape_once`` leaves entities that are already there alone
  ("so that &amp; doesn't become &amp;amp;").
- ``skip_autoescape``: the value goes out as is.
- ``to_json``: the page's example writes the JSON raw (``{ "point_number": 8, ... }``, quotes
  unescaped), so its result is marked safe too. That makes ``to_json`` alone unsafe in HTML: a
  ``</script>`` or ``"`` in a value ends the element or the attribute. ``to_json | escape`` is the
  form for an attribute (``escape`` escapes the JSON text once; the browser decodes the entities
  before the element reads the attribute).
- ``grant_read_access``: an S3 URI becomes a short-lived HTTPS URL. Locally it becomes the URL
  that ``url_for`` returns (the runtime serves the object). The URL is an ordinary value: escaped
  on output unless a filter says otherwise.

``assign``, ``capture`` and ``cycle`` keep python-liquid's autoescape rules (the template's own
text is trusted); GT's page says nothing about them, and the shipped templates assign only a
boolean.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, TextIO

from liquid import BoundTemplate, Environment, Markup, RenderContext, escape, is_undefined
from liquid.builtin.output import Output, OutputNode
from liquid.builtin.tags.echo_tag import EchoNode, EchoTag
from liquid.stringify import to_liquid_string

UrlFor = Callable[[str], str]

_URL_FOR_KEY = "__gtaudit_url_for__"

# What escape_once escapes: markup characters, and an ampersand that does not start an entity.
_UNESCAPED = re.compile(r"""[<>"']|&(?!(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#[xX][0-9A-Fa-f]+);)""")


def _plain(value: Any) -> Any:
    """Undefined -> None, so filters see plain Python values."""
    return None if is_undefined(value) else value


def _text(value: Any) -> str:
    value = _plain(value)
    return "" if value is None else str(value)


def _to_json(value: Any) -> Markup:
    return Markup(json.dumps(_plain(value), ensure_ascii=False, default=str))


def _escape_once(value: Any) -> Markup:
    return Markup(_UNESCAPED.sub(lambda m: str(escape(m.group())), _text(value)))


def _skip_autoescape(value: Any) -> Markup:
    return Markup(_text(value))


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


def _literals_as_text(context: RenderContext) -> bool:
    """Turn off the context's literal trust (string literals then evaluate to ``str``); return the old flag."""
    trusted = context.autoescape
    context.autoescape = False
    return trusted


class _OutputNode(OutputNode):
    """``{{ ... }}`` as GT renders it: string literals are values, and every value is escaped unless safe.

    ``context.autoescape`` is read by python-liquid's string literals alone while an expression is
    evaluated (filters read the environment's flag), so switching it off for the evaluation makes
    literals plain text without touching any filter.
    """

    def _write(self, value: object, buffer: TextIO) -> int:
        return buffer.write(to_liquid_string(value, autoescape=True))

    def render_to_output(self, context: RenderContext, buffer: TextIO) -> int:
        trusted = _literals_as_text(context)
        try:
            value = self.expression.evaluate(context)
        finally:
            context.autoescape = trusted
        return self._write(value, buffer)

    async def render_to_output_async(self, context: RenderContext, buffer: TextIO) -> int:
        trusted = _literals_as_text(context)
        try:
            value = await self.expression.evaluate_async(context)
        finally:
            context.autoescape = trusted
        return self._write(value, buffer)


class _EchoNode(_OutputNode, EchoNode):
    """``{% echo ... %}`` is an output statement too."""


class _Output(Output):
    node_class = _OutputNode


class _Echo(EchoTag):
    node_class = _EchoNode


def make_environment() -> Environment:
    """A Liquid environment with Ground Truth's filters and autoescape on (lax undefined, as GT)."""
    env = Environment(autoescape=True)
    env.add_tag(_Output)
    env.add_tag(_Echo)
    env.add_filter("to_json", _to_json)
    env.add_filter("escape_once", _escape_once)
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

"""A local implementation of Ground Truth's crowd HTML elements, and how pages are switched to it.

Templates keep ``<script src="https://assets.crowd.aws/crowd-html-elements.js">`` so they run
unchanged in Ground Truth. When ``gtaudit preview`` or the local runtime serves a rendered page,
``localize_page`` replaces that one script tag with this package's ``SCRIPTS`` (plus their
stylesheet) and a small configuration object telling ``crowd-form`` where to POST the answer.
"""

from __future__ import annotations

import json
import re
from importlib import resources

AWS_CROWD_SCRIPT = "https://assets.crowd.aws/crowd-html-elements.js"
SCRIPTS = ("crowd-elements.js", "crowd-segmentation.js")  # in load order: the second builds on the first
ASSETS: frozenset[str] = frozenset({"crowd-elements.js", "crowd-segmentation.js", "crowd-elements.css"})

_AWS_TAG = re.compile(
    r"""<script\b[^>]*\bsrc\s*=\s*["']?""" + re.escape(AWS_CROWD_SCRIPT) + r"""["']?[^>]*>\s*</script>""",
    re.IGNORECASE,
)


def asset(name: str) -> bytes:
    """The bytes of one asset (one of ``ASSETS``).

    Raises
    ------
    KeyError
        ``name`` is not one of ``ASSETS``.
    """
    if name not in ASSETS:
        raise KeyError(name)
    return resources.files(__package__).joinpath(name).read_bytes()


def localize_page(
    html: str,
    *,
    asset_base: str = "/_crowd/",
    submit_url: str | None = None,
    mode: str = "preview",
    title: str = "gtaudit task",
    extra: dict[str, object] | None = None,
) -> str:
    """Turn a rendered task template into a standalone page that uses the local crowd elements.

    Parameters
    ----------
    html
        The rendered template (``gtaudit_local.liquid.render_task``'s output).
    asset_base
        URL prefix under which the server serves ``ASSETS``.
    submit_url
        Where ``crowd-form`` POSTs the answer (JSON: the answerContent object); ``None`` only shows it.
    mode
        ``"preview"`` shows the answer JSON after submitting; ``"runtime"`` shows a thank-you note.
    title
        The page title.
    extra
        More keys for ``window.CROWD_LOCAL`` (the server's page ``version``, for instance).

    Returns
    -------
    str
        A complete HTML document. The AWS script tag is replaced in place (prepended if absent).
    """
    config = json.dumps({"submitUrl": submit_url, "mode": mode, **(extra or {})}).replace("</", "<\\/")
    local_tag = "".join(f'<script src="{asset_base}{name}"></script>' for name in SCRIPTS)
    body, count = _AWS_TAG.subn(local_tag, html, count=1)
    if not count:
        body = local_tag + body
    safe_title = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{safe_title}</title>"
        f"<script>window.CROWD_LOCAL = {config};</script>"
        f'<link rel="stylesheet" href="{asset_base}crowd-elements.css">'
        f"</head><body>\n{body}\n</body></html>\n"
    )

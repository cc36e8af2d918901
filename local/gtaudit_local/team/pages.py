"""The team server's own pages: sign-in, a person's home, the bar over a task page, refusals.

Every value that a person, a label or a manifest can set goes through :func:`esc` (HTML) or
:func:`js` (a JSON literal inside ``<script>``, with ``</`` broken up) before it reaches a page.
The pages' scripts send every ``POST`` as JSON with the session's CSRF token in ``X-Gtaudit-Csrf``;
the task page's script also adds that header to the crowd form's own ``fetch`` calls and beats
for the claim while the tab is open.
"""

from __future__ import annotations

import html
import json
from typing import Any

from gtaudit_local.team.seats import Claim, QueueCount
from gtaudit_local.team.sessions import CSRF_HEADER

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#222;background:#f6f7f9}
main{max-width:60rem;margin:0 auto;padding:1.5rem}
header.top{display:flex;gap:1rem;align-items:center;padding:.6rem 1.5rem;background:#232f3e;color:#fff}
header.top a,header.top button{color:#fff}
header.top .grow{flex:1}
h1{font-size:1.6rem;margin:.2rem 0}
h2{font-size:1.15rem;margin:1.6rem 0 .5rem}
.role{display:inline-block;padding:.1rem .5rem;border-radius:1rem;background:#e3e8ef;color:#222;font-size:.85rem}
.count{font-size:2.4rem;margin:1rem 0 .2rem}
.count small{font-size:1rem;color:#555}
button{font:inherit;padding:.45rem 1rem;border-radius:.3rem;border:1px solid #888;background:#fff;cursor:pointer}
button.primary{background:#ec7211;border-color:#ec7211;color:#fff;font-weight:600}
button.danger{background:#d13212;border-color:#d13212;color:#fff}
button.link{border:0;background:none;text-decoration:underline;padding:0}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #e3e3e3;vertical-align:top}
th{background:#eef1f4;font-weight:600}
.muted{color:#666}
.bad{color:#d13212;font-weight:600}
.bar{height:.6rem;background:#e3e8ef;border-radius:.3rem;min-width:8rem}
.bar span{display:block;height:100%;background:#1d8102;border-radius:.3rem}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(17rem,1fr));gap:1rem}
.card{background:#fff;border:1px solid #ddd;border-radius:.4rem;padding:.7rem}
.card img{width:100%;height:11rem;object-fit:contain;background:#222;border-radius:.2rem}
.card ul{margin:.3rem 0;padding-left:1.2rem}
.card ul.notes{list-style:none;padding-left:0}
iframe{width:100%;height:32rem;border:1px solid #ccc;background:#fff}
"""

# The bar over a task page, above the template's own layout; sticky, so the image's name stays in view.
TASK_BAR_STYLE = """
#gtaudit-team-bar{position:sticky;top:0;z-index:1000;display:flex;gap:1rem;align-items:center;
padding:.4rem 1rem;background:#232f3e;color:#fff;font:14px system-ui,sans-serif}
#gtaudit-team-bar .image{font-size:1.05rem;font-weight:600}
#gtaudit-team-bar .grow{flex:1}
#gtaudit-team-bar a{color:#fff}
"""


def esc(value: Any) -> str:
    """``value`` as text safe in HTML content and in quoted attributes."""
    return html.escape(str(value), quote=True)


def js(value: Any) -> str:
    """``value`` as a JSON literal safe inside a ``<script>`` element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def document(title: str, body: str, *, head: str = "") -> str:
    """A whole page: ``body`` (already safe HTML) under the shared style."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}</style>{head}</head><body>{body}</body></html>"
    )


def post_script(csrf: str) -> str:
    """``post(path, body)``: a same-origin JSON ``POST`` with the session's CSRF token."""
    return (
        f"<script>const CSRF = {js(csrf)};"
        "function post(path, body) { return fetch(path, {method: 'POST', headers: {'Content-Type':"
        f" 'application/json', {js(CSRF_HEADER)}: CSRF}}, body: JSON.stringify(body || {{}})}}); }}"
        "</script>"
    )


def top_bar(name: str, role: str, *, lead_link: bool) -> str:
    """The strip at the top of a person's pages: who is signed in, the lead's page, sign-out."""
    lead = '<a href="/lead">Lead page</a>' if lead_link else ""
    return (
        f'<header class="top"><strong>gtaudit team</strong><span class="grow"></span>{lead}'
        f'<a href="/">Home</a><span>{esc(name)} <span class="role">{esc(role)}</span></span>'
        '<button class="link" id="signout" type="button">Sign out</button></header>'
        "<script>document.getElementById('signout').onclick = () =>"
        " post('/signout').then(() => location.replace('/'));</script>"
    )


def home_page(name: str, role: str, count: QueueCount, claim: Claim | None, csrf: str, *, lead: bool) -> str:
    """A person's home: their queue ("n of m left") and the button to start the next task."""
    if claim is not None:
        status, label = f"You have a task open: {esc(claim.offer.image)}.", "Continue"
    else:
        status, label = "", "Start"
    body = (
        post_script(csrf) + top_bar(name, role, lead_link=lead) + f"<main><h1>Hello, {esc(name)}</h1>"
        f'<p class="count"><b id="left">{count.left}</b> <small>of <span id="of">{count.of}</span> left</small></p>'
        f'<p class="muted">Tasks of the running jobs that you may do and that still need an answer.</p>'
        f'<p><button class="primary" id="start" type="button">{label}</button></p>'
        f'<p id="status" role="status">{status}</p></main>'
        "<script>"
        "const status = document.getElementById('status');"
        "document.getElementById('start').onclick = () => post('/claim').then(r => r.json()).then(s => {"
        " if (s.claimed) { location.assign('/task'); }"
        " else { status.textContent = 'Nothing for you right now. This page tells you when a task comes.'; } });"
        "function poll() { fetch('/state').then(r => r.json()).then(s => {"
        " document.getElementById('left').textContent = s.left;"
        " document.getElementById('of').textContent = s.of;"
        " if (s.task) { status.textContent = 'You have a task open.'; }"
        " else if (s.available) { status.textContent = 'A task is waiting for you.'; }"
        " else if (status.textContent.startsWith('A task')) { status.textContent = ''; } }).catch(() => {}); }"
        "setInterval(poll, 3000);"
        "</script>"
    )
    return document(f"{name} · gtaudit team", body)


def task_bar(claim: Claim, count: QueueCount, csrf: str, heartbeat_seconds: float) -> str:
    """What goes above a task's template: the image's name, the queue, and the page's script.

    The script adds the CSRF header to the crowd form's ``POST`` s (submit, release), which the
    crowd elements send without it, and beats for the claim while the tab is open; when the claim
    is gone (it timed out, the seat closed) it leaves for the home page.
    """
    task = claim.offer.task
    return (
        f"<style>{TASK_BAR_STYLE}</style>"
        f'<div id="gtaudit-team-bar"><span class="image" id="gtaudit-image">{esc(claim.offer.image)}</span>'
        f'<span>{esc(task.kind)} · {esc(task.job_name)}</span><span class="grow"></span>'
        f'<span>{count.left} of {count.of} left</span><a href="/">Home</a></div>'
        "<script>(function () {"
        f"const CSRF = {js(csrf)}, CLAIM = {js(claim.id)}, plain = window.fetch.bind(window);"
        "window.fetch = function (url, init) { init = init || {};"
        " if (String(init.method || 'GET').toUpperCase() === 'POST' && String(url).startsWith('/')) {"
        f"  init.headers = Object.assign({{}}, init.headers || {{}}, {{{js(CSRF_HEADER)}: CSRF}}); }}"
        " return plain(url, init); };"
        "setInterval(function () { window.fetch('/heartbeat?v=' + CLAIM, {method: 'POST'}).then(function (r) {"
        " if (r.status === 409) location.replace('/'); }).catch(function () {}); },"
        f" {int(heartbeat_seconds * 1000)});"
        "})();</script>"
    )


def signed_in_page() -> str:
    """The answer to a good sign-in link: it replaces itself (and its token) with the home page.

    A page rather than a redirect: a ``SameSite=Strict`` cookie set on a navigation another site
    started (a link in a mail) is not sent along that navigation's redirect; it is on the next
    navigation this page starts itself. ``location.replace`` keeps the token out of the history.
    """
    return document(
        "Signed in · gtaudit team",
        '<main><p>Signed in. <a href="/">Continue</a></p></main>'
        '<script>history.replaceState(null, "", "/"); location.replace("/");</script>',
        head='<meta http-equiv="refresh" content="0; url=/">',
    )


def message_page(title: str, text: str) -> str:
    """A page that only says something (a refusal, signed out)."""
    return document(f"{title} · gtaudit team", f"<main><h1>{esc(title)}</h1><p>{esc(text)}</p></main>")

"""Neutral messages and cards -> HTML for the playground. Pure functions; everything a
person or the bot wrote is escaped, links are http(s) only, and nothing here carries a
script or an inline style, so the page's strict Content-Security-Policy holds."""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape
from urllib.parse import urlsplit

from bot.core.messages import Button, Card, Input

_TOKEN = re.compile(
    r"(?P<mention><@(?P<uid>[A-Za-z0-9_:.\-]+)(?:\|[^>]*)?>)"
    r"|(?P<code>`[^`\n]+`)"
    r"|(?P<url>https?://[^\s<>\"'`]+)"
    r"|(?P<bold>\*[^*\n]+\*)"
)
_TRAILING = ".,;:!?)]}”’'\""


def safe_url(url: str) -> str | None:
    """The URL if it is an http(s) link with a host, else None (no javascript: and friends)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return url.strip()


def _link(url: str, label: str | None = None) -> str:
    return (
        f'<a href="{escape(url)}" target="_blank" rel="noopener noreferrer nofollow">'
        f"{escape(label if label is not None else url)}</a>"
    )


def _inline(text: str, names: Mapping[str, str]) -> str:
    out: list[str] = []
    position = 0
    for match in _TOKEN.finditer(text):
        out.append(escape(text[position : match.start()]))
        position = match.end()
        if match.group("mention"):
            uid = match.group("uid")
            out.append(f'<span class="mention">@{escape(names.get(uid, uid))}</span>')
        elif match.group("code"):
            out.append(f"<code>{escape(match.group('code')[1:-1])}</code>")
        elif match.group("url"):
            url = match.group("url")
            trimmed = url.rstrip(_TRAILING)
            position -= len(url) - len(trimmed)
            out.append(_link(trimmed) if safe_url(trimmed) else escape(trimmed))
        else:
            out.append(f"<strong>{escape(match.group('bold')[1:-1])}</strong>")
    out.append(escape(text[position:]))
    return "".join(out)


def text_html(text: str, names: Mapping[str, str] | None = None) -> str:
    """The bot's light markup (`*bold*`, `` `code` ``, `> quote`, links, mentions) as HTML."""
    names = names or {}
    lines: list[str] = []
    for line in text.split("\n"):
        if line.startswith("> ") or line == ">":
            lines.append(f"<q>{_inline(line[2:], names)}</q>")
        else:
            lines.append(_inline(line, names))
    return "<br>".join(lines)


def _button(button: Button) -> str:
    style = f" {button.style}" if button.style in ("primary", "danger") else ""
    if button.url is not None:
        url = safe_url(button.url)
        if url is None:
            return ""
        return (
            f'<a class="btn link{style}" href="{escape(url)}" target="_blank" '
            f'rel="noopener noreferrer">{escape(button.label)} ↗</a>'
        )
    return (
        f'<button type="button" class="btn{style}" data-action="{escape(button.action_id)}" '
        f'data-value="{escape(button.value)}">{escape(button.label)}</button>'
    )


def _input(field: Input, form_id: str) -> str:
    field_id = f"{form_id}-{field.id}"
    required = "" if field.optional else " required"
    limit = f' maxlength="{field.max_length}"' if field.max_length else ""
    placeholder = f' placeholder="{escape(field.placeholder)}"' if field.placeholder else ""
    name = escape(field.id)
    if field.kind == "select":
        options = ['<option value="">Choose…</option>'] + [
            f'<option value="{escape(o.value)}"'
            + (" selected" if o.value == field.initial else "")
            + f">{escape(o.label)}</option>"
            for o in field.options
        ]
        control = f'<select id="{field_id}" name="{name}"{required}>{"".join(options)}</select>'
    elif field.kind == "multiline":
        control = (
            f'<textarea id="{field_id}" name="{name}" rows="3"{required}{limit}{placeholder}>'
            f"{escape(field.initial)}</textarea>"
        )
    else:
        control = (
            f'<input id="{field_id}" name="{name}" type="text" value="{escape(field.initial)}"'
            f"{required}{limit}{placeholder}>"
        )
    optional = "" if not field.optional else ' <span class="optional">(optional)</span>'
    return f'<label for="{field_id}">{escape(field.label)}{optional}</label>{control}'


def card_html(card: Card, *, form_id: str = "form", names: Mapping[str, str] | None = None) -> str:
    """A card as HTML: title, body, fields, an inline form for inputs, buttons, footer."""
    parts = ['<div class="card">']
    if card.title:
        parts.append(f'<div class="card-title">{escape(card.title)}</div>')
    if card.body:
        parts.append(f'<div class="card-body">{text_html(card.body, names)}</div>')
    if card.fields:
        parts.append('<dl class="card-fields">')
        for item in card.fields:
            # Long or multi-line values (a digest entry) get the card's whole width.
            wide = ' class="wide"' if len(item.value) > 48 or "\n" in item.value else ""
            parts.append(
                f"<div{wide}><dt>{escape(item.label)}</dt>"
                f"<dd>{text_html(item.value, names)}</dd></div>"
            )
        parts.append("</dl>")
    if card.inputs and card.submit is not None:
        submit = card.submit
        parts.append(
            f'<form class="card-form" data-submit="{escape(submit.action_id)}" '
            f'data-value="{escape(submit.value)}">'
        )
        parts += [_input(field, form_id) for field in card.inputs]
        parts.append(f'<button type="submit" class="btn primary">{escape(submit.label)}</button>')
        parts.append("</form>")
    if card.buttons:
        buttons = "".join(_button(b) for b in card.buttons)
        parts.append(f'<div class="card-buttons">{buttons}</div>')
    if card.footer:
        parts.append(f'<div class="card-footer">{text_html(card.footer, names)}</div>')
    parts.append("</div>")
    return "".join(parts)

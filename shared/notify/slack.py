"""A message as a Slack incoming-webhook request: Block Kit blocks and a plain fallback text.

Every text from a pause is a `plain_text` object (never `mrkdwn`, so `*`, `_`, `~` and backquotes
format nothing) with Slack's three control characters escaped (`&`, `<`, `>`: what would make
`<!channel>`, `<@U123>` or `<https://…|link>` special), and the top-level text is sent with
`mrkdwn: false`. Buttons carry a `url` only: opening the confirmation page decides nothing. Texts
longer than Block Kit allows are shortened, never refused.
"""

from shared.notify.message import Message

# Block Kit's limits (https://docs.slack.dev/reference/block-kit).
HEADER, SECTION, FIELD, BUTTON, URL, FIELDS, FALLBACK = 150, 3000, 2000, 75, 3000, 10, 3000


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def shortened(text: str, limit: int) -> str:
    """`text` escaped, in at most `limit` characters as Slack counts them: cut (never an entity in
    half) and ended with an ellipsis when it is longer."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    kept, used = [], 0
    for char in text:
        piece = escape(char)
        if used + len(piece) > limit - 1:
            break
        kept.append(piece)
        used += len(piece)
    return "".join(kept) + "\u2026"


def _plain(text: str, limit: int) -> dict:
    return {"type": "plain_text", "text": shortened(text, limit) or " ", "emoji": False}


def render(message: Message) -> dict:
    blocks = [{"type": "header", "text": _plain(message.title, HEADER)}]
    if message.text:
        blocks.append({"type": "section", "text": _plain(message.text, SECTION)})
    facts = [_plain(f"{label}: {value}", FIELD) for label, value in message.facts][:FIELDS]
    blocks.append({"type": "section", "fields": facts})
    for line in (message.progress, message.note):
        if line:
            blocks.append({"type": "context", "elements": [_plain(line, SECTION)]})
    if message.buttons:
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": _plain(button.label, BUTTON), "url": button.url,
             "action_id": f"link-{index}", **({"style": "primary"} if button.primary else {})}
            for index, button in enumerate(message.buttons)]})
    return {"text": shortened(message.summary, FALLBACK), "mrkdwn": False, "blocks": blocks}

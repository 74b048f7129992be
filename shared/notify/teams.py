"""A message as a Teams Workflows request: an Adaptive Card (version 1.4) in a message envelope.

Teams' Workflows ("When a Teams webhook request is received", which replaced the retired Office 365
connectors) takes `{"type": "message", "attachments": [{"contentType":
"application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": <card>}]}`.

Every text from a pause goes into a `TextRun` of a `RichTextBlock`, which Adaptive Cards never read
as markdown (a `TextBlock` would turn `[x](https://…)` into a link), and the card declares no mention
entities, so `<at>…</at>` stays text. Buttons are `Action.OpenUrl` only: opening the confirmation
page decides nothing.
"""

from shared.notify.message import Message

VERSION = "1.4"
MAX_TEXT = 3000  # per text; a Teams message is at most about 28 KB


def _shorten(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _runs(*runs) -> dict:
    """A RichTextBlock of (text, bold) runs: plain text, whatever it holds."""
    return {"type": "RichTextBlock", "inlines": [
        {"type": "TextRun", "text": _shorten(text), **({"weight": "bolder"} if bold else {})} for text, bold in runs]}


def card(message: Message) -> dict:
    body = [{**_runs((message.title, True)), "id": "title"}]
    body[0]["inlines"][0]["size"] = "large"
    if message.text:
        body.append(_runs((message.text, False)))
    # Facts sit close together, like a FactSet (which would read its values as markdown).
    body += [{**_runs((f"{label}: ", True), (value, False)), **({"spacing": "none"} if index else {})}
             for index, (label, value) in enumerate(message.facts)]
    if message.progress:
        body.append(_runs((message.progress, False)))
    if message.note:
        body.append(_runs((message.note, False)))
    actions = [{"type": "Action.OpenUrl", "title": button.label, "url": button.url,
                **({"style": "positive"} if button.primary else {})} for button in message.buttons]
    return {"type": "AdaptiveCard", "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "version": VERSION, "fallbackText": _shorten(message.summary), "body": body,
            **({"actions": actions} if actions else {})}


def render(message: Message) -> dict:
    """The Workflows request body carrying `message` as a card."""
    return {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                                "contentUrl": None, "content": card(message)}]}

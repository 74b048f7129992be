"""LOCAL, TESTS AND `make run` ONLY: a Teams Workflows webhook and a Slack incoming webhook, as strict
as the services about what they take.

    with ChatStandins() as chat:
        url = chat.url("teams", "approvals")   # http://127.0.0.1:<port>/teams/approvals
        ... the app posts ...
        chat.posts("teams", "approvals")       # the bodies taken

Teams (Workflows, "When a Teams webhook request is received"): 202 only for a JSON message envelope
`{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
"content": <card>}]}` whose card is an AdaptiveCard of version 1.4 or lower that validates against
the Adaptive Card 1.4 JSON schema (local_dev/schemas); 400 otherwise.

Slack (incoming webhook): `ok` (200) for a JSON payload with `text` or valid `blocks`, and Slack's
documented errors for the rest: `invalid_payload` (400, not JSON), `no_text` (400), `invalid_blocks`
(400, a block Block Kit does not take or over its limits). `answer(name, ...)` makes a webhook answer
`channel_not_found` (404), `channel_is_archived` (410) or `429` with a Retry-After instead; `lose(name)`
takes the next post and then drops the connection without an answer.

`GET /` lists what every webhook took, newest first (`make run` prints its address); `GET /posts.json`
gives the same as JSON.
"""

import html
import json
import socket
import threading
from pathlib import Path

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from local_dev.keep_alive import QuietKeepAliveHandler
from local_dev.service import ServedInThread

SCHEMA = Path(__file__).parent / "schemas" / "adaptive-card-1.4.json"
CARD_TYPE = "application/vnd.microsoft.card.adaptive"
SLACK_ERRORS = {"channel_not_found": 404, "channel_is_archived": 410, "invalid_token": 403}


class ChatStandins(ServedInThread):
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host, self.port = host, port
        self._lock = threading.Lock()
        self._posts: dict[tuple, list] = {}
        self._order: list[tuple] = []  # (kind, name, body) as taken
        self._hits: dict[tuple, int] = {}  # (kind, name) -> requests received, taken or not
        self._answers: dict[tuple, list] = {}  # (kind, name) -> answers to give instead, in turn
        self._validator = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._server.server_port}"

    def url(self, kind: str, name: str) -> str:
        return f"{self.base_url}/{kind}/{name}"

    def posts(self, kind: str, name: str) -> list:
        """The bodies this webhook took (a lost answer's post included), oldest first."""
        with self._lock:
            return list(self._posts.get((kind, name), []))

    def hits(self, kind: str, name: str) -> int:
        """How many requests this webhook received, whatever it answered."""
        with self._lock:
            return self._hits.get((kind, name), 0)

    def answer(self, kind: str, name: str, error: str | None = None, *, status: int | None = None,
               retry_after: int | str | None = None, times: int = 1) -> None:
        """The next `times` posts to this webhook get `error` (a Slack error name) or `status` instead."""
        with self._lock:
            self._answers.setdefault((kind, name), []).extend([(error, status, retry_after)] * times)

    def lose(self, kind: str, name: str) -> None:
        """Take the next post, then close the connection without answering."""
        with self._lock:
            self._answers.setdefault((kind, name), []).append(("lose", None, None))

    def start(self) -> "ChatStandins":
        import jsonschema

        schema = json.loads(SCHEMA.read_text())
        self._validator = jsonschema.validators.validator_for(schema)(schema)
        # Connections kept open between requests, as the services keep them.
        self.serve_in_thread(make_server(self.host, self.port, self._app, threaded=True,
                                         request_handler=QuietKeepAliveHandler))
        return self

    def _listing(self, as_json: bool) -> Response:
        with self._lock:
            taken = [{"kind": kind, "webhook": name, "body": body} for kind, name, body in reversed(self._order)]
        if as_json:
            return Response(json.dumps(taken, indent=2), content_type="application/json")
        items = "".join(f"<h2>{html.escape(t['kind'])}: {html.escape(t['webhook'])}</h2>"
                        f"<pre>{html.escape(json.dumps(t['body'], indent=2))}</pre>" for t in taken)
        return Response(f"<!doctype html><title>Chat stand-ins</title><h1>What the app posted</h1>"
                        f"{items or '<p>Nothing yet.</p>'}", content_type="text/html")

    @Request.application
    def _app(self, request):
        if request.method == "GET" and request.path in ("/", "/posts.json"):
            return self._listing(as_json=request.path == "/posts.json")
        kind, _, name = request.path.strip("/").partition("/")
        if request.method != "POST" or kind not in ("teams", "slack") or not name:
            return Response("not found", status=404)
        with self._lock:
            self._hits[(kind, name)] = self._hits.get((kind, name), 0) + 1
            queued = self._answers.get((kind, name)) or []
            special = queued.pop(0) if queued else None
        if special is not None and special[0] != "lose":
            error, status, retry_after = special
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            status = status or SLACK_ERRORS.get(error, 400)
            return Response(error or "", status=status, headers=headers, content_type="text/plain")
        refusal = (self._teams if kind == "teams" else self._slack)(request)
        if refusal is not None:
            return refusal
        with self._lock:
            body = json.loads(request.get_data())
            self._posts.setdefault((kind, name), []).append(body)
            self._order.append((kind, name, body))
        if special is not None and special[0] == "lose":
            request.environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)
            return Response("", status=500)
        return Response("", status=202) if kind == "teams" else Response("ok", status=200, content_type="text/plain")

    def _teams(self, request) -> Response | None:
        body = _json(request)
        problems = _envelope_problems(body)
        if not problems:
            card = body["attachments"][0]["content"]
            problems = [f"card: {error.message[:300]}" for error in self._validator.iter_errors(card)][:5]
            if not problems and _version(card.get("version")) > (1, 4):
                problems = [f"card version {card.get('version')} is above 1.4"]
        if problems:
            return Response(json.dumps({"error": {"code": "InvalidRequestContent", "message": "; ".join(problems)}}),
                            status=400, content_type="application/json")
        return None

    def _slack(self, request) -> Response | None:
        body = _json(request)
        if not isinstance(body, dict):
            return Response("invalid_payload", status=400, content_type="text/plain")
        if "blocks" in body and not blocks_valid(body["blocks"]):
            return Response("invalid_blocks", status=400, content_type="text/plain")
        if not (isinstance(body.get("text"), str) and body["text"].strip()) and not body.get("blocks"):
            return Response("no_text", status=400, content_type="text/plain")
        return None


def _json(request):
    if (request.mimetype or "") != "application/json":
        return None
    try:
        return json.loads(request.get_data())
    except ValueError:
        return None


def _envelope_problems(body) -> list:
    if not isinstance(body, dict) or body.get("type") != "message":
        return ['the body must be a JSON object with "type": "message"']
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return ["attachments must be a non-empty list"]
    attachment = attachments[0]
    if not isinstance(attachment, dict) or attachment.get("contentType") != CARD_TYPE:
        return [f"attachments[0].contentType must be {CARD_TYPE}"]
    if not isinstance(attachment.get("content"), dict) or attachment["content"].get("type") != "AdaptiveCard":
        return ["attachments[0].content must be an AdaptiveCard"]
    return []


def _version(text) -> tuple:
    try:
        return tuple(int(part) for part in str(text).split("."))
    except ValueError:
        return (99,)


# Block Kit's limits, as Slack enforces them for the blocks the app sends.
_TEXT_LIMITS = {"header": 150, "section": 3000, "field": 2000, "context": 3000, "button": 75}


def _text_ok(text, limit: int, plain_only: bool = False) -> bool:
    return (isinstance(text, dict) and text.get("type") in (("plain_text",) if plain_only else ("plain_text", "mrkdwn"))
            and isinstance(text.get("text"), str) and 1 <= len(text["text"]) <= limit)


def blocks_valid(blocks) -> bool:
    """Whether Slack takes these blocks (the kinds the app sends: header, section, context, actions)."""
    if not isinstance(blocks, list) or not 1 <= len(blocks) <= 50:
        return False
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "header":
            ok = _text_ok(block.get("text"), _TEXT_LIMITS["header"], plain_only=True)
        elif kind == "section":
            fields = block.get("fields")
            ok = ("text" in block or fields) and ("text" not in block or _text_ok(block["text"], 3000)) and (
                fields is None or (isinstance(fields, list) and 1 <= len(fields) <= 10
                                   and all(_text_ok(f, _TEXT_LIMITS["field"]) for f in fields)))
        elif kind == "context":
            elements = block.get("elements")
            ok = isinstance(elements, list) and 1 <= len(elements) <= 10 and all(
                _text_ok(e, _TEXT_LIMITS["context"]) for e in elements)
        elif kind == "actions":
            ok = _buttons_ok(block.get("elements"))
        else:
            ok = False
        if not ok:
            return False
    return True


def _buttons_ok(elements) -> bool:
    if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
        return False
    ids = [e.get("action_id") for e in elements if isinstance(e, dict) and e.get("action_id")]
    if len(ids) != len(set(ids)):
        return False
    return all(isinstance(e, dict) and e.get("type") == "button"
               and _text_ok(e.get("text"), _TEXT_LIMITS["button"], plain_only=True)
               and (e.get("url") is None or (isinstance(e["url"], str) and len(e["url"]) <= 3000))
               and e.get("style") in (None, "primary", "danger") for e in elements)

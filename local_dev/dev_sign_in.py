"""DEVELOPMENT ONLY: App Service Authentication's sign-in, emulated for `make run` (never deployed).

In Azure, App Service Authentication ("Easy Auth") signs people in with Microsoft Entra ID,
strips any principal header a client sends, and writes its own `X-MS-CLIENT-PRINCIPAL*` headers
for signed-in requests. Locally, like the Static Web Apps CLI's emulator, this middleware offers:

    GET/POST /.auth/login/aad   a form: type the identity (and roles) to be signed in as
    GET      /.auth/me          who is signed in (App Service's JSON shape), or []
    GET      /.auth/logout      sign out (then post_logout_redirect_uri, else a done page)

A signed-in browser holds an HttpOnly cookie (signed with a key made at start-up); requests
carrying it get the principal headers App Service would write, and principal headers a client
sends itself are removed, as App Service does.
"""

import base64
import hashlib
import hmac
import html
import json
import re
import secrets
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from werkzeug.wrappers import Request, Response

COOKIE = "AppServiceAuthSession"  # App Service's cookie name
NAME_TYP = "preferred_username"
ROLE_TYP = "roles"
_IDENTITY = re.compile(r"[A-Za-z0-9._%+'-]{1,64}@[A-Za-z0-9.-]{1,190}")
_ROLE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_PATH = re.compile(r"/[!-\[\]-~]*")  # "/" and printable ASCII but the backslash: no space, no control character
_ODD = re.compile(r"[\s\x00-\x1f\x7f-\x9f\\]")
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Development sign-in</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}}
.dev{{background:#fff4ce;border:1px solid #8a6d00;padding:.75rem;border-radius:4px}}
label{{display:block;margin-top:1rem;font-weight:600}}input{{width:100%;padding:.5rem;font:inherit;box-sizing:border-box}}
button{{margin-top:1.25rem;padding:.6rem 1.2rem;font:inherit;background:#0b5cad;color:#fff;border:0;border-radius:4px}}
.error{{color:#a4262c}}</style></head>
<body><main>
<p class="dev"><strong>Development only.</strong> This page stands in for App Service Authentication on your
machine (<code>make run</code> with <code>APPROVER_SIGN_IN=easyauth</code>). In Azure, people sign in with
Microsoft Entra ID; this page never runs there.</p>
<h1>Sign in as…</h1>
{error}
<form method="post">
<input type="hidden" name="post_login_redirect_uri" value="{redirect}">
<label for="identity">Identity (e-mail or UPN)</label>
<input id="identity" name="identity" type="email" required autocomplete="username" value="{identity}">
<label for="roles">App roles <span style="font-weight:400">(optional, comma-separated)</span></label>
<input id="roles" name="roles" value="">
<button type="submit">Sign in</button>
</form></main></body></html>"""


class DevSignIn:
    """WSGI middleware: the /.auth routes, and principal headers from the cookie (client-sent ones stripped)."""

    def __init__(self, app):
        self.app = app
        self._key = secrets.token_bytes(32)

    def __call__(self, environ, start_response):
        for key in [k for k in environ if k.startswith(("HTTP_X_MS_CLIENT_PRINCIPAL", "HTTP_X_MS_TOKEN_"))]:
            del environ[key]  # only the platform writes these
        request = Request(environ)
        routes = {"/.auth/login/aad": self._login, "/.auth/me": self._me, "/.auth/logout": self._logout,
                  "/.auth/logout/done": self._done}
        if request.path in routes:
            return routes[request.path](request)(environ, start_response)
        principal = self._principal(request)
        if principal is not None:
            name, roles = principal
            claims = [{"typ": NAME_TYP, "val": name}, {"typ": "name", "val": name.split("@")[0]},
                      *({"typ": ROLE_TYP, "val": role} for role in roles)]
            body = {"auth_typ": "aad", "claims": claims, "name_typ": NAME_TYP, "role_typ": ROLE_TYP}
            environ["HTTP_X_MS_CLIENT_PRINCIPAL"] = base64.b64encode(json.dumps(body).encode()).decode()
            environ["HTTP_X_MS_CLIENT_PRINCIPAL_NAME"] = name
            environ["HTTP_X_MS_CLIENT_PRINCIPAL_ID"] = hashlib.sha256(name.encode()).hexdigest()[:32]
            environ["HTTP_X_MS_CLIENT_PRINCIPAL_IDP"] = "aad"
        return self.app(environ, start_response)

    # The cookie: base64 JSON and an HMAC of it.

    def _sign(self, value: bytes) -> str:
        return hmac.new(self._key, value, hashlib.sha256).hexdigest()

    def _principal(self, request):
        raw = request.cookies.get(COOKIE, "")
        payload, _, signature = raw.partition(".")
        try:
            data = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            if not hmac.compare_digest(self._sign(data), signature):
                return None
            value = json.loads(data)
            return value["name"], tuple(value["roles"])
        except (ValueError, KeyError, TypeError):
            return None

    @staticmethod
    def _local_path(value: str | None) -> str:
        """`value` if it is a path on this site, else "/": an open redirect is a phishing aid even on a laptop."""
        if not value or not _PATH.fullmatch(value) or value.startswith("//"):
            return "/"
        # A browser strips tabs and newlines from a URL (so "/\t/evil.example" is "//evil.example",
        # another host) and some servers decode before they redirect: no such character, escaped
        # or not, and no "//" start once decoded either.
        decoded = unquote(value)
        if _ODD.search(decoded) or decoded.startswith("//"):
            return "/"
        parts = urlsplit(value)
        return value if not parts.scheme and not parts.netloc and urlunsplit(parts) == value else "/"

    def _login(self, request):
        redirect = self._local_path(request.values.get("post_login_redirect_uri"))
        if request.method == "GET":
            return _html(_PAGE.format(error="", redirect=html.escape(redirect), identity=""))
        identity = (request.form.get("identity") or "").strip().lower()
        roles = [r.strip() for r in (request.form.get("roles") or "").split(",") if r.strip()]
        if not _IDENTITY.fullmatch(identity) or not all(_ROLE.fullmatch(r) for r in roles):
            error = '<p class="error">Type an e-mail address or UPN, and roles of letters, digits, . _ -</p>'
            return _html(_PAGE.format(error=error, redirect=html.escape(redirect), identity=html.escape(identity)),
                         400)
        data = json.dumps({"name": identity, "roles": roles}).encode()
        response = Response(status=302, headers={"Location": redirect})
        response.set_cookie(COOKIE, base64.urlsafe_b64encode(data).decode().rstrip("=") + "." + self._sign(data),
                            httponly=True, samesite="Lax", path="/")
        return response

    def _me(self, request):
        principal = self._principal(request)
        if principal is None:
            return _json([])
        name, roles = principal
        claims = [{"typ": NAME_TYP, "val": name}, *({"typ": ROLE_TYP, "val": role} for role in roles)]
        return _json([{"provider_name": "aad", "user_id": name, "user_claims": claims}])

    def _logout(self, request):
        target = request.args.get("post_logout_redirect_uri")
        response = Response(status=302, headers={"Location": self._local_path(target) if target else
                                                 "/.auth/logout/done"})
        response.delete_cookie(COOKIE, path="/")
        return response

    @staticmethod
    def _done(request):
        return _html("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Signed out</title></head>"
                     "<body><main><h1>You have signed out.</h1><p><a href=\"/.auth/login/aad\">Sign in again</a>"
                     "</p></main></body></html>")


def _html(body: str, status: int = 200) -> Response:
    return Response(body, status=status, content_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})


def _json(body) -> Response:
    return Response(json.dumps(body), content_type="application/json", headers={"Cache-Control": "no-store"})


def login_url(path: str) -> str:
    return "/.auth/login/aad?post_login_redirect_uri=" + quote(path, safe="")

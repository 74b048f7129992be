"""Who may decide a pause through its links: the link holder, a named approver, a signed-in person.

With APPROVER_SIGN_IN=none the link is the credential: a shared link decides as "someone with
the link", a personal link as its approver, and a pause that names approvers can be decided only
through personal links. With APPROVER_SIGN_IN=easyauth, App Service Authentication stands in
front of the links and its principal is who decides: a named approver (on a personal link, only
that link's approver), never the requester unless self-approval is allowed.
"""

import base64
import binascii
import json
from dataclasses import dataclass

from shared import people
from shared.errors import PauseError
from shared.lifecycle.plan import names_approvers
from shared.storage.records import damaged, json_field_strict, to_record


@dataclass(frozen=True)
class Principal:
    """A person signed in through App Service Authentication."""

    name: str  # as compared (shared.people.key)
    roles: tuple = ()


class SignInRequired(PauseError):
    """The link needs a signed-in person; the page offers the sign-in."""

    status, code, title = 401, "sign_in_required", "Unauthorized"

    def __init__(self, detail: str, pause: dict):
        super().__init__(detail, pause_id=pause["pause_id"])
        self.pause = pause


class NotYours(PauseError):
    """The link, or the person, may not decide this pause; `reason` says which rule."""

    status, code, title = 403, "not_yours", "Forbidden"

    def __init__(self, reason: str, detail: str, pause: dict):
        super().__init__(detail, pause_id=pause["pause_id"], reason=reason)
        self.reason = reason
        self.pause = pause


class IdentityRefused(PauseError):
    """The signed-in name could pass for someone else's (a Unicode look-alike): it decides nothing."""

    status, code, title = 403, "identity_refused", "Forbidden"


@dataclass(frozen=True)
class Decider:
    identity: str | None  # None: someone holding the shared link, not known by name
    via: str | None       # "personal_link" or "sign_in"


def principal_from_headers(headers) -> Principal | None:
    """The principal App Service Authentication put in the request, if any.

    Only called when APPROVER_SIGN_IN=easyauth: then the platform strips any principal header a
    client sends and writes its own. `X-MS-CLIENT-PRINCIPAL` is base64 JSON with `claims`
    ([{"typ", "val"}]), `name_typ` and `role_typ`; `X-MS-CLIENT-PRINCIPAL-NAME` carries the name.
    A name that could pass for another (see shared.people) raises IdentityRefused (403).
    """
    raw = headers.get("X-MS-CLIENT-PRINCIPAL")
    name, roles = (headers.get("X-MS-CLIENT-PRINCIPAL-NAME") or "").strip(), ()
    if raw:
        try:
            principal = json.loads(base64.b64decode(raw + "=" * (-len(raw) % 4), validate=False))
            claims = [c for c in principal.get("claims") or [] if isinstance(c, dict)]
            name_typ, role_typ = principal.get("name_typ"), principal.get("role_typ")
            name = next((str(c.get("val")) for c in claims if c.get("typ") == name_typ and c.get("val")), name)
            roles = tuple(str(c.get("val")) for c in claims if c.get("typ") == role_typ and c.get("val"))
        except (ValueError, TypeError, AttributeError, binascii.Error):
            return None
    if not name or len(name) > 254:
        return None
    compared = people.key(name)
    if compared is None:  # refused here, so no comparison anywhere can ever see it
        raise IdentityRefused(f"You are signed in as {ascii(name)[1:-1]}, a name with characters that could pass for "
                              "someone else's; this app does not act on it. Sign in with your plain account name.")
    return Principal(compared, roles)


def decider(entity: dict, link_approver: str | None, principal: Principal | None, sign_in: str) -> Decider:
    """Who decides through this link, or raise SignInRequired / NotYours saying why not."""
    named = names_approvers(entity)  # damage, or a list gone, never reads as "no approvers named"
    approvers = json_field_strict(entity, "approvers", [])
    if named and not (isinstance(approvers, list) and all(isinstance(a, str) for a in approvers)):
        raise damaged(entity, "approvers", "is not a list of names")
    requester = entity.get("requested_by")
    self_ok = entity.get("allow_self_approval") is True
    if sign_in == "easyauth":
        if principal is None:
            raise SignInRequired("This request is decided by people who sign in: sign in with your work account, and "
                                 "you come back to this page.", to_record(entity))
        who = principal.name
        if link_approver is not None and who != link_approver:
            raise NotYours("someone_else", f"This link is for {link_approver}; you are signed in as {who}.",
                           to_record(entity))
        if named and who not in approvers:
            raise NotYours("not_an_approver", f"You are signed in as {who}, who is not one of the approvers of "
                                              "this request.", to_record(entity))
        if who == requester and not self_ok:
            raise NotYours("requester", f"You ({who}) asked for this, so someone else must approve it.",
                           to_record(entity))
        return Decider(who, "sign_in")
    if named:
        if link_approver is None:
            raise NotYours("personal_link", "This request names its approvers: decide it through the personal link "
                                            "in your email.", to_record(entity))
        return Decider(link_approver, "personal_link")
    return Decider(None, None)

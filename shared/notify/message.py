"""One message model for every way the app tells people something: a title, the requester's words,
facts, progress and link buttons. Each channel renders it in its own format (`teams`, `slack`), so a
new channel is one renderer, and every renderer shows the same things.

Texts here are plain: whatever a pause says is data, never markup. Each renderer escapes or places
it so its format cannot read it as a link, a mention or formatting.
"""

from dataclasses import dataclass
from datetime import datetime

from shared.clock import as_utc

from shared.lifecycle.model import APP, CHECKS, DECIDED_WORDS, TIMER, Status


@dataclass(frozen=True)
class Button:
    label: str
    url: str
    primary: bool = False


@dataclass(frozen=True)
class Message:
    title: str
    text: str | None                        # the requester's message, if any
    facts: tuple[tuple[str, str], ...]      # (label, value), in the order shown
    progress: str | None                    # "0 of 2 approvals so far"
    buttons: tuple[Button, ...]
    summary: str                            # one line, for notifications and clients that show no layout
    note: str | None = None                 # a line for the reader alone ("these links are yours")


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")


def moment_words(at: str | None) -> str:
    """An ISO 8601 moment as people read it: "Thursday 26 November 2026, 10:00 UTC" (as given, if unreadable)."""
    try:
        moment = as_utc(datetime.fromisoformat((at or "").replace("Z", "+00:00")))
    except ValueError:
        return f"{at} UTC" if at else "unknown"
    return f"{moment:%A} {moment.day} {_MONTHS[moment.month - 1]} {moment.year}, {moment:%H:%M} UTC"


def approval_request(*, title: str | None, message: str | None, pipeline_name: str | None, factory_name: str | None,
                     requested_by: str | None, approvers: tuple, required: int | None, checks: int,
                     expires_at: str, restart_url: str, cancel_url: str, approved: int = 0,
                     you: str | None = None, asks: tuple = ()) -> Message:
    """What people are told when a pause asks for a decision: a channel (read by many) with the shared links,
    an email with the shared links or, `you`, that approver's own."""
    heading = " ".join((title or "").split()) or f"Approval needed: {pipeline_name or 'a pipeline'}"
    facts = [(label, value) for label, value in (("Pipeline", pipeline_name), ("Factory", factory_name)) if value]
    if requested_by:
        facts.append(("Asked by", requested_by))
    if approvers:
        facts.append(("Approvers", ", ".join(approvers)))
    if checks:
        facts.append(("Checks", f"{checks} automated check{'s' if checks != 1 else ''} must pass as well"))
    if asks:  # the labels of the pause's form: the approver is asked for these on the page
        facts.append(("You give", f"{_listed(asks)}, on the approval page"))
    facts.append(("Expires", moment_words(expires_at)))
    progress = f"{approved} of {required} approvals so far" if approvers else None
    buttons = (Button("Review and approve", restart_url, primary=True), Button("Review and cancel", cancel_url))
    note = f"These links are yours ({you}): do not forward them." if you else None
    return Message(title=heading, text=(message or "").strip() or None, facts=tuple(facts), progress=progress,
                   buttons=buttons, summary=heading + (f" ({pipeline_name} in {factory_name})"
                                                      if pipeline_name and factory_name else ""), note=note)


def _listed(items) -> str:
    items = [" ".join(str(item).split()) for item in items]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def asked_for(fields) -> tuple:
    """The labels of a pause's form (what its approver is asked for), as the messages name them."""
    return tuple(f.get("label") or f.get("name") for f in fields or () if isinstance(f, dict))


def decided(*, status: str, decided_by: str | None, decided_at: str | None, run_id: str | None, title: str | None,
            pipeline_name: str | None, factory_name: str | None) -> Message:
    """The short follow-up a channel gets once the pause it was asked about is decided."""
    verb = DECIDED_WORDS.get(status, status)  # Status is a StrEnum: its members are their strings
    when = f" at {decided_at[11:16]} UTC" if decided_at and len(decided_at) >= 16 else ""
    who = {TIMER: None, APP: "the app"}.get(decided_by, decided_by)  # the timer's is said by "Expired"
    if status == Status.RESTARTED and decided_by in (TIMER, CHECKS):  # nobody approved it
        verb, who = ("Continued on timeout", None) if decided_by == TIMER else ("Continued: the checks passed", None)
    if status == Status.FAILED:  # the app's doing (an outside call refused, a claim reconciled), not a person's
        who = None
    heading = f"{verb}{f' by {who}' if who else ''}{when}"
    facts = [(label, value) for label, value in (("Request", " ".join((title or "").split())),
                                                 ("Pipeline", pipeline_name), ("Factory", factory_name),
                                                 ("Decided", decided_at), ("Run", run_id)) if value]
    return Message(title=heading, text=None, facts=tuple(facts), progress=None, buttons=(),
                   summary=heading + (f" ({pipeline_name})" if pipeline_name else ""))


def reminder(*, title: str | None, pipeline_name: str | None, factory_name: str | None, number: int,
             approved: int, required: int | None, expires_at: str | None) -> Message:
    """A reminder in a channel: the request above it carries the links, so it carries none (the app keeps
    only the links' hashes)."""
    asked = " ".join((title or "").split()) or f"Approval needed: {pipeline_name or 'a pipeline'}"
    heading = f"Reminder: {asked}"
    facts = [(label, value) for label, value in (("Pipeline", pipeline_name), ("Factory", factory_name),
                                                 ("Expires", expires_at and moment_words(expires_at))) if value]
    return Message(title=heading, text="Still waiting for a decision: open the request above to decide.",
                   facts=tuple(facts), progress=f"{approved} of {required} approvals so far" if required else None,
                   buttons=(), summary=f"{heading} (reminder {number})")

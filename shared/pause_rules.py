"""What only a pause body's fields together can say (each field alone is checked by its declaration in
`shared.validation`): a quorum that can be reached, recipients for the email, reminders with someone to
remind, an escalation that can happen. Each adds to `problems` (`shared.schema.Problems`), naming the field.
"""


def check_approvers(values: dict, problems) -> None:
    """What only the fields together can say: a quorum that can be reached, recipients for the email."""
    approvers = values.get("approvers")
    if approvers is None:
        for name in ("required_approvals", "allow_self_approval", "return_approver_links"):
            if name in values:
                problems.add(name, "needs_approvers", "only applies when approvers are named")
    else:
        deciders = [a for a in approvers if values.get("allow_self_approval") or a != values.get("requested_by")]
        if values.get("required_approvals", 1) > len(deciders):
            problems.add("required_approvals", "range",
                         f"must be at most {len(deciders)}: the approvers who may decide "
                         "(requested_by does not count unless allow_self_approval)")
    notify = values.get("notify")
    if notify is not None and "email" not in notify and approvers is None and not notify.get("channels"):
        problems.add("notify.email", "required", "is required when no approvers and no channels are named")
    named = (notify or {}).get("channels") or []
    if len(set(named)) != len(named):
        problems.add("notify.channels", "unique", "must name each channel once")


def check_reminders(values: dict, problems) -> None:
    """remind_max needs remind_every, and reminders need someone to remind."""
    if "remind_max" in values and "remind_every" not in values:
        problems.add("remind_max", "needs_remind_every", "only applies with remind_every")
    if "remind_every" in values and values.get("notify") is None:
        problems.add("remind_every", "needs_notify", "needs someone to remind: notify.email or notify.channels")


def check_escalation(values: dict, expires_in: int, problems) -> None:
    """escalate_after and escalate_to come together; who is added must be able to decide, once."""
    after, to = values.get("escalate_after"), values.get("escalate_to")
    if (after is None) != (to is None):
        alone, other = ("escalate_after", "escalate_to") if to is None else ("escalate_to", "escalate_after")
        problems.add(alone, f"needs_{other}", f"only applies with {other}")
        return
    if after is None:
        return
    if after >= expires_in:
        problems.add("escalate_after", "range", "must be less than expires_in: a pause escalates while it waits")
    if not any(to.get(name) for name in ("approvers", "email", "channels")):
        problems.add("escalate_to", "required", "must name someone: approvers, email or channels")
    added = to.get("approvers") or []
    if added:
        approvers = values.get("approvers")
        if approvers is None:
            problems.add("escalate_to.approvers", "needs_approvers",
                         "only applies when the pause names approvers (without them, escalate by email or channels)")
        else:
            already = [a for a in added if a in approvers]
            if already:
                problems.add("escalate_to.approvers", "already_approver",
                             f"must not name an approver already: {', '.join(already)}")
        if values.get("requested_by") in added and not values.get("allow_self_approval"):
            problems.add("escalate_to.approvers", "requested_by", "must not name requested_by: the requester cannot "
                         "approve (unless allow_self_approval)")
    named = to.get("channels") or []
    if len(set(named)) != len(named):
        problems.add("escalate_to.channels", "unique", "must name each channel once")

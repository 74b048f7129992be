"""What only a pause body's fields together can say (each field alone is checked by its declaration in
`shared.validation`): a quorum that can be reached, recipients for the email, reminders with someone to
remind, an escalation that can happen, checks that can run. Each adds to `problems` (`shared.schema.Problems`),
naming the field. `described` states in JSON Schema those that it can state, for the published document.
"""

TARGET_FIELDS = ("subscription_id", "resource_group", "factory_name")  # the factory an adf_run check reads

# A field that only applies with another: the other, and what the 400 says (rule `needs_<other>`).
ONLY_WITH = {
    **{name: ("approvers", "only applies when approvers are named")
       for name in ("required_approvals", "allow_self_approval", "return_approver_links")},
    **{name: ("checks", "only applies when checks are named")
       for name in ("checks_mode", "check_every", "check_max_attempts")},
    "remind_max": ("remind_every", "only applies with remind_every"),
    "remind_every": ("notify", "needs someone to remind: notify.email or notify.channels"),
    "escalate_after": ("escalate_to", "only applies with escalate_to"),
    "escalate_to": ("escalate_after", "only applies with escalate_after"),
}

# The other rules below that JSON Schema can state, each with the fields it is about.
_STATED = (
    ({"notify", "approvers"},  # check_approvers: an email needs recipients
     {"if": {"required": ["notify"], "not": {"required": ["approvers"]}},
      "then": {"properties": {"notify": {"anyOf": [{"required": ["email"]}, {"required": ["channels"]}]}}}}),
    ({"escalate_to"}, {"properties": {"escalate_to": {"minProperties": 1}}}),  # check_escalation: someone
    ({"escalate_to", "approvers"},  # check_escalation: approvers added to approvers
     {"if": {"required": ["escalate_to"], "properties": {"escalate_to": {"required": ["approvers"]}}},
      "then": {"required": ["approvers"]}}),
    ({"checks", *TARGET_FIELDS},  # check_checks: an adf_run check reads a run in the pause's factory
     {"if": {"required": ["checks"], "properties": {"checks": {"contains": {"required": ["adf_run"]}}}},
      "then": {"required": list(TARGET_FIELDS)}}),
    ({"form", "callBackUri"},  # check_form: "pipeline" reads the pipeline a restart-mode pause starts
     # (callBackUri declared too, as every `required` name is: any value)
     {"not": {"required": ["form", "callBackUri"], "properties": {"form": {"const": "pipeline"}, "callBackUri": {}}}}),
)


def described(fields) -> dict:
    """The JSON Schema keywords saying what these rules can say, for a body of `fields` (a catalog entry has
    only some of a pause's)."""
    return {"dependentRequired": {name: [other] for name, (other, _) in ONLY_WITH.items()
                                  if name in fields and other in fields},
            "allOf": [rule for about, rule in _STATED if about <= set(fields)]}


def _only_with(values: dict, names, problems) -> bool:
    """Whether each of `names` given has what it needs (a problem for each that does not)."""
    alone = [name for name in names if name in values and values.get(ONLY_WITH[name][0]) is None]
    for name in alone:
        other, message = ONLY_WITH[name]
        problems.add(name, f"needs_{other}", message)
    return not alone


def check_approvers(values: dict, problems) -> None:
    """What only the fields together can say: a quorum that can be reached, recipients for the email."""
    approvers = values.get("approvers")
    if _only_with(values, ("required_approvals", "allow_self_approval", "return_approver_links"), problems) \
            and approvers is not None:
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
    _only_with(values, ("remind_max", "remind_every"), problems)


def check_escalation(values: dict, expires_in: int, problems) -> None:
    """escalate_after and escalate_to come together; who is added must be able to decide, once."""
    after, to = values.get("escalate_after"), values.get("escalate_to")
    if not _only_with(values, ("escalate_after", "escalate_to"), problems) or after is None:
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


def check_checks(values: dict, problems) -> None:
    """The checks' settings need checks; each check has a name of its own; an adf_run check needs the factory."""
    checks = values.get("checks")
    if not _only_with(values, ("checks_mode", "check_every", "check_max_attempts"), problems) or checks is None:
        return
    names = [check["name"] for check in checks]
    if len(set(names)) != len(names):
        problems.add("checks", "unique", "must not use a check name twice")
    if any("adf_run" in check for check in checks):
        for name in TARGET_FIELDS:
            if name not in values:
                problems.add(name, "required", "is required for an adf_run check: the run's factory")


def check_form(values: dict, callback_mode: bool, problems) -> None:
    """`"form": "pipeline"` reads the parameters of the pipeline a restart-mode pause starts."""
    if callback_mode and values.get("form") == "pipeline":
        problems.add("form", "needs_restart_mode", '"pipeline" reads the parameters of the pipeline a restart-mode '
                                                   "pause starts; in callback mode, list the fields")

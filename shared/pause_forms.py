"""The form a pause asks its approver to fill in: made when the pause is (read from the restart-mode
pipeline's declared parameters for `"form": "pipeline"`), and held against what an approver sends.

The fields and their rules are shared.forms; this module is where a pause meets them: Data Factory at
pause time, a page's POST or a program's `input` at approval.
"""

import logging

from shared import forms
from shared.errors import FormInvalid, InvalidRequest, PayloadTooLarge, UpstreamFailed
from shared.jsonbody import canonical
from shared.settings import get_settings
from shared.targets.adf import PipelineTarget, TargetProblem, get_adf
from shared.targets.outside import Unknown
from shared.validation import MAX_INPUT_BYTES


logger = logging.getLogger(__name__)

_REFUSED = "Some values are not valid; nothing was decided and the link still works."


def resolve(form, target: PipelineTarget | None, prefill: dict) -> list | None:
    """The fields a new pause asks for: as given, or built from the pipeline's declared parameters.

    Raise InvalidRequest naming `form` when the pipeline has nothing an approver could fill in (or does
    not exist), UpstreamFailed when Data Factory cannot be asked: nothing is stored either way.
    """
    if form != "pipeline":
        if form and target is not None and get_settings().check_pipeline_exists:
            _check_against_pipeline(form, target)
        return form
    try:
        declared = get_adf().declared_parameters(target)
    except Unknown as exc:
        raise UpstreamFailed(f"Data Factory could not be asked for the parameters of {target.pipeline_name}, which "
                             f"the form is made of ({exc.code}); nothing was stored. Try again shortly.") from exc
    if isinstance(declared, TargetProblem):
        raise InvalidRequest(f"{declared.field} {declared.message}.",
                             [{"field": declared.field, "rule": declared.rule, "message": declared.message}])
    fields = forms.from_pipeline(declared, prefill)
    if len(fields) > forms.MAX_FIELDS:
        raise InvalidRequest("The pipeline declares more parameters than a form holds.", [
            {"field": "form", "rule": "max_items",
             "message": f"{target.pipeline_name} has {len(fields)} parameters an approver could fill in; a form holds "
                        f"at most {forms.MAX_FIELDS}: list the fields instead"}])
    if not fields:
        raise InvalidRequest("The pipeline declares no parameter an approver could fill in.", [
            {"field": "form", "rule": "no_parameters",
             "message": f"{target.pipeline_name} declares no parameter but pause_id and secure ones; list the "
                        "fields instead, or leave form out"}])
    return fields


# The kinds of field whose values a parameter of each ADF type takes as sent (a date or a choice is text).
_FITS = {"string": {"string", "text", "date", "datetime", "choice"}, "int": {"integer"},
         "float": {"number", "integer"}, "bool": {"boolean"}, "array": {"array", "multi_choice"},
         "object": {"object"}}


def _check_against_pipeline(form: list, target: PipelineTarget) -> None:
    """A listed field that names one of the restart pipeline's parameters must send what that parameter
    takes, and never fill a secure one (a secret would be typed into a page and kept in the record).
    Not checked when Data Factory cannot be asked (the pause is not refused for that)."""
    try:
        declared = get_adf().declared_parameters(target)
    except Unknown as exc:
        logger.warning("could not compare the form with pipeline %s: %s", target.pipeline_name, exc)
        return
    if isinstance(declared, TargetProblem):
        return  # the pipeline's own check says what is wrong with it
    problems = []
    for index, field in enumerate(form):
        kind = str(declared.get(field["name"], {}).get("type", "")).lower()
        if not kind:
            continue  # not a declared parameter: sent along, as the pause's parameters are
        if kind.startswith("secure"):
            problems.append({"field": f"form[{index}].name", "rule": "secure_parameter",
                             "message": f"{field['name']} is a {declared[field['name']]['type']} parameter of "
                                        f"{target.pipeline_name}: a secret is never asked for on a page"})
        elif field["type"] not in _FITS.get(kind, ()):
            problems.append({"field": f"form[{index}].type", "rule": "parameter_type",
                             "message": f"{target.pipeline_name} declares {field['name']} as "
                                        f"{declared[field['name']]['type']}, which a {field['type']} field does not "
                                        f"send (use one of {', '.join(sorted(_FITS.get(kind, ())))})"})
    if problems:
        raise InvalidRequest("The form does not fit the pipeline's parameters.", problems)


def _within_budget(values: dict) -> dict:
    """Values an approval keeps (each approver's, with the pause): at most MAX_INPUT_BYTES as JSON."""
    if len(canonical(values).encode("utf-8")) > MAX_INPUT_BYTES:
        raise PayloadTooLarge("The values are too large to keep with the approval.", [
            {"field": "input", "rule": "max_size", "message": f"at most {MAX_INPUT_BYTES // 1024} KiB as JSON"}])
    return values


def values_from_page(fields: list, posted: dict, tz=None) -> dict:
    """The typed values of a page's POST (`posted`: `form.<name>` -> every value sent), or FormInvalid
    with each message by its field and what was typed, for the page to show again."""
    mine = {name.removeprefix("form."): values for name, values in posted.items() if name.startswith("form.")}
    read = forms.read_form(fields, mine, **({} if tz is None else {"tz": tz}))
    if read.errors:
        raise FormInvalid(_REFUSED, read.errors, read.typed)  # every field as sent: an unticked box stays unticked
    return _within_budget(read.values)


def as_sent(fields: list, posted: dict, tz=None) -> dict:
    """Every field of the form as a page's POST sent it (for the page shown again)."""
    mine = {name.removeprefix("form."): values for name, values in posted.items() if name.startswith("form.")}
    return forms.read_form(fields, mine, **({} if tz is None else {"tz": tz})).typed


def values_from_input(fields: list, data) -> dict:
    """A program's `input`, checked against the form (400 naming `input.<field>`)."""
    values, errors = forms.check_input(fields, data if data is not None else {})
    if errors:
        raise FormInvalid(_REFUSED, {error["field"].removeprefix("input."): error["message"] for error in errors}, {})
    return _within_budget(values)

"""A pause's `form` (shared/forms.py): "pipeline", or 1-30 fields, each checked and normalized when the pause is
made (a pattern RE2 cannot compile, a default that is not a value of its field, a rule for another type: each
refused naming `form[i].<key>`); the JSON Schema the OpenAPI document publishes accepts and refuses what the check
does; and the form built from a pipeline's declared parameters (types mapped, secure ones and pause_id left out,
defaults and the pause's parameters filled in)."""

import jsonschema
import pytest

from shared.forms import FORM, from_pipeline
from shared.schema import INVALID, Problems


def declared(value):
    """(the normalized form, the errors as (field, rule))."""
    problems = Problems()
    result = FORM.check(value, "form", problems)
    return result, [(e["field"], e["rule"]) for e in problems.errors + problems.too_large]


def one(**field):
    """The errors of a form of one field (name "f" unless given)."""
    return declared([{"name": "f", **field}])[1]


# --- what a form may be -----------------------------------------------------------------------------------------

def test_every_type_is_normalized_with_its_label_required_and_max_length_filled_in():
    form, errors = declared([
        {"name": "region", "type": "string"}, {"name": "notes", "label": "Notes", "help": "Why.", "type": "text",
                                               "max_length": 500},
        {"name": "rows", "type": "integer", "required": True}, {"name": "ratio", "type": "number"},
        {"name": "full", "type": "boolean"}, {"name": "day", "type": "date"}, {"name": "at", "type": "datetime"},
        {"name": "env", "type": "choice", "choices": ["dev", "prod"]},
        {"name": "tags", "type": "multi_choice", "choices": ["a", "b"]},
        {"name": "ids", "type": "array"}, {"name": "opts", "type": "object"}])
    assert errors == []
    assert form[0] == {"name": "region", "label": "region", "type": "string", "required": False, "max_length": 4000}
    assert form[1] == {"name": "notes", "label": "Notes", "help": "Why.", "type": "text", "required": False,
                       "max_length": 500}
    assert form[2] == {"name": "rows", "label": "rows", "type": "integer", "required": True}
    assert form[7] == {"name": "env", "label": "env", "type": "choice", "required": False, "choices": ["dev", "prod"]}
    assert [f["type"] for f in form] == ["string", "text", "integer", "number", "boolean", "date", "datetime",
                                         "choice", "multi_choice", "array", "object"]


def test_pipeline_is_taken_as_it_is():
    assert declared("pipeline") == ("pipeline", [])


@pytest.mark.parametrize("value", ["Pipeline", "", [], [{"name": f"f{i}", "type": "string"} for i in range(31)],
                                   {"name": "f", "type": "string"}, 3])
def test_a_form_is_pipeline_or_a_list_of_1_to_30_fields(value):
    assert declared(value) == (INVALID, [("form", "items")])


def test_a_normalized_form_checks_to_itself():
    form, _ = declared([{"name": "at", "type": "datetime", "min": "2025-01-01T00:00+01:00", "default":
                         "2025-06-01T12:00:00+02:00"}, {"name": "n", "type": "number", "default": 2}])
    assert form[0]["min"] == "2024-12-31T23:00:00Z" and form[0]["default"] == "2025-06-01T10:00:00Z"
    assert form[1]["default"] == 2.0
    assert declared(form) == (form, [])


@pytest.mark.parametrize("field, error", [
    ({"name": "1st", "type": "string"}, ("form[0].name", "pattern")),
    ({"name": "a-b", "type": "string"}, ("form[0].name", "pattern")),
    ({"name": "a" * 121, "type": "string"}, ("form[0].name", "max_length")),
    ({"name": "pause_id", "type": "string"}, ("form[0].name", "reserved")),
    ({"type": "string"}, ("form[0].name", "required")),
    ({"name": "f"}, ("form[0].type", "required")),
    ({"name": "f", "type": "password"}, ("form[0].type", "enum")),
    ({"name": "f", "type": "string", "label": "x" * 201}, ("form[0].label", "max_length")),
    ({"name": "f", "type": "string", "label": "  "}, ("form[0].label", "required")),
    ({"name": "f", "type": "string", "help": "x" * 1001}, ("form[0].help", "max_length")),
    ({"name": "f", "type": "string", "required": "yes"}, ("form[0].required", "type")),
    ({"name": "f", "type": "string", "colour": "red"}, ("form[0].colour", "unknown_field")),
    ({"name": "f", "type": "choice"}, ("form[0].choices", "required")),
    ({"name": "f", "type": "multi_choice", "choices": []}, ("form[0].choices", "items")),
    ({"name": "f", "type": "choice", "choices": [str(i) for i in range(101)]}, ("form[0].choices", "items")),
    ({"name": "f", "type": "choice", "choices": ["a", " "]}, ("form[0].choices[1]", "required")),
    ({"name": "f", "type": "choice", "choices": ["a", "x" * 201]}, ("form[0].choices[1]", "max_length")),
    ({"name": "f", "type": "choice", "choices": ["a", "a"]}, ("form[0].choices", "unique")),
    ({"name": "f", "type": "string", "choices": ["a"]}, ("form[0].choices", "not_allowed")),
    ({"name": "f", "type": "string", "min": 1}, ("form[0].min", "not_allowed")),
    ({"name": "f", "type": "boolean", "max": 1}, ("form[0].max", "not_allowed")),
    ({"name": "f", "type": "integer", "max_length": 5}, ("form[0].max_length", "not_allowed")),
    ({"name": "f", "type": "date", "pattern": "x"}, ("form[0].pattern", "not_allowed")),
    ({"name": "f", "type": "string", "max_length": 0}, ("form[0].max_length", "range")),
    ({"name": "f", "type": "text", "max_length": 10001}, ("form[0].max_length", "range")),
    ({"name": "f", "type": "string", "pattern": "x" * 501}, ("form[0].pattern", "max_length")),
    ({"name": "f", "type": "integer", "min": 1.5}, ("form[0].min", "type")),
    ({"name": "f", "type": "integer", "max": 2**53}, ("form[0].max", "range")),
    ({"name": "f", "type": "number", "min": "1"}, ("form[0].min", "type")),
    ({"name": "f", "type": "date", "min": "2025-02-30"}, ("form[0].min", "date")),
    ({"name": "f", "type": "datetime", "max": "2025-01-01T10:00"}, ("form[0].max", "datetime")),
    ({"name": "f", "type": "integer", "min": 5, "max": 4}, ("form[0].min", "range")),
    ({"name": "f", "type": "date", "min": "2025-02-01", "max": "2025-01-31"}, ("form[0].min", "range")),
])
def test_a_field_breaking_a_rule_is_refused_naming_the_key(field, error):
    assert declared([field]) == (INVALID, [error])


def test_the_second_field_with_a_name_is_refused_naming_the_first():
    problems = Problems()
    assert FORM.check([{"name": "a", "type": "string"}, {"name": "b", "type": "string"},
                       {"name": "a", "type": "integer"}], "form", problems) is INVALID
    assert problems.errors == [{"field": "form[2].name", "rule": "unique", "message": "is already the name of form[0]"}]


# --- patterns: RE2, so what could backtrack without bound cannot be declared ---------------------------------------

@pytest.mark.parametrize("pattern", [r"(a)\1", r"(?=x)", r"a(?!b)", r"(?<=x)a", r"(?<!x)a", r"a{1001}", r"(a",
                                     "\udc00"])
def test_a_pattern_re2_cannot_compile_is_refused_at_declaration(pattern):
    problems = Problems()
    assert FORM.check([{"name": "a", "type": "string"}, {"name": "code", "type": "text", "pattern": pattern}],
                      "form", problems) is INVALID
    [error] = problems.errors
    assert (error["field"], error["rule"]) == ("form[1].pattern", "re2")
    assert "RE2" in error["message"] and "backreferences or lookaround" in error["message"]


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"[A-Z]{3}-[0-9]{4}", r"(?i)prod|dev", r"\p{L}+"])
def test_a_pattern_re2_compiles_is_kept(pattern):
    form, errors = declared([{"name": "code", "type": "string", "pattern": pattern}])
    assert errors == [] and form[0]["pattern"] == pattern


# --- defaults -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("field", [
    {"type": "integer", "default": "5"}, {"type": "integer", "default": 1.5}, {"type": "integer", "default": True},
    {"type": "integer", "min": 1, "max": 9, "default": 10}, {"type": "number", "default": "2.5"},
    {"type": "number", "min": 0, "default": -0.5}, {"type": "boolean", "default": "true"},
    {"type": "date", "default": "2025-13-01"}, {"type": "date", "max": "2025-01-31", "default": "2025-02-01"},
    {"type": "datetime", "default": "2025-01-01T10:00"},
    {"type": "datetime", "min": "2025-01-01T00:00:00Z", "default": "2025-01-01T00:30:00+01:00"},
    {"type": "choice", "choices": ["a", "b"], "default": "c"},
    {"type": "multi_choice", "choices": ["a", "b"], "default": ["a", "c"]},
    {"type": "multi_choice", "choices": ["a", "b"], "default": "a"},
    {"type": "string", "max_length": 3, "default": "abcd"}, {"type": "string", "default": "two\nlines"},
    {"type": "string", "pattern": "[0-9]+", "default": "12a"}, {"type": "array", "default": {"a": 1}},
    {"type": "object", "default": [1]}, {"type": "string", "required": True, "default": " "},
])
def test_a_default_that_is_not_a_value_of_its_field_is_refused(field):
    errors = one(**field)
    assert len(errors) == 1 and errors[0][0] == "form[0].default"


@pytest.mark.parametrize("field, kept", [
    ({"type": "integer", "min": 1, "max": 9, "default": 9}, 9), ({"type": "number", "default": 2}, 2.0),
    ({"type": "boolean", "default": False}, False), ({"type": "date", "default": "2025-01-31"}, "2025-01-31"),
    ({"type": "datetime", "default": "2025-01-31T17:30+01:00"}, "2025-01-31T16:30:00Z"),
    ({"type": "choice", "choices": ["a", "b"], "default": "b"}, "b"),
    ({"type": "multi_choice", "choices": ["a", "b", "c"], "default": ["c", "a", "c"]}, ["a", "c"]),
    ({"type": "text", "default": "two\nlines"}, "two\nlines"), ({"type": "array", "default": []}, []),
    ({"type": "object", "default": {"a": [1]}}, {"a": [1]}),
])
def test_a_default_is_kept_typed_as_the_fields_values_are(field, kept):
    form, errors = declared([{"name": "f", **field}])
    assert errors == [] and form[0]["default"] == kept


def test_a_blank_default_of_an_optional_field_is_no_default():
    form, errors = declared([{"name": "f", "type": "string", "default": ""}])
    assert errors == [] and "default" not in form[0]


# --- the published JSON Schema ----------------------------------------------------------------------------------------

ACCEPTED = [
    "pipeline",
    [{"name": "env", "type": "choice", "choices": ["dev", "prod"], "default": "dev", "label": "Environment"}],
    [{"name": "rows", "type": "integer", "min": 1, "max": 10, "default": 3, "required": True, "help": "How many."}],
    [{"name": "code", "type": "string", "max_length": 10, "pattern": "[A-Z]+", "default": "AB"}],
    [{"name": "at", "type": "datetime", "min": "2025-01-01T00:00:00Z", "default": "2025-06-01T10:00+02:00"}],
    [{"name": "day", "type": "date", "max": "2030-12-31"}, {"name": "ids", "type": "array", "default": [1, 2]}],
    [{"name": "tags", "type": "multi_choice", "choices": ["a", "b"], "default": ["a"]}],
    [{"name": "full", "type": "boolean", "default": True}, {"name": "opts", "type": "object", "default": {}}],
]
REFUSED = [
    "Pipeline", [], [{"name": f"f{i}", "type": "string"} for i in range(31)],
    [{"name": "1st", "type": "string"}], [{"name": "pause_id", "type": "string"}], [{"name": "f"}],
    [{"name": "f", "type": "password"}], [{"name": "f", "type": "string", "colour": "red"}],
    [{"name": "f", "type": "choice"}], [{"name": "f", "type": "string", "choices": ["a"]}],
    [{"name": "f", "type": "string", "min": 1}], [{"name": "f", "type": "integer", "max_length": 3}],
    [{"name": "f", "type": "date", "pattern": "x"}], [{"name": "f", "type": "integer", "default": "5"}],
    [{"name": "f", "type": "integer", "min": 1.5}], [{"name": "f", "type": "boolean", "default": "true"}],
    [{"name": "f", "type": "datetime", "default": "2025-01-01T10:00"}], [{"name": "f", "type": "array", "default": {}}],
    [{"name": "f", "type": "string", "label": "x" * 201}], [{"name": "f", "type": "text", "max_length": 10001}],
    [{"name": "f", "type": "choice", "choices": ["a"] * 101}],
]


def test_the_schema_is_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(FORM.schema())


@pytest.mark.parametrize("value", ACCEPTED)
def test_the_schema_accepts_what_the_check_accepts(value):
    assert declared(value)[1] == []
    assert jsonschema.Draft202012Validator(FORM.schema()).is_valid(value)


@pytest.mark.parametrize("value", REFUSED)
def test_the_schema_refuses_what_the_check_refuses(value):
    assert declared(value)[0] is INVALID
    assert not jsonschema.Draft202012Validator(FORM.schema()).is_valid(value)


@pytest.mark.parametrize("value", [
    [{"name": "a", "type": "string"}, {"name": "a", "type": "string"}],
    [{"name": "f", "type": "string", "pattern": r"(a)\1"}],
    [{"name": "f", "type": "integer", "min": 5, "max": 4}],
    [{"name": "f", "type": "choice", "choices": ["a"], "default": "b"}],
])
def test_what_json_schema_cannot_say_is_refused_by_the_check_and_described(value):
    """Unique names, RE2, min <= max and a default among the choices are beyond JSON Schema: the check
    refuses them and the schema's descriptions say so."""
    assert declared(value)[0] is INVALID
    schema = FORM.schema()
    fields = schema["oneOf"][1]
    assert "unique" in fields["description"] and "RE2" in fields["items"]["properties"]["pattern"]["description"]


def test_the_schema_describes_pipeline_and_every_type():
    schema = FORM.schema()
    assert schema["description"] and schema["oneOf"][0]["const"] == "pipeline"
    assert "SecureString" in schema["oneOf"][0]["description"]
    described = schema["oneOf"][1]["items"]["properties"]["type"]
    assert all(kind in described["description"] for kind in described["enum"])


# --- from a pipeline's declared parameters ---------------------------------------------------------------------

PIPELINE = {
    "region": {"type": "String", "default_value": "westeurope"}, "label": {"type": "String"},
    "rows": {"type": "Int", "default_value": 100}, "limit": {"type": "Int"},
    "ratio": {"type": "Float", "default_value": 1}, "scale": {"type": "Float"},
    "full": {"type": "Bool", "default_value": True}, "dry": {"type": "Bool"},
    "ids": {"type": "Array", "default_value": [1, 2]}, "list": {"type": "Array"},
    "opts": {"type": "Object", "default_value": {"a": 1}}, "conf": {"type": "Object"},
    "password": {"type": "SecureString"}, "secret": {"type": "SecureObject", "default_value": {"k": "v"}},
    "pause_id": {"type": "String"},
}


def test_the_pipelines_parameters_become_fields_in_order_typed_with_their_defaults():
    form = from_pipeline(PIPELINE, {})
    assert [(f["name"], f["type"], f["required"], f.get("default")) for f in form] == [
        ("region", "string", False, "westeurope"), ("label", "string", True, None),
        ("rows", "integer", False, 100), ("limit", "integer", True, None),
        ("ratio", "number", False, 1.0), ("scale", "number", True, None),
        ("full", "boolean", False, True), ("dry", "boolean", True, None),
        ("ids", "array", False, [1, 2]), ("list", "array", True, None),
        ("opts", "object", False, {"a": 1}), ("conf", "object", True, None)]
    assert form[0] == {"name": "region", "label": "region", "type": "string", "required": False,
                       "max_length": 10000, "default": "westeurope"}


def test_secure_and_pause_id_parameters_are_never_on_the_form_even_when_prefilled():
    form = from_pipeline(PIPELINE, {"password": "hunter2", "secret": {"k": "v"}, "pause_id": "x"})
    assert not {"password", "secret", "pause_id"} & {f["name"] for f in form}


def test_the_pauses_parameters_prefill_the_fields_over_the_pipelines_defaults():
    form = {f["name"]: f for f in from_pipeline(PIPELINE, {"region": "northeurope", "limit": 7, "ratio": 0.5,
                                                           "dry": False, "conf": {"b": [2]}, "other": 1})}
    assert (form["region"]["default"], form["region"]["required"]) == ("northeurope", False)
    assert (form["limit"]["default"], form["limit"]["required"]) == (7, True)  # still required: shown filled in
    assert (form["ratio"]["default"], form["dry"]["default"], form["conf"]["default"]) == (0.5, False, {"b": [2]})


def test_a_prefilled_text_standing_for_a_value_is_read_and_one_that_is_no_value_is_not_shown():
    form = {f["name"]: f for f in from_pipeline(PIPELINE, {"limit": "42", "ids": "[3]", "full": "false",
                                                           "rows": "many", "scale": True})}
    assert (form["limit"]["default"], form["ids"]["default"], form["full"]["default"]) == (42, [3], False)
    assert form["rows"]["default"] == 100      # "many" is no Int: the pipeline's default is shown
    assert "default" not in form["scale"]      # true is no Float, and there is no default


def test_adf_type_names_are_compared_ignoring_case_and_unknown_types_are_left_out():
    form = from_pipeline({"a": {"type": "string"}, "b": {"type": "INT"}, "c": {"type": "securestring"},
                          "d": {"type": "Decimal"}}, None)
    assert [(f["name"], f["type"]) for f in form] == [("a", "string"), ("b", "integer")]


def test_a_string_parameter_with_a_line_break_in_its_value_is_a_text_field():
    form = from_pipeline({"query": {"type": "String", "default_value": "SELECT 1\nFROM t"}}, {})
    assert (form[0]["type"], form[0]["default"]) == ("text", "SELECT 1\nFROM t")


def test_a_none_default_counts_as_no_default():
    assert from_pipeline({"a": {"type": "Int", "default_value": None}}, {})[0]["required"] is True


def test_the_form_from_a_pipeline_is_a_valid_form():
    form = from_pipeline(PIPELINE, {"limit": 7})
    assert declared(form) == (form, [])

"""The importable ADF pipeline definitions in adf/pipelines.

Each file is checked against the Data Factory SDK's own models (azure-mgmt-datafactory): every key
must be one the model knows, activity types must map to the right model classes, and the fields
that matter (reportStatusOnCallBack, the WebHook timeout, parameters, dependsOn) must land where
ADF reads them. On top of that the pause bodies are checked against the public API contract
(/api/pause fields), and the expressions against the pipeline they live in (declared parameters
and variables, referenced activities that really run earlier).

Note on the SDK (10.x, generated on `_utils.model_base`): `PipelineResource(doc)` parses the full
`{"name", "properties"}` document, but activity types that sit under a second discriminator level
(Activity -> ControlActivity -> WebHookActivity, Activity -> ExecutionActivity -> WebActivity)
come back as the base `Activity`. So the tests resolve each activity's class from the SDK's
discriminator registry (`__mapping__`) and build it from the raw JSON themselves. Building such a
class also sets its `type` attribute to the intermediate base's value ("Container", "Execution"),
so the tests never read `.type` from those instances; the raw JSON is left unchanged.
"""

import json
import re
from pathlib import Path

import pytest
from azure.mgmt.datafactory import models

PIPELINES = Path(__file__).resolve().parent.parent / "adf" / "pipelines"
PIPELINE_FILES = sorted(PIPELINES.glob("*.json"))

# POST /api/pause request fields (CONTRACT.md).
PAUSE_FIELDS = {"subscription_id", "resource_group", "factory_name", "pipeline_name", "tenant_id",
                "parameters", "data", "expires_in", "on_timeout", "notification", "notify",
                "callBackUri", "source", "approvers", "required_approvals", "requested_by", "allow_self_approval",
                "checks", "checks_mode", "check_every", "check_max_attempts"}
RESTART_TARGET_FIELDS = {"subscription_id", "resource_group", "factory_name", "pipeline_name"}
NOTIFICATION_FIELDS = {"title", "message", "success_message"}
NOTIFY_FIELDS = {"email", "subject"}
MIN_EXPIRES_IN, MAX_EXPIRES_IN = 60, 2592000
EXPIRY_SWEEP_SECONDS = 60  # the timer runs every minute

# Documented pipeline-scope system variables, plus parameters/globalParameters.
PIPELINE_SYSTEM_PROPERTIES = {"DataFactory", "Pipeline", "RunId", "TriggerType", "TriggerId", "TriggerName",
                              "TriggerTime", "GroupId", "TriggeredByPipelineName", "TriggeredByPipelineRunId",
                              "parameters", "globalParameters"}

# WebHook timeout, as the SDK documents it (WebHookActivityTypeProperties.timeout): [d.]hh:mm:ss
WEBHOOK_TIMEOUT = re.compile(r"((\d+)\.)?(\d\d):(60|([0-5][0-9])):(60|([0-5][0-9]))")

EXPECTED_ACTIVITY_CLASSES = {
    "PausableLoad_WaitForUpstream": {"WaitForUpstream": models.WebHookActivity, "Load": models.WaitActivity},
    "PausableLoad_QualityGate": {"WaitForQualityAndApproval": models.WebHookActivity, "Load": models.WaitActivity},
    "PausableLoad_Pause": {"Prepare": models.WaitActivity, "Pause": models.WebActivity,
                           "CapturePauseId": models.SetVariableActivity,
                           "CaptureRestartUrl": models.SetVariableActivity},
    "PausableLoad_Pause_KeyVault": {"Prepare": models.WaitActivity, "GetFunctionKey": models.WebActivity,
                                    "Pause": models.WebActivity, "CapturePauseId": models.SetVariableActivity,
                                    "CaptureRestartUrl": models.SetVariableActivity},
    "PausableLoad_Continue": {"ReadPause": models.WebActivity, "ReadData": models.SetVariableActivity,
                              "ReadRowsLoaded": models.SetVariableActivity, "Load": models.WaitActivity},
    "PausableLoad_Checkpoints": {"Stage": models.WaitActivity, "CheckpointAfterStaging": models.WebHookActivity,
                                 "Load": models.WaitActivity, "CheckpointBeforePublish": models.WebHookActivity,
                                 "Publish": models.WaitActivity},
    "PausableLoad_WebHookApproval": {"WaitForApproval": models.WebHookActivity,
                                     "RecordApproval": models.SetVariableActivity, "Load": models.WaitActivity},
    "PausableLoad_Publish": {"DescribePublish": models.SetVariableActivity, "Publish": models.WaitActivity},
}


# --- helpers ---------------------------------------------------------------------------------

def load(name):
    return json.loads((PIPELINES / f"{name}.json").read_text(encoding="utf-8"))


def activities_by_name(doc):
    return {activity["name"]: activity for activity in doc["properties"]["activities"]}


def concrete_classes(base):
    """Discriminator value -> model class, across nested polymorphic bases."""
    found = {}
    for value, cls in base.__mapping__.items():
        if "__mapping__" in vars(cls):  # an intermediate base (ControlActivity, ExecutionActivity)
            found.update(concrete_classes(cls))
        else:
            found[value] = cls
    return found


def as_concrete(model, raw):
    """`model` itself, or, for a polymorphic base, the subclass named by raw["type"] built from raw."""
    if "__mapping__" in vars(type(model)) and isinstance(raw, dict) and "type" in raw:
        cls = concrete_classes(type(model)).get(raw["type"])
        if cls is not None:
            return cls(raw)
    return model


def sdk_activity(raw):
    cls = concrete_classes(models.Activity).get(raw["type"])
    assert cls is not None, f"activity type {raw['type']!r} is unknown to the SDK"
    return cls(raw)


def is_model(value):
    return hasattr(type(value), "_attr_to_rest_field")


def unknown_keys(model, raw, path):
    """JSON keys (dotted paths) that the SDK model does not declare, recursively."""
    model = as_concrete(model, raw)
    fields = {rest_field._rest_name: attr for attr, rest_field in type(model)._attr_to_rest_field.items()}
    for key, value in raw.items():
        if key not in fields:
            yield f"{path}.{key}"
        else:
            yield from _unknown_in_value(getattr(model, fields[key]), value, f"{path}.{key}")


def _unknown_in_value(attr, value, path):
    if is_model(attr) and isinstance(value, dict):
        yield from unknown_keys(attr, value, path)
    elif isinstance(attr, list) and isinstance(value, list):
        for index, (item, raw_item) in enumerate(zip(attr, value)):
            yield from _unknown_in_value(item, raw_item, f"{path}[{index}]")
    elif isinstance(attr, dict) and isinstance(value, dict):
        for key, raw_item in value.items():
            yield from _unknown_in_value(attr.get(key), raw_item, f"{path}.{key}")


def strings(value, skip_keys=("description",)):
    """Every string value in a JSON value, leaving out free-text keys that ADF does not evaluate."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from strings(item, skip_keys)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in skip_keys:
                yield from strings(item, skip_keys)


def expressions(text):
    """The expression bodies in one JSON string value: a whole-value expression or @{...} parts."""
    if text.startswith("@@"):
        return []
    if text.startswith("@") and not text.startswith("@{"):
        return [text[1:]]
    parts = re.findall(r"@\{([^{}]*)\}", text)
    leftover = re.sub(r"@\{[^{}]*\}", "", text).replace("@@", "")
    assert "@" not in leftover, f"malformed string interpolation in {text!r}"
    return parts


def all_expressions(value):
    return [expression for text in strings(value) for expression in expressions(text)]


def assert_balanced(expression):
    depth, in_string = 0, False
    for char in expression:
        if char == "'":
            in_string = not in_string
        elif not in_string and char in "([":
            depth += 1
        elif not in_string and char in ")]":
            depth -= 1
            assert depth >= 0, f"unbalanced brackets in {expression!r}"
    assert depth == 0 and not in_string, f"unbalanced brackets or quotes in {expression!r}"


def upstream(doc, name):
    """Names of the activities that must finish before `name` starts (transitively)."""
    by_name = activities_by_name(doc)
    seen, stack = set(), [name]
    while stack:
        for dependency in by_name[stack.pop()].get("dependsOn", []):
            if dependency["activity"] not in seen:
                seen.add(dependency["activity"])
                stack.append(dependency["activity"])
    return seen


def webhook_timeout_seconds(text):
    match = WEBHOOK_TIMEOUT.fullmatch(text)
    assert match, f"WebHook timeout {text!r} is not [d.]hh:mm:ss"
    days = int(match.group(2) or 0)
    return ((days * 24 + int(match.group(3))) * 60 + int(match.group(4))) * 60 + int(match.group(6))


def parameter_reference(expression):
    match = re.fullmatch(r"pipeline\(\)\.parameters\.(\w+)", expression)
    return match and match.group(1)


def key_header_sources(doc, activity):
    """Where an activity's x-functions-key comes from: 'parameter:<type>' or 'activity:<name>'."""
    value = activity["typeProperties"]["headers"]["x-functions-key"]
    (expression,) = expressions(value)
    name = parameter_reference(expression)
    if name:
        return f"parameter:{doc['properties']['parameters'][name]['type']}"
    match = re.fullmatch(r"activity\('([^']+)'\)\.output\.value", expression)
    assert match, f"x-functions-key {value!r} is neither a parameter nor a Key Vault read"
    return f"activity:{match.group(1)}"


# --- every pipeline file -----------------------------------------------------------------------

def test_the_expected_pipeline_files_exist():
    assert {path.stem for path in PIPELINE_FILES} == set(EXPECTED_ACTIVITY_CLASSES)


@pytest.fixture(params=PIPELINE_FILES, ids=lambda path: path.stem)
def doc(request):
    return json.loads(request.param.read_text(encoding="utf-8")) | {"_file": request.param.stem}


def test_document_shape_and_name(doc):
    assert set(doc) == {"name", "properties", "_file"}
    assert doc["name"] == doc["_file"]
    resource = models.PipelineResource({key: doc[key] for key in ("name", "properties")})
    assert resource.name == doc["name"]
    assert isinstance(resource.properties, models.Pipeline)
    assert [activity.name for activity in resource.properties.activities] == \
        [activity["name"] for activity in doc["properties"]["activities"]]


def test_no_keys_unknown_to_the_sdk(doc):
    raw = {key: doc[key] for key in ("name", "properties")}
    resource = models.PipelineResource(raw)
    assert list(unknown_keys(resource, raw, "$")) == []


def test_activity_types_deserialize_to_the_right_sdk_classes(doc):
    expected = EXPECTED_ACTIVITY_CLASSES[doc["name"]]
    assert list(activities_by_name(doc)) == list(expected)
    for raw in doc["properties"]["activities"]:
        activity = sdk_activity(raw)
        assert type(activity) is expected[raw["name"]], raw["name"]
        assert activity.name == raw["name"]
        assert activity.type_properties is not None
        # Not `activity.type`: see the module docstring.


def test_parameter_and_variable_types_are_valid(doc):
    resource = models.PipelineResource({key: doc[key] for key in ("name", "properties")})
    parameter_types = {item.value for item in models.ParameterType} | {"SecureString"}
    for name, spec in resource.properties.parameters.items():
        assert spec.type in parameter_types, name
    for name, spec in (resource.properties.variables or {}).items():
        assert spec.type in {item.value for item in models.VariableType}, name


def test_depends_on_names_existing_earlier_activities_without_cycles(doc):
    names = list(activities_by_name(doc))
    conditions = {item.value for item in models.DependencyCondition}
    for raw in doc["properties"]["activities"]:
        for dependency in raw.get("dependsOn", []):
            assert dependency["activity"] in names, f"{raw['name']} depends on unknown {dependency['activity']}"
            assert set(dependency["dependencyConditions"]) <= conditions
        assert raw["name"] not in upstream(doc, raw["name"]), f"{raw['name']} depends on itself"
    assert len(set(names)) == len(names)


def test_expressions_reference_declared_things_only(doc):
    properties = doc["properties"]
    parameters = set(properties.get("parameters", {}))
    variables = set(properties.get("variables", {}))
    for raw in properties["activities"]:
        before = upstream(doc, raw["name"])
        for expression in all_expressions(raw):
            assert_balanced(expression)
            for name in re.findall(r"pipeline\(\)\.parameters\.(\w+)", expression):
                assert name in parameters, f"{raw['name']}: undeclared parameter {name}"
            for name in re.findall(r"pipeline\(\)\.(\w+)", expression):
                assert name in PIPELINE_SYSTEM_PROPERTIES, f"{raw['name']}: unknown pipeline().{name}"
            for name in re.findall(r"variables\('([^']+)'\)", expression):
                assert name in variables, f"{raw['name']}: undeclared variable {name}"
            for name in re.findall(r"activity\('([^']+)'\)", expression):
                assert name in before, f"{raw['name']} reads {name}, which does not run before it"
        if raw["type"] == "SetVariable":
            assert raw["typeProperties"]["variableName"] in variables


def test_function_key_is_secret_and_hidden_from_run_history(doc):
    for raw in doc["properties"]["activities"]:
        headers = raw["typeProperties"].get("headers", {})
        if "x-functions-key" not in headers:
            continue
        source = key_header_sources(doc, raw)
        if source.startswith("activity:"):
            key_reader = activities_by_name(doc)[source.split(":", 1)[1]]
            assert key_reader["policy"]["secureOutput"] is True
        else:
            assert source == "parameter:SecureString"
        assert raw["policy"]["secureInput"] is True, f"{raw['name']} would log the function key"


# --- restart mode: PausableLoad_Pause (and its Key Vault variant) ------------------------------

@pytest.mark.parametrize("name", ["PausableLoad_Pause", "PausableLoad_Pause_KeyVault"])
def test_pause_web_activity_posts_a_contract_body(name):
    doc = load(name)
    raw = activities_by_name(doc)["Pause"]
    pause = sdk_activity(raw)
    assert isinstance(pause, models.WebActivity)
    assert pause.method == "POST"
    assert pause.url == "@{pipeline().parameters.PauseApiUrl}"
    assert pause.headers["Content-Type"] == "application/json"
    assert "Prepare" in upstream(doc, "Pause")
    assert raw["policy"]["retry"] == 0  # a retried POST would create a second pause

    body = pause.body
    assert isinstance(body, dict)
    assert set(body) <= PAUSE_FIELDS
    assert RESTART_TARGET_FIELDS | {"parameters", "data", "expires_in", "notification", "source"} <= set(body)
    assert "callBackUri" not in body and "notify" not in body
    assert body["factory_name"] == "@{pipeline().DataFactory}"
    assert body["source"] == {"pipeline": "@{pipeline().Pipeline}", "run_id": "@{pipeline().RunId}",
                              "factory": "@{pipeline().DataFactory}"}
    assert body["data"]["source_run_id"] == "@{pipeline().RunId}"
    assert "rows_loaded" in body["data"]
    assert {"title", "message"} <= set(body["notification"]) <= NOTIFICATION_FIELDS

    parameters = doc["properties"]["parameters"]
    # Whole-value expressions keep their JSON type (number, object); @{...} would turn them into strings.
    expires = parameter_reference(body["expires_in"][1:])
    assert body["expires_in"].startswith("@") and parameters[expires]["type"] == "Int"
    assert MIN_EXPIRES_IN <= parameters[expires]["defaultValue"] <= MAX_EXPIRES_IN
    restart_parameters = parameter_reference(body["parameters"][1:])
    assert parameters[restart_parameters]["type"] == "Object"
    pipeline_name = re.fullmatch(r"@\{pipeline\(\)\.parameters\.(\w+)\}", body["pipeline_name"]).group(1)
    assert parameters[pipeline_name]["defaultValue"] == load("PausableLoad_Continue")["name"]
    on_timeout = re.fullmatch(r"@\{pipeline\(\)\.parameters\.(\w+)\}", body["on_timeout"]).group(1)
    assert parameters[on_timeout]["defaultValue"] in {"expire", "restart"}


def test_pause_captures_the_links_from_the_response():
    doc = load("PausableLoad_Pause")
    activities = activities_by_name(doc)
    restart_url = sdk_activity(activities["CaptureRestartUrl"])
    assert restart_url.value == "@activity('Pause').output.restart_url"
    assert restart_url.policy.secure_input and restart_url.policy.secure_output  # the link approves
    assert activities["Pause"]["policy"]["secureOutput"] is True
    assert sdk_activity(activities["CapturePauseId"]).value == "@activity('Pause').output.pause_id"


def test_key_vault_variant_reads_the_key_with_the_managed_identity():
    plain, vault = load("PausableLoad_Pause"), load("PausableLoad_Pause_KeyVault")
    activities = activities_by_name(vault)
    get_key = sdk_activity(activities["GetFunctionKey"])
    assert isinstance(get_key, models.WebActivity)
    assert get_key.method == "GET"
    assert get_key.url == "@{pipeline().parameters.FunctionKeySecretUri}?api-version=7.0"
    assert isinstance(get_key.authentication, models.WebActivityAuthentication)
    assert get_key.authentication.type == "MSI"
    assert get_key.authentication.resource == "https://vault.azure.net"
    assert get_key.linked_service_name is None
    assert get_key.policy.secure_output is True
    assert key_header_sources(vault, activities["Pause"]) == "activity:GetFunctionKey"
    assert "FunctionKey" not in vault["properties"]["parameters"]
    # Same pause otherwise.
    assert activities["Pause"]["typeProperties"]["body"] == \
        activities_by_name(plain)["Pause"]["typeProperties"]["body"]
    assert {k: v for k, v in vault["properties"]["parameters"].items() if k != "FunctionKeySecretUri"} == \
        {k: v for k, v in plain["properties"]["parameters"].items() if k != "FunctionKey"}


# --- restart mode: PausableLoad_Continue --------------------------------------------------------

def test_continue_declares_pause_id_and_reads_the_pause():
    doc = load("PausableLoad_Continue")
    resource = models.PipelineResource(doc)
    pause_id = resource.properties.parameters["pause_id"]
    assert isinstance(pause_id, models.ParameterSpecification)
    assert pause_id.type == "String"

    activities = activities_by_name(doc)
    read = sdk_activity(activities["ReadPause"])
    assert read.method == "GET"
    assert read.body is None
    assert read.url == "@{pipeline().parameters.StatusApiBaseUrl}/api/pauses/@{pipeline().parameters.pause_id}"
    assert "x-functions-key" in read.headers

    assert sdk_activity(activities["ReadData"]).value == "@string(activity('ReadPause').output.data)"
    assert "activity('ReadPause').output.data.rows_loaded" in sdk_activity(activities["ReadRowsLoaded"]).value
    assert {"ReadPause", "ReadData", "ReadRowsLoaded"} <= upstream(doc, "Load")


# --- callback mode: PausableLoad_WebHookApproval ------------------------------------------------

def test_webhook_activity_fields_land_on_the_sdk_model():
    doc = load("PausableLoad_WebHookApproval")
    webhook = sdk_activity(activities_by_name(doc)["WaitForApproval"])
    assert isinstance(webhook, models.WebHookActivity)
    assert isinstance(webhook.type_properties, models.WebHookActivityTypeProperties)
    assert webhook.report_status_on_call_back is True
    assert webhook.method == "POST"
    assert webhook.url == "@{pipeline().parameters.PauseApiUrl}"
    assert webhook.headers["Content-Type"] == "application/json"  # required by the WebHook activity
    assert isinstance(webhook.policy, models.SecureInputOutputPolicy)
    assert webhook.policy.secure_input is True


def test_webhook_body_is_a_callback_mode_pause():
    webhook = sdk_activity(activities_by_name(load("PausableLoad_WebHookApproval"))["WaitForApproval"])
    body = webhook.body
    assert set(body) <= PAUSE_FIELDS
    assert not set(body) & (RESTART_TARGET_FIELDS | {"parameters", "tenant_id"})
    assert "callBackUri" not in body  # ADF adds it to the body itself
    assert {"notification", "data", "expires_in", "on_timeout", "notify", "source"} <= set(body)
    assert body["on_timeout"] in {"expire", "restart"}
    assert {"title", "message"} <= set(body["notification"]) <= NOTIFICATION_FIELDS
    assert set(body["notify"]) == NOTIFY_FIELDS
    assert body["notify"]["email"] == ["@{pipeline().parameters.ApproverEmail}"]
    assert body["source"]["run_id"] == "@{pipeline().RunId}"
    assert body["source"]["pipeline"] == "@{pipeline().Pipeline}"


def test_webhook_timeout_outlasts_the_pause():
    webhook = sdk_activity(activities_by_name(load("PausableLoad_WebHookApproval"))["WaitForApproval"])
    expires_in = webhook.body["expires_in"]
    assert type(expires_in) is int and MIN_EXPIRES_IN <= expires_in <= MAX_EXPIRES_IN
    assert isinstance(webhook.timeout, str)
    # The app's PauseExpired callback (up to one sweep after expiry) must come before ADF's own TimedOut.
    assert webhook_timeout_seconds(webhook.timeout) > expires_in + EXPIRY_SWEEP_SECONDS
    assert webhook_timeout_seconds("1.00:10:00") == 24 * 3600 + 600
    assert webhook_timeout_seconds("00:10:00") == 600


def test_webhook_output_is_used_after_success():
    doc = load("PausableLoad_WebHookApproval")
    record = activities_by_name(doc)["RecordApproval"]
    assert {"activity": "WaitForApproval", "dependencyConditions": ["Succeeded"]} in record["dependsOn"]
    assert "activity('WaitForApproval').output" in sdk_activity(record).value
    assert "WaitForApproval" in upstream(doc, "Load")


# --- automated checks: PausableLoad_WaitForUpstream and PausableLoad_QualityGate ------------------

def as_sent(body, values):
    """The body as ADF sends it: @{...} expressions replaced by what they evaluate to."""
    text = json.dumps(body)
    for expression, value in values.items():
        text = text.replace("@{" + expression + "}", value)
    assert "@{" not in text, text
    return {**json.loads(text), "callBackUri": "https://dpeastus.svc.datafactory.azure.com/callback/x"}


@pytest.mark.parametrize("name, activity, mode", [("PausableLoad_WaitForUpstream", "WaitForUpstream", "auto"),
                                                  ("PausableLoad_QualityGate", "WaitForQualityAndApproval", "gate")])
def test_check_pipelines_send_a_body_the_app_accepts(name, activity, mode):
    from shared.validation import parse_pause

    webhook = sdk_activity(activities_by_name(load(name))[activity])
    assert webhook.body["checks_mode"] == mode and webhook.report_status_on_call_back is True
    values = {"pipeline().parameters.SubscriptionId": "00000000-0000-0000-0000-000000000001",
              "pipeline().parameters.ResourceGroup": "rg-data", "pipeline().DataFactory": "adf-prod",
              "pipeline().parameters.UpstreamRunId": "2f7fdb90-5df1-4b8e-ac2f-064cfa58202b",
              "pipeline().parameters.QualityApiUrl": "https://dq.contoso.com/api/checks/sales",
              "pipeline().parameters.ApproverEmail": "approver@contoso.com",
              "pipeline().parameters.ApprovalTitle": "Approve?", "pipeline().Pipeline": name,
              "pipeline().RunId": "8d5c7a52-0f6e-4c7e-9a38-3f8c2b1d9e10"}
    request = parse_pause(as_sent(webhook.body, values))
    assert request.mode == "callback" and request.checks_mode == mode and len(request.checks) == 1
    # The checks run out well before ADF's own timeout, so the app answers first.
    assert request.check_every * request.check_max_attempts <= request.expires_in
    assert webhook_timeout_seconds(webhook.timeout) > request.expires_in + EXPIRY_SWEEP_SECONDS
    assert "Load" in [a["name"] for a in load(name)["properties"]["activities"]]


def test_the_quality_gate_keeps_its_secret_in_an_app_setting():
    body = activities_by_name(load("PausableLoad_QualityGate"))["WaitForQualityAndApproval"]["typeProperties"]["body"]
    [check] = body["checks"]
    assert check["http"]["header_setting"] == "CHECK_HEADER_DATA_QUALITY" and "headers" not in check["http"]


def test_checkpoints_send_bodies_the_app_accepts_and_wait_long_enough():
    from shared.validation import parse_checkpoint

    doc = load("PausableLoad_Checkpoints")
    webhooks = [raw for raw in doc["properties"]["activities"] if raw["type"] == "WebHook"]
    assert [raw["name"] for raw in webhooks] == ["CheckpointAfterStaging", "CheckpointBeforePublish"]
    values = {"pipeline().parameters.SubscriptionId": "00000000-0000-0000-0000-000000000001",
              "pipeline().parameters.ResourceGroup": "rg-data", "pipeline().DataFactory": "adf-prod",
              "pipeline().Pipeline": "PausableLoad_Checkpoints",
              "pipeline().RunId": "8d5c7a52-0f6e-4c7e-9a38-3f8c2b1d9e10"}
    names = []
    for raw in webhooks:
        webhook = sdk_activity(raw)
        assert webhook.report_status_on_call_back is True  # HoldCancelled fails the activity
        assert webhook.url == "@{pipeline().parameters.CheckpointApiUrl}"
        request = parse_checkpoint(as_sent(webhook.body, values))
        assert request.run_id == values["pipeline().RunId"] and request.factory_name == "adf-prod"
        names.append(request.checkpoint)
        # Held runs wait up to the WebHook's timeout: a day, longer than the app's 5-minute recheck.
        assert webhook_timeout_seconds(webhook.timeout) >= 86400
    assert names == ["after_staging", "before_publish"]
    order = [raw["name"] for raw in doc["properties"]["activities"]]
    assert order.index("CheckpointAfterStaging") < order.index("Load") < order.index("CheckpointBeforePublish")

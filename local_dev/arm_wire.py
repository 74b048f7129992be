"""ARM's wire format as Data Factory answers it, for the ADF stand-in (local_dev.adf_standin): ARM's error body,
ADF's times (seven fractional digits), JSON request bodies, and what queryPipelineRuns and a pipeline's
parameters accept (Data Factory REST API 2018-06-01, `Azure/azure-rest-api-specs` datafactory.json).
LOCAL, TESTS ONLY."""

import datetime
import json

from werkzeug.wrappers import Response

# queryPipelineRuns: the operands ADF documents for pipeline runs, and the run field each reads.
_FILTER_FIELDS = {"PipelineName": "pipelineName", "Status": "status", "RunStart": "runStart", "RunEnd": "runEnd"}
_TIME_OPERANDS = ("RunStart", "RunEnd")
_PARAMETER_TYPES = ("Object", "String", "Int", "Float", "Bool", "Array", "SecureString")


class ArmError(Exception):
    """An error answered with ARM's body: {"error": {"code": ..., "message": ...}}."""

    def __init__(self, status, code, message, headers=None, target=None, details=False):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.target, self.details = target, details

    def response(self):
        error = {"code": self.code, "message": self.message}
        if self.target is not None:
            error["target"] = self.target
        if self.details:
            error["details"] = None
        return json_response({"error": error}, self.status, self.headers)


def json_response(body, status=200, headers=None):
    return Response(json.dumps(body), status=status, headers=headers, content_type="application/json; charset=utf-8")


def format_time(moment):
    # ADF writes seven fractional digits ("...:05.1234567Z"): clients must parse that.
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def parse_time(name, text):
    if not isinstance(text, str):
        raise ArmError(400, "InvalidRequestContent", f"'{name}' must be a date-time string, got {text!r}.")
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ArmError(400, "InvalidRequestContent", f"'{name}' must be an ISO 8601 time, got {text!r}.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def parse_bool(name, text):
    if text.lower() not in ("true", "false"):
        raise ArmError(400, "InvalidQueryParameterValue", f"'{name}' must be true or false, got {text!r}.")
    return text.lower() == "true"


def json_body(request, default):
    """The request's JSON body (whatever its Content-Type says: the SDK omits it for no body)."""
    data = request.get_data(as_text=True)
    if not data.strip():
        return default
    try:
        return json.loads(data)
    except ValueError as error:
        raise ArmError(400, "InvalidRequestContent", f"The request content is not valid JSON: {error}.") from None


def arm_key(*names):
    # ARM names are case-insensitive.
    return tuple(name.lower() for name in names)


def arm_parameters(parameters):
    # PipelineRun.parameters is a string-to-string map in ARM; non-string values come back as JSON text.
    return {name: value if isinstance(value, str) else json.dumps(value) for name, value in parameters.items()}


def run_filter(filters):
    """A predicate on run records for queryPipelineRuns' `filters`, checked before any run is looked at."""
    if not isinstance(filters, list):
        raise ArmError(400, "InvalidRequestContent", f"'filters' must be a list, got {filters!r}.")
    checks = []  # (run field, values, whether the field must be among the values)
    for condition in filters:
        if not isinstance(condition, dict):
            raise ArmError(400, "InvalidRequestContent", f"Each filter must be an object, got {condition!r}.")
        operand, operator, values = condition.get("operand"), condition.get("operator"), condition.get("values")
        if operand not in _FILTER_FIELDS:
            raise ArmError(400, "InvalidRequestContent",
                            f"Operand {operand!r} cannot filter pipeline runs; the allowed operands are "
                            "PipelineName, RunStart, RunEnd and Status.")
        if operator not in ("Equals", "NotEquals", "In", "NotIn"):
            raise ArmError(400, "InvalidRequestContent", f"Unknown filter operator {operator!r}.")
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise ArmError(400, "InvalidRequestContent", "Each filter needs a non-empty 'values' list of strings.")
        if operator in ("Equals", "NotEquals") and len(values) != 1:
            raise ArmError(400, "InvalidRequestContent", f"Operator {operator} takes exactly one value.")
        if operand in _TIME_OPERANDS:
            values = [parse_time(operand, value) for value in values]
        else:
            values = [value.lower() if operand == "PipelineName" else value for value in values]
        checks.append((operand, values, operator in ("Equals", "In")))

    def field_value(run, operand):
        value = run[_FILTER_FIELDS[operand]]
        if operand in _TIME_OPERANDS:
            return None if value is None else datetime.datetime.fromisoformat(value)
        return value.lower() if operand == "PipelineName" else value

    return lambda run: all((field_value(run, op) in values) == wanted for op, values, wanted in checks)


def pipeline_parameters(properties):
    declared = properties.get("parameters") or {}
    if not isinstance(declared, dict):
        raise ArmError(400, "InvalidRequestContent", "'properties.parameters' must be an object.")
    for name, spec in declared.items():
        if not isinstance(spec, dict) or spec.get("type") not in _PARAMETER_TYPES:
            raise ArmError(400, "InvalidRequestContent",
                            f"Parameter '{name}' needs a 'type', one of {', '.join(_PARAMETER_TYPES)}.")
    return declared

"""The Azure RBAC actions the app's Data Factory client can call, derived from the code itself.

Three steps, none of them a hand-kept list:

1. Walk the syntax trees of the `shared` package for calls `<expr>.<group>.<operation>(...)`, where
   `<group>` is an operations group of `azure.mgmt.datafactory.DataFactoryManagementClient`
   (`pipelines`, `pipeline_runs`, ...) and `<operation>` one of that group's methods.
2. Ask the SDK's own request builder for each (`build_<group>_<operation>_request`, with dummy
   arguments) which HTTP method and URL it sends.
3. Map method and URL to the action by Azure Resource Manager's rule: after `/providers/`, the
   namespace, then the resource type segments (names dropped); GET is `/read`, PUT and PATCH
   `/write`, DELETE `/delete`, and a POST to a trailing operation segment `<segment>/action`
   (lower case). E.g. POST .../factories/{f}/pipelines/{p}/createRun is
   Microsoft.DataFactory/factories/pipelines/createrun/action.

`app_actions()` is what the ADF stand-in lets the app do in tests (local_dev.adf_standin.APP_ROLE),
and a test holds the custom role in infra/ against it. `python -m local_dev.arm_actions` prints it.
"""

import ast
import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
_VERBS = {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}


@dataclass(frozen=True)
class SdkCall:
    group: str        # an operations group of the client, e.g. "pipelines"
    operation: str    # one of its methods, e.g. "create_run"
    where: str        # "shared/targets/adf.py:230"


def operation_groups() -> dict[str, type]:
    """Attribute name -> operations class, as DataFactoryManagementClient sets them up (no request is sent)."""
    from azure.mgmt.datafactory import DataFactoryManagementClient
    from azure.mgmt.datafactory import operations

    classes = {cls for cls in vars(operations).values() if inspect.isclass(cls)}
    client = DataFactoryManagementClient(credential=object(), subscription_id="00000000-0000-0000-0000-000000000000")
    try:
        return {name: type(value) for name, value in vars(client).items() if type(value) in classes}
    finally:
        client.close()


def sdk_calls(package: Path = ROOT / "shared", groups: dict[str, type] | None = None) -> list[SdkCall]:
    """Every call `<expr>.<group>.<operation>(...)` in the package's modules whose group and operation the SDK has."""
    groups = operation_groups() if groups is None else groups
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Attribute)):
                continue
            group, operation = node.func.value.attr, node.func.attr
            cls = groups.get(group)
            if cls is not None and not operation.startswith("_") and callable(getattr(cls, operation, None)):
                found.append(SdkCall(group, operation, f"{path.relative_to(package.parent)}:{node.lineno}"))
    return found


def _builder(group: str, operation: str):
    """The SDK's request builder for one operation (long-running `begin_x` uses x's)."""
    name = operation.removeprefix("begin_")
    candidates = (("azure.mgmt.datafactory.operations._operations", f"build_{group}_{name}_request"),
                  (f"azure.mgmt.datafactory.operations._{group}_operations", f"build_{name}_request"))
    for module_name, function in candidates:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if hasattr(module, function):
            return getattr(module, function)
    raise LookupError(f"the SDK has no request builder for {group}.{operation}")


def request_of(group: str, operation: str) -> tuple[str, str]:
    """(HTTP method, URL path) the SDK sends for the operation, built with a dummy value for every argument."""
    builder = _builder(group, operation)
    dummies = {name: "x" for name, parameter in inspect.signature(builder).parameters.items()
               if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
               and parameter.default is parameter.empty}
    request = builder(**dummies)
    return request.method.upper(), urlsplit(request.url).path


def action_of(method: str, path: str) -> str:
    """The RBAC action ARM checks for a request: provider namespace, resource types, then the verb."""
    segments = [part for part in path.split("/") if part]
    lowered = [part.lower() for part in segments]
    if "providers" not in lowered:
        raise ValueError(f"not a provider resource path: {path}")
    rest = segments[len(lowered) - lowered[::-1].index("providers"):]  # after the last /providers/
    namespace, tail = rest[0], rest[1:]
    types = tail[0::2]  # type, name, type, name, ... [operation]
    if method == "POST":
        if len(tail) % 2 == 0:
            raise ValueError(f"a POST to a resource, not to an operation on it: {path}")
        return "/".join([namespace, *types[:-1], types[-1].lower(), "action"])
    if method not in _VERBS:
        raise ValueError(f"no RBAC verb for {method} {path}")
    return "/".join([namespace, *types, _VERBS[method]])


def app_actions(package: Path = ROOT / "shared") -> frozenset[str]:
    """The set of RBAC actions the app's Data Factory calls need."""
    return frozenset(action_of(*request_of(call.group, call.operation)) for call in sdk_calls(package))


if __name__ == "__main__":
    for call in sdk_calls():
        method, path = request_of(call.group, call.operation)
        print(f"{call.where}\t{call.group}.{call.operation}\t{method} {path}\t{action_of(method, path)}")

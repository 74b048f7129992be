"""Helpers the tests share (fixtures live in conftest.py)."""

import contextlib

from shared.connections import StorageAccount

SUBSCRIPTION = "00000000-0000-0000-0000-0000000000aa"
TARGET = {"subscription_id": SUBSCRIPTION, "resource_group": "rg-data", "factory_name": "adf-test",
          "pipeline_name": "Load_Sales"}
# Settings built in a test that never reaches storage still name some.
LOCAL_STORAGE = StorageAccount("AzureWebJobsStorage", connection_string="UseDevelopmentStorage=true")


class DevCredential:
    """A fixed token for the local stand-in: a pipeline author's ("dev-token"), or another principal's, such as
    the app's own (shared.targets.adf.DEV_TOKEN), whose ARM buckets a test may want to spend."""

    def __init__(self, token: str = "dev-token"):
        self.token = token

    def get_token(self, *scopes, **kwargs):
        from azure.core.credentials import AccessToken

        return AccessToken(self.token, 4102444800)


class ManualClock:
    """A monotonic clock that moves only when a test says so (`advance`), for what refills or expires by it."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def unsigned_jwt(**claims) -> str:
    """A JWT with these claims and no valid signature (for what reads a token's claims without checking it)."""
    import base64
    import json

    def encode(part):
        return base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
    return f"{encode({'alg': 'RS256', 'typ': 'JWT'})}.{encode(claims)}.c2lnbmF0dXJl"


def sdk_client(standin, subscription=SUBSCRIPTION, token="dev-token", **options):
    """The real SDK, pointed at the stand-in, as a pipeline author's tooling would use it (`options`: the
    client's, e.g. retry_total=0)."""
    from azure.mgmt.datafactory import DataFactoryManagementClient

    return DataFactoryManagementClient(DevCredential(token), subscription, base_url=standin.url, **options)


def create_pipeline(standin, name=TARGET["pipeline_name"], parameters=None, *, subscription=SUBSCRIPTION,
                    resource_group=TARGET["resource_group"], factory=TARGET["factory_name"]):
    """Create a factory and a pipeline in the stand-in through the SDK (factories/pipelines.create_or_update)."""
    from azure.mgmt.datafactory.models import Factory, ParameterSpecification, PipelineResource

    client = sdk_client(standin, subscription)
    client.factories.create_or_update(resource_group, factory, Factory(location="westeurope"), enforce_https=False)
    declared = {key: ParameterSpecification(type="String", default_value="") for key in (parameters or ())}
    declared["pause_id"] = ParameterSpecification(type="String")
    client.pipelines.create_or_update(resource_group, factory, name, PipelineResource(activities=[], parameters=declared),
                                      enforce_https=False)


def wait_until(condition, seconds: float = 10.0, what: str = "the condition") -> None:
    """Poll `condition` until it holds; fail (never hang the worker) after `seconds`."""
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {seconds} s")
        time.sleep(0.01)


# Messages about a pause (reminders, escalations, reposts): when it was made, who got what, its links.

def made_at(api, created):
    """When the pause was made (later messages count from then), whatever the test's own pace."""
    from datetime import datetime

    return datetime.fromisoformat(api.record(created["pause_id"])["created_at"].replace("Z", "+00:00"))


def inbox(mail, who) -> list:
    """The emails the mail catcher took for `who` alone, oldest first."""
    return [m for m in mail.messages if m["to"] == [who]]


def link(message) -> str:
    """The token of the approve link in an email's text."""
    import re

    return re.search(r"https?://\S+/api/restart/(\S+)", message["text"]).group(1)


def approve(api, token) -> dict:
    return api.json(api.decide("restart", token, json_body={}))


@contextlib.contextmanager
def keep_alive_server(app, **handler_attributes):
    """Serve the WSGI `app` on a free loopback port with `local_dev.keep_alive`'s handler (its attributes as given),
    as the ADF stand-in is served; yield (the server, the client address of each connection it accepted), stop it at
    the end."""
    from werkzeug.serving import make_server

    from local_dev.keep_alive import QuietKeepAliveHandler
    from local_dev.service import ServedInThread

    opened = []

    class Counting(QuietKeepAliveHandler):
        def setup(self):
            super().setup()
            opened.append(self.client_address)

    for name, value in handler_attributes.items():
        setattr(Counting, name, value)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Counting)
    with ServedInThread() as service:
        service.serve_in_thread(server)
        yield server, opened

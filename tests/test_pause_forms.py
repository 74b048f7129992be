"""A pause that asks its approver for values: the form is read from the pipeline (through the real SDK against
the strict ADF stand-in) or given, shown on the approval page, checked on the server, and its typed values
start the run (restart mode) or reach the waiting run as Output.input (callback mode)."""

import json
import re
from html.parser import HTMLParser
from urllib.parse import urlencode

import pytest

from local_dev.adf_standin import DEFAULT_FACTORY
from tests.support import TARGET, create_pipeline

pytestmark = pytest.mark.integration

SUBSCRIPTION, RESOURCE_GROUP, FACTORY = DEFAULT_FACTORY
PUBLISH = {"subscription_id": SUBSCRIPTION, "resource_group": RESOURCE_GROUP, "factory_name": FACTORY,
           "pipeline_name": "PausableLoad_Publish"}


class Inputs(HTMLParser):
    """The page's form controls by name: tag, attributes, and a textarea's or select's text."""

    def __init__(self, html):
        super().__init__()
        self.controls, self._open = {}, None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("input", "textarea", "select") and attrs.get("name", "").startswith("form."):
            self.controls.setdefault(attrs["name"], []).append({"tag": tag, **attrs, "text": ""})
            self._open = self.controls[attrs["name"]][-1] if tag != "input" else None

    def handle_data(self, data):
        if self._open is not None:
            self._open["text"] += data

    def handle_endtag(self, tag):
        if tag in ("textarea", "select"):
            self._open = None


def post_page(api, token, values):
    """The approval page's POST as a browser sends it (application/x-www-form-urlencoded)."""
    body = urlencode(values, doseq=True).encode()
    return api.call("restart", "POST", f"restart/{token}", body=body, route_params={"token": token},
                    headers={"Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"})


@pytest.fixture
def publish(api, adf):
    return api.created(**PUBLISH, form="pipeline", parameters={"CutoffDate": "2026-11-30"})


def test_a_form_read_from_the_pipeline_asks_for_its_typed_parameters_but_never_a_secure_one(api, publish):
    form = api.record(publish["pause_id"])["form"]
    assert [(f["name"], f["type"]) for f in form] == [("CutoffDate", "string"), ("BatchSize", "integer"),
                                                      ("FullReload", "boolean"), ("Regions", "array")]
    by_name = {f["name"]: f for f in form}
    assert by_name["CutoffDate"]["default"] == "2026-11-30"  # prefilled from the pause's parameters
    assert by_name["BatchSize"]["default"] == 5000 and by_name["FullReload"]["default"] is False
    assert by_name["Regions"]["default"] == ["emea", "amer"]
    page = api.page("restart", publish["token"])
    html = page.get_body().decode()
    controls = Inputs(html).controls
    assert set(controls) == {"form.CutoffDate", "form.BatchSize", "form.FullReload", "form.Regions"}
    assert "ApiKey" not in html and "form.pause_id" not in html
    [batch] = controls["form.BatchSize"]
    assert (batch["tag"], batch["type"], batch["step"], batch["value"]) == ("input", "number", "1", "5000")
    [reload] = controls["form.FullReload"]
    assert (reload["type"], reload["value"]) == ("checkbox", "true") and "checked" not in reload
    [regions] = controls["form.Regions"]
    assert regions["tag"] == "textarea" and json.loads(regions["text"]) == ["emea", "amer"]
    for name in controls:  # every control has its label
        control_id = controls[name][0]["id"]
        assert re.search(rf'<label[^>]*for="{control_id}"', html) or "checkbox" == controls[name][0].get("type")


def test_a_bad_integer_shows_the_page_again_with_the_error_by_its_field_and_nothing_is_decided(api, adf, publish):
    typed = {"form.CutoffDate": "2026-12-01", "form.BatchSize": "12.5", "form.Regions": '["emea"]',
             "comment": "half a batch"}
    response = post_page(api, publish["token"], typed)
    assert response.status_code == 400
    html = response.get_body().decode()
    controls = Inputs(html).controls
    [batch] = controls["form.BatchSize"]
    assert batch["aria-invalid"] == "true" and "form-BatchSize-error" in batch["aria-describedby"]
    error = re.search(r'<p class="error" id="form-BatchSize-error">([^<]*)</p>', html).group(1)
    assert "whole number" in error
    assert batch["value"] == "12.5" and controls["form.CutoffDate"][0]["value"] == "2026-12-01"
    assert json.loads(controls["form.Regions"][0]["text"]) == ["emea"] and "half a batch" in html
    assert api.record(publish["pause_id"])["status"] == "pending" and adf.runs == []


def test_the_run_starts_with_the_values_typed_as_the_pipeline_declares_them(api, adf, publish):
    response = post_page(api, publish["token"], {"form.CutoffDate": "2026-12-01", "form.BatchSize": "250",
                                                  "form.FullReload": "true", "form.Regions": '["emea", "apac"]'})
    assert response.status_code == 200, response.get_body()
    [run] = adf.runs
    assert run["pipelineName"] == "PausableLoad_Publish"
    assert run["parametersAsSent"] == {"CutoffDate": "2026-12-01", "BatchSize": 250, "FullReload": True,
                                       "Regions": ["emea", "apac"], "pause_id": publish["pause_id"]}
    record = api.record(publish["pause_id"])
    assert record["input"] == {"CutoffDate": "2026-12-01", "BatchSize": 250, "FullReload": True,
                               "Regions": ["emea", "apac"]}


def test_an_unticked_box_is_false_and_a_left_default_is_kept(api, adf, publish):
    assert post_page(api, publish["token"], {"form.CutoffDate": "2026-12-01", "form.BatchSize": "5000",
                                             "form.Regions": '["emea","amer"]'}).status_code == 200
    [run] = adf.runs
    assert run["parametersAsSent"]["FullReload"] is False and run["parametersAsSent"]["BatchSize"] == 5000


def test_a_program_approves_with_input_checked_against_the_same_form(api, adf, publish):
    refused = api.decide("restart", publish["token"], json_body={"input": {"CutoffDate": "2026-12-01",
                                                                           "BatchSize": "250"}})
    assert refused.status_code == 400
    assert [error["field"] for error in api.json(refused)["errors"]] == ["input.BatchSize"]
    assert adf.runs == []
    done = api.decide("restart", publish["token"], json_body={"input": {"CutoffDate": "2026-12-01", "BatchSize": 7}})
    assert done.status_code == 200
    [run] = adf.runs
    # Left out, Regions is not sent: the pipeline's own default applies in Data Factory.
    assert run["parametersAsSent"]["BatchSize"] == 7 and "Regions" not in run["parametersAsSent"]


FIELDS = [{"name": "cutoff", "label": "Cut-off date", "type": "date", "required": True},
          {"name": "regions", "type": "multi_choice", "choices": ["emea", "amer", "apac"], "required": True},
          {"name": "note", "type": "text", "max_length": 40}]


def test_callback_mode_gets_the_values_as_output_input(api, configure, adf):
    configure(CALLBACK_ALLOWED_HOSTS="127.0.0.1")
    created = api.json(api.pause({"callBackUri": f"{adf.url}/_standin/callbacks/form", "form": FIELDS}))
    response = post_page(api, created["token"], {"form.cutoff": "2026-12-24", "form.regions": ["emea", "apac"]})
    assert response.status_code == 200, response.get_body()
    [call] = adf.callbacks
    assert call["body"]["Output"]["input"] == {"cutoff": "2026-12-24", "regions": ["emea", "apac"]}


def test_each_approver_records_their_values_and_the_quorum_completing_ones_are_used(api, adf):
    created = api.created(**PUBLISH, form="pipeline", approvers=["alice@contoso.com", "bob@contoso.com"],
                          required_approvals=2, return_approver_links=True)
    tokens = {link["approver"]: link["restart_url"].rsplit("/", 1)[1] for link in created["approver_links"]}
    for who, size in (("alice@contoso.com", "100"), ("bob@contoso.com", "200")):
        response = post_page(api, tokens[who], {"form.CutoffDate": "2026-12-01", "form.BatchSize": size,
                                                "form.Regions": "[]"})
        assert response.status_code == 200, response.get_body()
    record = api.record(created["pause_id"])
    assert [a["input"]["BatchSize"] for a in record["approvals"]] == [100, 200]
    [run] = adf.runs
    assert run["parametersAsSent"]["BatchSize"] == 200


@pytest.mark.parametrize("body, field, rule", [
    ({"callBackUri": "https://dpwesteurope.svc.datafactory.azure.com/cb", "form": "pipeline"}, "form",
     "needs_restart_mode"),
    ({**PUBLISH, "form": [{"name": "a", "type": "string", "pattern": "(x)\\1"}]}, "form[0].pattern", None),
    ({**TARGET, "pipeline_name": "Only_Pause_Id", "form": "pipeline"}, "form", "no_parameters"),
])
def test_a_form_that_cannot_work_is_refused_at_pause_time(api, adf_pipeline, body, field, rule):
    create_pipeline(adf_pipeline, "Only_Pause_Id")  # declares pause_id and nothing else
    response = api.pause(body)
    assert response.status_code == 400, response.get_body()
    errors = api.json(response)["errors"]
    assert any(e["field"] == field and (rule is None or e["rule"] == rule) for e in errors), errors


def test_a_form_read_from_a_data_factory_that_cannot_be_asked_stores_nothing(api, configure, refused_port, table):
    configure(ARM_ENDPOINT=f"http://127.0.0.1:{refused_port}", ARM_RETRY_TOTAL="0")
    response = api.pause({**PUBLISH, "form": "pipeline"})
    assert response.status_code == 502 and "nothing was stored" in api.json(response)["detail"]
    from azure.core.exceptions import ResourceNotFoundError
    try:
        assert list(table.list_entities()) == []
    except ResourceNotFoundError:
        pass  # the table was never even created


def test_the_email_and_the_chat_messages_say_what_the_page_will_ask_for(api, mail, chat, channels):
    created = api.created(**PUBLISH, form=FIELDS[:2] + [{"name": "size", "label": "Batch size", "type": "integer"}],
                          notify={"email": ["ops@contoso.com"], "channels": [channels["teams"], channels["slack"]]})
    [email] = mail.messages
    assert "You give" in email["text"] and "Cut-off date, regions and Batch size, on the approval page" in email["text"]
    [card] = chat.posts("teams", channels["teams"])
    [blocks] = chat.posts("slack", channels["slack"])
    for body in (card, blocks):
        assert "Cut-off date, regions and Batch size, on the approval page" in json.dumps(body)
    assert created["status"] == "pending"


def test_a_refused_page_keeps_an_unticked_box_unticked_and_every_choice_can_be_chosen(api, adf):
    fields = [{"name": "go", "type": "boolean", "default": True}, {"name": "size", "type": "integer"},
              {"name": "where", "type": "choice", "choices": ["a  b", " x"], "required": True}]
    created = api.created(form=fields)
    html = post_page(api, created["token"], {"form.size": "1.5", "form.where": " x"}).get_body().decode()
    [go] = Inputs(html).controls["form.go"]
    assert "checked" not in go  # unticked as sent, not back to its default
    assert '<option value="a  b">' in html and '<option value=" x" selected>' in html
    assert post_page(api, created["token"], {"form.size": "2", "form.where": "a  b"}).status_code == 200
    [run] = adf.runs
    assert run["parametersAsSent"]["where"] == "a  b" and run["parametersAsSent"]["go"] is False


def test_a_field_emptied_on_the_page_is_not_sent_even_when_the_pause_prefilled_it(api, adf):
    created = api.created(form=[{"name": "day", "type": "date"}], parameters={"day": "2026-11-25", "n": "3"})
    assert post_page(api, created["token"], {"form.day": ""}).status_code == 200
    [run] = adf.runs
    assert run["parametersAsSent"] == {"n": "3", "pause_id": created["pause_id"]}  # ADF's default for day


def test_values_over_the_budget_are_refused_and_no_input_is_kept_per_approval_without_a_form(api):
    created = api.created(form=[{"name": "note", "type": "text", "max_length": 10000}] * 1 +
                          [{"name": f"more{i}", "type": "text", "max_length": 10000} for i in range(7)])
    values = {f"form.more{i}": "x" * 9000 for i in range(7)}
    response = post_page(api, created["token"], {**values, "form.note": "y" * 9000})
    assert response.status_code == 413 and api.record(created["pause_id"])["status"] == "pending"
    plain = api.created(approvers=["alice@contoso.com", "bob@contoso.com"], required_approvals=2,
                        return_approver_links=True)
    token = plain["approver_links"][0]["restart_url"].rsplit("/", 1)[1]
    assert api.decide("restart", token, json_body={"input": {"k": "v"}}).status_code == 200
    assert "input" not in api.record(plain["pause_id"])["approvals"][0]  # only a form's values are kept per approval


def test_a_pipeline_with_more_parameters_than_a_form_holds_is_refused(api, adf_pipeline):
    create_pipeline(adf_pipeline, "Many_Parameters", parameters=[f"p{i}" for i in range(31)])
    response = api.pause({**TARGET, "pipeline_name": "Many_Parameters", "form": "pipeline"})
    assert response.status_code == 400
    [error] = api.json(response)["errors"]
    assert (error["field"], error["rule"]) == ("form", "max_items") and "31" in error["message"]


def test_a_listed_form_must_fit_the_restart_pipelines_parameters(api, adf):
    refused = api.pause({**PUBLISH, "form": [{"name": "BatchSize", "type": "string"},
                                             {"name": "ApiKey", "type": "string"},
                                             {"name": "Regions", "type": "multi_choice", "choices": ["emea", "apac"]},
                                             {"name": "note", "type": "text"}]})
    assert refused.status_code == 400
    errors = {(e["field"], e["rule"]) for e in api.json(refused)["errors"]}
    assert errors == {("form[0].type", "parameter_type"), ("form[1].name", "secure_parameter")}
    created = api.created(**PUBLISH, form=[{"name": "BatchSize", "type": "integer"},
                                           {"name": "CutoffDate", "type": "date", "required": True}])
    assert post_page(api, created["token"], {"form.BatchSize": "9", "form.CutoffDate": "2026-12-31"}).status_code == 200
    [run] = adf.runs
    assert run["parametersAsSent"] == {"BatchSize": 9, "CutoffDate": "2026-12-31", "pause_id": created["pause_id"]}

"""The demo pipeline `make run` creates in the local ADF stand-in, so the README's walk has a target.

It is created the way a pipeline author would, through the SDK's `pipelines.create_or_update`:
the stand-in knows only the repository's pipelines and what is created like this.
"""

from local_dev.adf_standin import DEFAULT_FACTORY

DEMO_PIPELINE = "Load_Sales"


class _DevCredential:
    def get_token(self, *scopes, **kwargs):
        from azure.core.credentials import AccessToken

        return AccessToken("local-demo", 4102444800)


def create_demo_pipeline(standin_url: str) -> str:
    """Create `Load_Sales` (parameters `day` and `pause_id`) in the default factory; return its name."""
    from azure.mgmt.datafactory import DataFactoryManagementClient
    from azure.mgmt.datafactory.models import ParameterSpecification, PipelineResource, WaitActivity

    subscription, resource_group, factory = DEFAULT_FACTORY
    client = DataFactoryManagementClient(_DevCredential(), subscription, base_url=standin_url)
    pipeline = PipelineResource(
        description="Demo for the README's walk: the second half of a paused load.",
        parameters={"day": ParameterSpecification(type="String", default_value=""),
                    "pause_id": ParameterSpecification(type="String")},
        activities=[WaitActivity(name="Load", wait_time_in_seconds=1)])
    client.pipelines.create_or_update(resource_group, factory, DEMO_PIPELINE, pipeline, enforce_https=False)
    return DEMO_PIPELINE

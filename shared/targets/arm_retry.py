"""The retry policy of every ARM client: azure-core's, except that nothing is repeated that may have had an effect."""

from shared.settings import Limits


def retry_policy(limits: Limits):
    """azure-core's RetryPolicy, except that it never repeats a request that may have had an effect.

    azure-core retries a POST answered 500/503/504, and any request whose answer carries
    Retry-After. For a POST that changes something (createRun) that can start a second run,
    so such a POST is retried only on 429 (ARM throttles before the request is processed). A
    POST that only reads (queryPipelineRuns) is marked `repeatable=True` per call and retried
    like a GET. A 429 is waited out only while the waits add up to ARM_MAX_RETRY_AFTER_SECONDS
    (a person is waiting on the page); one that asks for longer is handed back at once, since
    ARM refuses a retry sent before its Retry-After anyway. A call marked `hand_back_throttling=True`
    (the app's own work: the item is deferred instead) gets every 429 back at once, and is still
    retried on what a read may be retried on.
    """
    from azure.core.pipeline.policies import RetryPolicy

    class NoBlindRepeatRetryPolicy(RetryPolicy):
        def configure_retries(self, options):
            retry_settings = super().configure_retries(options)
            retry_settings["repeatable"] = bool(options.pop("repeatable", False))
            retry_settings["hand_back_throttling"] = bool(options.pop("hand_back_throttling", False))
            retry_settings["throttle_waited"] = 0.0
            return retry_settings

        def _changes_something(self, settings, request) -> bool:
            return request.method.upper() in ("POST", "PATCH") and not settings.get("repeatable")

        def _is_method_retryable(self, settings, request, response=None):
            if settings.get("repeatable"):
                return True
            return super()._is_method_retryable(settings, request, response=response)

        def is_retry(self, settings, response):
            if response.http_response.status_code == 429:
                after = super().get_retry_after(response) or 0.0
                waited = settings.get("throttle_waited", 0.0)
                if (settings["hand_back_throttling"] or not settings["total"]
                        or waited + after > limits.arm_max_retry_after_seconds):
                    return False
                settings["throttle_waited"] = waited + after
                return True
            if self._changes_something(settings, response.http_request):
                return False
            return super().is_retry(settings, response)

        def get_retry_after(self, response):
            after = super().get_retry_after(response)
            return None if after is None else min(after, limits.arm_max_retry_after_seconds)

    return NoBlindRepeatRetryPolicy(retry_total=limits.arm_retry_total, retry_backoff_factor=0.5,
                                    retry_backoff_max=4, timeout=3 * limits.arm_read_timeout_seconds)

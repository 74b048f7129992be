"""The local Azurite's queue service, as patched (patches/azurite+3.35.0.patch: receives walk an index instead of
sorting every message): what a client sees is what Azure Queue storage promises, checked against a model through
random sequences of sends, receives, deletes and visibility changes, across queues sharing the emulator."""

import random
import uuid
from pathlib import Path

import pytest

from local_dev.azurite import REPO_ROOT

pytestmark = pytest.mark.integration

HIDDEN = 3600  # seconds: long enough that no message comes back within a test, short of any expiry
STEPS = 250


def test_the_patch_is_applied_to_the_installed_azurite():
    store = REPO_ROOT / "node_modules/azurite/dist/src/queue/persistence/LokiQueueMetadataStore.js"
    assert "Pausable Pipelines patch" in Path(store).read_text(), "run npm ci (its postinstall applies patches/)"


@pytest.mark.parametrize("seed", [1, 2])
def test_random_operations_match_a_model_of_azure_queues(azurite, seed):
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.queue import QueueClient

    rng = random.Random(seed)
    queues = [QueueClient.from_connection_string(azurite.connection_string, f"model{uuid.uuid4().hex[:16]}")
              for _ in range(2)]
    visible = [dict() for _ in queues]  # content -> None: the messages a receive may return now
    hidden = [dict() for _ in queues]   # content -> the QueueMessage last received (its pop receipt)
    try:
        for queue in queues:
            queue.create_queue()
        for step in range(STEPS):
            which = rng.randrange(len(queues))
            queue, shown, held = queues[which], visible[which], hidden[which]
            action = rng.random()
            if action < 0.4:  # send, visible now or much later
                content = f"{seed}-{step}"
                later = rng.random() < 0.2
                queue.send_message(content, visibility_timeout=HIDDEN if later else None)
                if not later:
                    shown[content] = None
            elif action < 0.65:  # receive some, hiding them
                wanted = rng.randint(1, 32)
                got = list(queue.receive_messages(max_messages=wanted, messages_per_page=wanted,
                                                  visibility_timeout=HIDDEN))
                assert len(got) == min(wanted, len(shown)), f"step {step}: {len(got)} of {len(shown)} visible"
                for message in got:
                    assert message.content in shown, f"step {step}: {message.content} was not visible"
                    assert message.dequeue_count >= 1
                    del shown[message.content]
                    held[message.content] = message
            elif action < 0.85 and held:  # delete a received one; its old pop receipt no longer works
                content = rng.choice(sorted(held))
                message = held.pop(content)
                queue.delete_message(message)
                with pytest.raises(ResourceNotFoundError):
                    queue.delete_message(message)
            elif held:  # make a received one visible again at once
                content = rng.choice(sorted(held))
                queue.update_message(held.pop(content), visibility_timeout=0)
                shown[content] = None
        for queue, shown in zip(queues, visible):
            peeked = {message.content for message in queue.peek_messages(max_messages=32)}
            assert peeked <= set(shown) and len(peeked) == min(32, len(shown))
            drained = {m.content for m in queue.receive_messages(max_messages=len(shown) + 32,
                                                                    messages_per_page=32)}
            assert drained == set(shown)
    finally:
        for queue in queues:
            queue.delete_queue()
            queue.close()


def test_receives_come_in_the_order_messages_became_visible(azurite):
    """Azure does not promise FIFO, but Azurite did and the patch keeps it: the local host's runs stay the same."""
    from azure.storage.queue import QueueClient

    with QueueClient.from_connection_string(azurite.connection_string, f"order{uuid.uuid4().hex[:16]}") as queue:
        queue.create_queue()
        try:
            for n in range(40):
                queue.send_message(f"m{n:02d}")
            first = [m.content for m in queue.receive_messages(max_messages=10, messages_per_page=10)]
            assert first == [f"m{n:02d}" for n in range(10)]
            rest = [m.content for m in queue.receive_messages(max_messages=40, messages_per_page=32)]
            assert rest == [f"m{n:02d}" for n in range(10, 40)]
        finally:
            queue.delete_queue()

"""Azurite starts with a private key, stores table entities, and stops without leftovers."""

import os
import socket

import pytest
from azure.core.exceptions import HttpResponseError
from azure.data.tables import TableServiceClient

from local_dev.azurite import Azurite

pytestmark = pytest.mark.integration


def is_listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def azurite():
    with Azurite() as running:
        yield running


def test_stores_and_reads_back_an_entity(azurite):
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    table = service.create_table("Pauses")

    table.create_entity({"PartitionKey": "p1", "RowKey": "r1", "Status": "paused"})

    assert table.get_entity("p1", "r1")["Status"] == "paused"
    assert [t.name for t in service.list_tables()] == ["Pauses"]


def test_accepts_only_its_own_random_key(azurite):
    other_key = Azurite().account_key
    assert other_key != azurite.account_key

    wrong_key = azurite.connection_string.replace(azurite.account_key, other_key)
    with pytest.raises(HttpResponseError) as refused:
        list(TableServiceClient.from_connection_string(wrong_key).list_tables())
    assert refused.value.status_code == 403


def test_stop_ends_the_process_and_closes_the_ports():
    azurite = Azurite().start()
    pid, ports = azurite.pid, (azurite.port, azurite.queue_port, azurite.blob_port)
    assert all(is_listening(port) for port in ports)

    azurite.stop()

    assert not process_exists(pid)
    assert not any(is_listening(port) for port in ports)


def test_refuses_a_port_already_in_use(azurite):
    with pytest.raises(OSError, match="already in use"):
        Azurite(port=azurite.port).start()


def test_a_port_picked_free_but_taken_before_azurite_binds_it_is_picked_again(monkeypatch):
    """A port picked free can be taken before Azurite binds it (EADDRINUSE): it starts again on ports picked afresh,
    not lost for the whole test session."""
    from local_dev import azurite as module

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        picks, real = [], module.free_port

        def first_one_taken(host):
            # _pick_ports skips a port it has already given out: the taken one goes to the blob service, last.
            picks.append(taken.getsockname()[1] if len(picks) == 2 else real(host))
            return picks[-1]

        monkeypatch.setattr(module, "free_port", first_one_taken)
        with Azurite() as running:
            assert len(picks) == 6 and running.blob_port != taken.getsockname()[1]
            assert is_listening(running.blob_port)


def test_ports_are_picked_below_the_kernels_ephemeral_range():
    """Outgoing connections take their local ports from the ephemeral range: a server's port picked there could be
    taken before the server binds it."""
    from local_dev.ports import LOWEST, _ephemeral_start, free_port

    first = _ephemeral_start()
    if first <= LOWEST + 1000:
        pytest.skip(f"the ephemeral range starts at {first}: no room below it")
    assert all(LOWEST <= free_port() < first for _ in range(20))


def test_persists_to_its_location(tmp_path):
    location = tmp_path / "data"

    with Azurite(in_memory=False, location=location) as azurite:
        TableServiceClient.from_connection_string(azurite.connection_string).create_table("Kept")

    assert any(location.iterdir())


def test_default_account_only_on_the_well_known_ports():
    development = Azurite(port=10002, location="x", in_memory=False, random_key=False)
    assert development.connection_string == "UseDevelopmentStorage=true"
    assert (development.queue_port, development.blob_port) == (10001, 10000)
    with pytest.raises(ValueError):
        Azurite(port=12345, random_key=False)
    with pytest.raises(ValueError):
        Azurite(port=10002, queue_port=12345, random_key=False)


def test_serves_queues_on_a_port_of_their_own(azurite):
    from azure.storage.queue import QueueClient

    ports = {azurite.port, azurite.queue_port, azurite.blob_port}
    assert len(ports) == 3 and all(is_listening(port) for port in ports)
    assert f"QueueEndpoint={azurite.queue_endpoint};" in azurite.connection_string
    with QueueClient.from_connection_string(azurite.connection_string, "due") as queue:
        queue.create_queue()
        queue.send_message("hello")
        [message] = queue.receive_messages(visibility_timeout=5)
        assert message.content == "hello" and message.dequeue_count == 1

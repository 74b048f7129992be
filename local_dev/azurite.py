"""Start and stop Azurite (the Azure Storage emulator) from node_modules: its Table, Queue and Blob services.

One `azurite` process serves all three: measured here, it listens in ~0.6 s using ~117 MB, against
~0.45 s and ~87 MB for `azurite-table` alone and twice that for separate Table and Queue processes. So
every Azurite (`make run`, each test session) has the queues the due work goes through.
"""

import base64
import os
import secrets
import signal
import socket
import subprocess
from pathlib import Path
from typing import Optional

from local_dev.ports import free_port, wait_for_port
from local_dev.service import Service, stop_with_parent

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE = REPO_ROOT / "node_modules" / ".bin" / "azurite"
ACCOUNT_NAME = "devstoreaccount1"
DEFAULT_HOST = "127.0.0.1"
# The ports UseDevelopmentStorage=true means.
DEFAULT_PORT = 10002  # Table
DEFAULT_QUEUE_PORT = 10001
DEFAULT_BLOB_PORT = 10000
STARTUP_TIMEOUT_S = 30.0
STARTS = 3  # tries with ports picked afresh, when one picked free was taken before Azurite bound it
SHUTDOWN_TIMEOUT_S = 10.0


class Azurite(Service):
    """An Azurite process serving Table (`port`), Queue (`queue_port`) and Blob (`blob_port`); a port
    of 0 is a free one.

    With `random_key` (the default) the account gets a fresh random key, passed to Azurite
    through AZURITE_ACCOUNTS, and `connection_string` carries it. Without it Azurite uses its
    default account, so that `UseDevelopmentStorage=true` works; that needs 127.0.0.1 and the
    well-known ports 10002, 10001 and 10000 (the queue and blob ports default to them then).
    """

    def __init__(
        self,
        port: int = 0,
        host: str = DEFAULT_HOST,
        location: Optional[Path] = None,
        in_memory: bool = True,
        random_key: bool = True,
        tls=None,
        oauth: bool = False,
        queue_port: int = 0,
        blob_port: int = 0,
    ) -> None:
        if not in_memory and location is None:
            raise ValueError("Azurite needs a location when it is not in memory")
        if not random_key:
            queue_port, blob_port = queue_port or DEFAULT_QUEUE_PORT, blob_port or DEFAULT_BLOB_PORT
            if (host, port, queue_port, blob_port) != (DEFAULT_HOST, DEFAULT_PORT, DEFAULT_QUEUE_PORT,
                                                       DEFAULT_BLOB_PORT):
                raise ValueError(f"UseDevelopmentStorage=true only reaches {DEFAULT_HOST} on ports {DEFAULT_PORT} "
                                 f"(Table), {DEFAULT_QUEUE_PORT} (Queue) and {DEFAULT_BLOB_PORT} (Blob)")
        self.host = host
        self.port = port
        self.queue_port = queue_port
        self.blob_port = blob_port
        self.location = Path(location) if location is not None else None
        self.in_memory = in_memory
        self.account_key = base64.b64encode(secrets.token_bytes(64)).decode() if random_key else None
        # `tls` (a local_dev.tls.TestCa): serve https with its certificate. `oauth`: accept Microsoft
        # Entra bearer tokens too, as Azure Storage does (Azurite's "basic" check: issuer, audience,
        # lifetime; over https only, since Azure takes tokens only over TLS).
        if oauth and tls is None:
            raise ValueError("Azurite accepts bearer tokens only over https: give it a certificate (tls)")
        self.tls, self.oauth = tls, oauth
        self._process: Optional[subprocess.Popen] = None

    def _endpoint(self, port: int) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{port}/{ACCOUNT_NAME}"

    @property
    def table_endpoint(self) -> str:
        """The account's Table endpoint, as `<PREFIX>__tableServiceUri` names it."""
        return self._endpoint(self.port)

    @property
    def queue_endpoint(self) -> str:
        """The account's Queue endpoint, as `<PREFIX>__queueServiceUri` names it."""
        return self._endpoint(self.queue_port)

    @property
    def blob_endpoint(self) -> str:
        return self._endpoint(self.blob_port)

    @property
    def connection_string(self) -> str:
        """The connection string the Storage SDKs (Tables, Queues) need to reach this Azurite."""
        if self.account_key is None:
            return "UseDevelopmentStorage=true"
        return (
            f"DefaultEndpointsProtocol={'https' if self.tls else 'http'};AccountName={ACCOUNT_NAME};"
            f"AccountKey={self.account_key};BlobEndpoint={self.blob_endpoint};QueueEndpoint={self.queue_endpoint};"
            f"TableEndpoint={self.table_endpoint};"
        )

    def start(self) -> "Azurite":
        """Start Azurite and return once all three services accept connections."""
        if not AZURITE.exists():
            raise FileNotFoundError(f"{AZURITE} is missing: run `make deps` to install Azurite")
        picked = [name for name in ("port", "queue_port", "blob_port") if getattr(self, name) == 0]
        for attempt in range(STARTS):
            self._pick_ports()
            self._process = subprocess.Popen(
                self._command(),
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                # Its own process group: Ctrl-C in the terminal must not reach it, stop() does.
                start_new_session=True,
                preexec_fn=stop_with_parent,
            )
            try:
                for port in (self.port, self.queue_port, self.blob_port):
                    wait_for_port(self.host, port, timeout=STARTUP_TIMEOUT_S, process=self._process)
                return self
            except RuntimeError:  # it exited before listening
                self.stop()
                if not picked or attempt == STARTS - 1:
                    raise
                # A port picked free was taken before Azurite bound it (EADDRINUSE): pick them again.
                for name in picked:
                    setattr(self, name, 0)
            except BaseException:
                self.stop()
                raise
        return self

    def _pick_ports(self) -> None:
        """Free ports for those left 0 (distinct from each other); refuse ports something listens on."""
        for name in ("port", "queue_port", "blob_port"):
            port = getattr(self, name)
            if port == 0:
                taken = {self.port, self.queue_port, self.blob_port}
                while port in taken:
                    port = free_port(self.host)
                setattr(self, name, port)
            elif _is_listening(self.host, port):
                raise OSError(f"port {self.host}:{port} is already in use (another Azurite running?)")

    def stop(self) -> None:
        """Stop Azurite and everything it started; does nothing when not running."""
        process, self._process = self._process, None
        if process is None:
            return
        # SIGINT, not SIGTERM: only on SIGINT does Azurite close cleanly and save its data.
        _signal_group(process, signal.SIGINT)
        try:
            process.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass
        # Whatever is still in the group (a hung Azurite, anything it started) must not linger.
        _signal_group(process, signal.SIGKILL)
        process.wait()

    @property
    def pid(self) -> Optional[int]:
        """The process id while running, else None."""
        return self._process.pid if self._process is not None else None

    def _command(self) -> list:
        command = [
            str(AZURITE),
            "--tableHost", self.host,
            "--tablePort", str(self.port),
            "--queueHost", self.host,
            "--queuePort", str(self.queue_port),
            "--blobHost", self.host,
            "--blobPort", str(self.blob_port),
            "--disableTelemetry",
            "--silent",
            # azure-storage-queue 12.18 sends x-ms-version 2026-10-06, newer than Azurite 3.35 knows, and
            # Azurite refuses it unless told otherwise; the queue operations used here are ones it serves.
            "--skipApiVersionCheck",
        ]
        if self.tls is not None:
            command += ["--cert", str(self.tls.cert_file), "--key", str(self.tls.key_file)]
        if self.oauth:
            command += ["--oauth", "basic"]
        if self.in_memory:
            return command + ["--inMemoryPersistence"]
        self.location.mkdir(parents=True, exist_ok=True)
        return command + ["--location", str(self.location)]

    def _environment(self) -> dict:
        env = {name: value for name, value in os.environ.items() if name != "AZURITE_ACCOUNTS"}
        if self.account_key is not None:
            env["AZURITE_ACCOUNTS"] = f"{ACCOUNT_NAME}:{self.account_key}"
        return env


def _is_listening(host: str, port: int) -> bool:
    """Whether something accepts connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    """Send `signum` to the process group led by `process`, if any of it is left."""
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass

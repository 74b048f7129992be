"""`make run`: the Function App on http://127.0.0.1:7071 with Azurite and the ADF stand-in.

Does what `func start` does for this app, without Core Tools: loads local.settings.json,
starts the Table emulator (data kept in .azurite/) and, when ARM_ENDPOINT is a loopback
http:// URL, the ADF stand-in on its port (throttling as ARM does, its buckets and refill rates
times ADF_STANDIN_THROTTLE_SCALE when that is set), and when a CHANNEL_<NAME> setting points at a loopback
http:// URL, the Teams and Slack stand-ins on its port; then serves every HTTP function and runs the
timer and queue triggers. With --workers N (`make run WORKERS=N`), N - 1 more local host processes run
the queue triggers too, sharing the queues as the instances of a scaled-out Function App do. Ctrl-C
stops all.

    python -m local_dev.run [--host 127.0.0.1] [--port 7071] [--workers 1]      (from the repository root)
"""

import argparse
import contextlib
import importlib
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

from local_dev.adf_standin import DEFAULT_FACTORY, AdfStandin
from local_dev.arm_throttle import SCALE_SETTING, throttle_from_setting
from local_dev.azurite import DEFAULT_PORT as AZURITE_PORT
from local_dev.azurite import REPO_ROOT, Azurite
from local_dev.chat_standins import ChatStandins
from local_dev.demo import create_demo_pipeline
from local_dev.dev_sign_in import DevSignIn
from local_dev.functions_host import build_wsgi_app, serve
from local_dev.mail_catcher import MailCatcher
from local_dev.queue_rules import QueuesSettingError, read_queues_options
from local_dev.queue_worker import QueueWorkers
from local_dev.queues import QueueFunction, QueueRunner, queue_functions
from local_dev.timers import SettingMissing, TimerRunner, timer_functions
from shared.settings import SettingsError, is_loopback_host

SETTINGS_FILES = ("local.settings.json", "local.settings.json.example")
DEFAULT_ARM_ENDPOINT = "http://127.0.0.1:7072"
AZURITE_LOCATION = REPO_ROOT / ".azurite"

logger = logging.getLogger("local_dev.run")


def parse_args(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the Function App locally with Azurite and the ADF stand-in.")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve the functions on")
    parser.add_argument("--port", type=int, default=7071, help="port to serve the functions on")
    parser.add_argument("--workers", type=_at_least_one, default=1,
                        help="local host processes running the queue triggers (this one and N - 1 more)")
    return parser.parse_args(argv)


def _at_least_one(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of processes (1 or more)")
    return int(value)


class SettingsFileError(ValueError):
    """local.settings.json cannot be read: says which file, where and why."""


def load_settings(root: Path) -> Optional[Path]:
    """Put the Values of local.settings.json (else its .example) into os.environ, as `func start` does.

    Variables already set win. Returns the file read, or None if there is none.
    """
    for name in SETTINGS_FILES:
        path = root / name
        if path.exists():
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as error:
                raise SettingsFileError(f"{name}, line {error.lineno}, column {error.colno}: {error.msg}") from None
            except UnicodeDecodeError:
                raise SettingsFileError(f"{name} is not UTF-8 text") from None
            values = document.get("Values", {}) if isinstance(document, dict) else None
            if not isinstance(values, dict):
                raise SettingsFileError(f'{name}: "Values" must be an object of setting names and values')
            for key, value in values.items():
                os.environ.setdefault(key, str(value))
            return path
    return None


def start_azurite(stack: contextlib.ExitStack) -> Azurite:
    """Azurite on its well-known ports with the default account, so UseDevelopmentStorage=true works."""
    azurite = stack.enter_context(
        Azurite(port=AZURITE_PORT, location=AZURITE_LOCATION, in_memory=False, random_key=False)
    )
    logger.info("Azurite on %s: Table service on port %s, Queue %s, Blob %s (data in %s/)", azurite.host, azurite.port,
                azurite.queue_port, azurite.blob_port, AZURITE_LOCATION.name)
    return azurite


def start_mail_catcher(stack: contextlib.ExitStack) -> Optional[MailCatcher]:
    """A local SMTP server keeping what the app sends, when SMTP_HOST is a loopback address."""
    host = os.environ.get("SMTP_HOST", "")
    if not is_loopback_host(host):
        return None
    port = int(os.environ.get("SMTP_PORT") or 25)
    catcher = stack.enter_context(MailCatcher(host, port))
    logger.info("mail catcher on %s:%s: what the app sends is listed at the stand-in's /_standin/mail", host, port)
    return catcher


def chat_address(env=os.environ) -> Optional[tuple]:
    """(host, port) of the first CHANNEL_<NAME> setting that is a loopback http:// webhook, else None."""
    for name in sorted(env):
        kind, _, url = (env[name] or "").partition(":")
        parts = urlsplit(url.strip())
        if name.startswith("CHANNEL_") and kind.strip() in ("teams", "slack") and parts.scheme == "http" \
                and is_loopback_host(parts.hostname):
            return parts.hostname, parts.port or 80
    return None


def start_chat(stack: contextlib.ExitStack) -> Optional[ChatStandins]:
    """The Teams Workflows and Slack webhook stand-ins, when a channel setting points at this machine."""
    address = chat_address()
    if address is None:
        return None
    try:
        chat = stack.enter_context(ChatStandins(*address))
    except OSError as exc:
        raise OSError(f"cannot start the chat stand-ins on {address[0]}:{address[1]} (is the port in use?)") from exc
    logger.info("Teams and Slack stand-ins on %s: what the app posts is listed there", chat.base_url)
    return chat


def start_standin(stack: contextlib.ExitStack, arm_endpoint: str, mail=None) -> Optional[AdfStandin]:
    """The ADF stand-in on ARM_ENDPOINT's port when that is a loopback http:// URL, else None."""
    parts = urlsplit(arm_endpoint)
    if parts.scheme != "http" or not is_loopback_host(parts.hostname):
        logger.info("ARM_ENDPOINT is %s: no ADF stand-in, pipelines run in Azure", arm_endpoint)
        return None
    try:
        throttle = throttle_from_setting(os.environ.get(SCALE_SETTING))
    except ValueError as error:
        raise SettingsError(str(error)) from None
    try:
        standin = stack.enter_context(AdfStandin(host=parts.hostname, port=parts.port or 80, mail=mail,
                                                 throttle=throttle))
    except SystemExit as exc:  # werkzeug prints the reason and exits when it cannot bind
        raise OSError(f"cannot start the ADF stand-in on {parts.netloc} (is the port in use?)") from exc
    name = create_demo_pipeline(standin.url)
    logger.info("ADF stand-in on %s: factory %s with the pipelines of adf/pipelines/ and the demo pipeline %s",
                standin.url, "/".join(DEFAULT_FACTORY), name)
    logger.info("the stand-in throttles as ARM does: %d writes at once then %g a second, %d reads then %g a second "
                "(%s scales them)", throttle.writes, throttle.writes_per_second, throttle.reads,
                throttle.reads_per_second, SCALE_SETTING)
    return standin


def banner(routes, timers, server_url: str, standin: Optional[AdfStandin], chat: Optional[ChatStandins] = None,
           queues: tuple = (), workers: int = 1) -> str:
    """What `func start` prints once it listens: each function's methods, URL and auth level."""
    lines = ["", "Functions:", ""]
    for methods, path, auth_level, name in routes:
        lines.append(f"        {name}: [{','.join(methods)}] {server_url}{path}  (auth: {auth_level})")
    for timer in timers:
        lines.append(f"        {timer.name}: timerTrigger ({timer.schedule})")
    for queue in queues:
        lines.append(f"        {queue.name}: queueTrigger ({queue.queue_name}, connection {queue.connection})")
    if queues and workers > 1:
        lines += ["", f"The queue triggers run in {workers} local host processes sharing the queues."]
    lines += ["", "Auth levels are shown, not enforced, as with `func start`; Azure requires the keys."]
    if standin is not None:
        lines.append(f"ADF stand-in runs: {standin.url}/_standin/runs")
        if standin.mail is not None:
            lines.append(f"Local mail (what the app emailed): {standin.url}/_standin/mail")
    if chat is not None:
        lines.append(f"Local Teams and Slack (what the app posted): {chat.base_url}/")
    lines += ["Press Ctrl-C to stop.", ""]
    return "\n".join(lines)


def root_to_index(app):
    """Locally, / leads to the app's index page at /api (in Azure, / is the Functions host's own page)."""

    def serve_root(environ, start_response):
        if environ.get("PATH_INFO") in ("", "/") and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            start_response("302 Found", [("Location", "/api"), ("Content-Length", "0")])
            return [b""]
        return app(environ, start_response)
    return serve_root


def start_queues(stack: contextlib.ExitStack, function_app, workers: int) -> list[QueueFunction]:
    """Run the app's queue triggers here and, when `workers` > 1, in workers - 1 more local host processes."""
    functions = queue_functions(function_app)
    stack.enter_context(QueueRunner(functions, read_queues_options(REPO_ROOT / "host.json")))
    if functions and workers > 1:
        stack.enter_context(QueueWorkers(workers - 1))
    elif workers > 1:
        logger.warning("WORKERS=%d, but the app has no queue triggers: no more processes started", workers)
    return functions


def start_all(stack: contextlib.ExitStack, options: argparse.Namespace) -> str:
    """Start Azurite, the stand-in and the functions host on `stack`; return the banner."""
    settings_file = load_settings(REPO_ROOT)
    if settings_file is None:
        logger.warning("no %s: using the environment only", " or ".join(SETTINGS_FILES))
    else:
        logger.info("settings from %s", settings_file.name)
    os.environ.setdefault("ARM_ENDPOINT", DEFAULT_ARM_ENDPOINT)
    sign_in = (os.environ.get("APPROVER_SIGN_IN") or "").strip().lower() == "easyauth"
    if sign_in:
        # The development sign-in stands in for App Service Authentication, which sets this.
        os.environ["WEBSITE_AUTH_ENABLED"] = "True"
    start_azurite(stack)
    mail = start_mail_catcher(stack)
    standin = start_standin(stack, os.environ["ARM_ENDPOINT"], mail)
    chat = start_chat(stack)
    # Imported only now: the app may read its settings from os.environ at import time.
    function_app = importlib.import_module("function_app")
    wsgi_app = build_wsgi_app(function_app.app, REPO_ROOT / "host.json")
    served = root_to_index(DevSignIn(wsgi_app) if sign_in else wsgi_app)
    server = stack.enter_context(serve(served, options.host, options.port))
    timers = stack.enter_context(TimerRunner(timer_functions(function_app.app))).timers
    queues = start_queues(stack, function_app.app, options.workers)
    text = banner(wsgi_app.routes, timers, server.url, standin, chat, queues, options.workers)
    if sign_in:
        text += (f"\nDEVELOPMENT sign-in (APPROVER_SIGN_IN=easyauth): {server.url}/.auth/login/aad — stands in for App "
                 "Service Authentication on this machine only.\n")
    return text


def main(argv=None) -> int:
    options = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)  # the SDKs log every request at INFO
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd, each connection (its own start-up probe too)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with contextlib.ExitStack() as stack:
        try:
            print(start_all(stack, options), flush=True)
        except Exception as error:
            # A busy port or a broken settings file needs no traceback; a broken function_app does.
            expected = isinstance(error, (OSError, SettingsFileError, SettingsError, SettingMissing,
                                          QueuesSettingError))
            logger.error("could not start: %s", error, exc_info=not expected)
            return 1
        stop.wait()
        logger.info("stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())

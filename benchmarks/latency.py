"""A TCP proxy that adds network latency: `python -m benchmarks.latency --target PORT --rtt-ms N`.

On loopback a call to Azurite costs no network time, so everything the client does (such as
two calls made one after the other instead of at once) looks CPU-bound. In Azure, storage
and ARM are a network round trip away. This proxy delays every chunk by half the round trip
in each direction, keeping order per connection. It runs in its own process (asyncio), so it
takes no time from the code being measured. Prints one JSON line with its port.
"""

import argparse
import asyncio
import json
import sys

from .child import ChildProcess


async def _pump(reader, writer, delay: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            await asyncio.sleep(max(0.0, due - loop.time()))
            writer.write(data)
            await writer.drain()
        writer.close()

    delivery = asyncio.create_task(deliver())
    try:
        while data := await reader.read(65536):
            queue.put_nowait((loop.time() + delay, data))
    except ConnectionError:
        pass
    finally:
        queue.put_nowait((0.0, None))
        try:
            await delivery
        except ConnectionError:
            pass


async def _serve(target_port: int, rtt: float) -> None:
    async def connect(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pump(client_reader, server_writer, rtt / 2),
                             _pump(server_reader, client_writer, rtt / 2))

    server = await asyncio.start_server(connect, "127.0.0.1", 0)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    stop = asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    async with server:
        await stop


class LatencyProxy(ChildProcess):
    """The proxy in a subprocess, forwarding to 127.0.0.1:`target_port`; `.port` is where it listens."""

    def __init__(self, target_port: int, rtt_ms: float, cwd, env: dict):
        super().__init__("benchmarks.latency", ("--target", target_port, "--rtt-ms", rtt_ms), cwd=cwd, env=env,
                         what="latency proxy")
        self.port = self.ready["port"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", type=int, required=True, help="port on 127.0.0.1 to forward to")
    parser.add_argument("--rtt-ms", type=float, required=True, help="round trip time to add, in ms")
    options = parser.parse_args(argv)
    asyncio.run(_serve(options.target, options.rtt_ms / 1000))


if __name__ == "__main__":
    main()

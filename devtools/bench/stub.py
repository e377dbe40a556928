"""A fast stand-in for Tulip, for `make bench`: asyncio, HTTP/1.1 keep-alive, counting.

    python -m devtools.bench.stub PORT [DELAY_SECONDS]

Any `PUT` is answered 204 (after DELAY_SECONDS, default 0: a slow Tulip) and any `GET` 200 with
a table link's description; `GET /_stats`
answers the counts so far (`connections` accepted, `requests` answered), not counting itself.
It parses only what a client of Tulip sends (a request line, headers, a Content-Length body).
"""

from __future__ import annotations

import asyncio
import json
import sys

_STATS = {"connections": 0, "requests": 0}
_DESCRIBED = json.dumps({"id": "L", "leftTableId": "A", "rightTableId": "B"}).encode()


_DELAY = [0.0]


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    counted = False
    try:
        while line := await reader.readline():
            method, path, _ = line.decode("latin-1").split(" ", 2)
            length = 0
            while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = header.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            if path == "/_stats":
                body = json.dumps(_STATS).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            else:
                if not counted:
                    _STATS["connections"] += 1
                    counted = True
                _STATS["requests"] += 1
                if method == "GET":
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(_DESCRIBED), _DESCRIBED)
                    )
                else:
                    if _DELAY[0]:
                        await asyncio.sleep(_DELAY[0])
                    writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


async def _main(port: int) -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) > 2:
        _DELAY[0] = float(sys.argv[2])
    asyncio.run(_main(int(sys.argv[1])))

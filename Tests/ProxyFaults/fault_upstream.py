"""A service that misbehaves on request, for the gateway's proxy fault suite.

It stands where pipeline-runner would, so every `/api/v1/pipelines/fault/<behaviour>?...` request that the gateway
forwards lands here. It speaks HTTP/1.1 by hand, over raw asyncio streams, because the point is to break the
protocol in ways a framework would not let it: answer before reading the body, close in the middle of a request
or a response, send more than it declared.
"""

import asyncio
import hashlib
import json
import threading
import urllib.parse


class Request:
    def __init__(self, method, target, headers):
        self.method = method
        path, _, query = target.partition("?")
        self.path = path
        self.query = {k: v[-1] for k, v in urllib.parse.parse_qs(query).items()}
        self.headers = headers

    @property
    def behaviour(self):
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def int(self, name, default=0):
        return int(self.query.get(name, default))


async def read_head(reader):
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return Request(method, target, headers)


async def body_chunks(reader, request, limit=None):
    """Yields the request body as it arrives (by Content-Length or chunked), at most `limit` bytes."""
    seen = 0
    if request.headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return
            data = await reader.readexactly(size)
            await reader.readexactly(2)
            seen += size
            yield data
    else:
        left = int(request.headers.get("content-length", "0"))
        while left > 0:
            want = min(left, 65536) if limit is None else min(left, 65536, limit - seen)
            if want <= 0:
                return
            data = await reader.read(want)
            if not data:
                raise ConnectionError("the gateway closed the connection mid-body")
            left -= len(data)
            seen += len(data)
            yield data


def response(status, body=b"", content_type="application/json", declared=None):
    head = f"HTTP/1.1 {status} Status\r\nContent-Type: {content_type}\r\nContent-Length: {len(body) if declared is None else declared}\r\n\r\n"
    return head.encode() + body


def json_body(value):
    return json.dumps(value).encode()


async def drain(reader, request):
    async for _ in body_chunks(reader, request):
        pass


async def serve_one(reader, writer, request):
    """Answers one request; returns False when the connection is to be dropped."""
    b = request.behaviour
    if b == "early":
        # Answer from the head alone, then (unless told to close) read what is left, as a keep-alive server must.
        status = request.int("status", 404)
        writer.write(response(status, json_body({"error": {"code": "EARLY", "message": "answered early"}})))
        await writer.drain()
        if request.query.get("close") == "1":
            return False
        await drain(reader, request)
        return True
    if b == "digest":
        digest, size = hashlib.sha256(), 0
        async for chunk in body_chunks(reader, request):
            digest.update(chunk)
            size += len(chunk)
        writer.write(response(200, json_body({"bytes": size, "sha256": digest.hexdigest(), "method": request.method})))
        await writer.drain()
        return True
    if b == "drop-request":
        # Read part of the body, then vanish without an answer.
        async for _ in body_chunks(reader, request, limit=request.int("after", 1 << 20)):
            pass
        writer.transport.abort()
        return False
    if b == "drop-response":
        await drain(reader, request)
        declared, sent = request.int("declared", 1 << 20), request.int("sent", 100_000)
        writer.write(response(200, b"x" * sent, content_type="application/octet-stream", declared=declared))
        await writer.drain()
        writer.transport.abort()
        return False
    if b == "slow":
        await drain(reader, request)
        await asyncio.sleep(request.int("ms", 1000) / 1000)
        writer.write(response(200, json_body({"slow": True})))
        await writer.drain()
        return True
    if b == "overlong":
        # Declares 10 bytes and sends 1,000: the rest is garbage where the next answer should start.
        await drain(reader, request)
        writer.write(response(200, b"y" * 1000, content_type="text/plain", declared=10))
        await writer.drain()
        return True
    if b == "download":
        await drain(reader, request)
        size = request.int("bytes", 1 << 20)
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n".encode())
        chunk = b"z" * 65536
        left = size
        while left > 0:
            writer.write(chunk[: min(left, len(chunk))])
            left -= min(left, len(chunk))
            await writer.drain()
        return True
    writer.write(response(200, json_body({"path": request.path})))
    await writer.drain()
    await drain(reader, request)
    return True


async def handle(reader, writer):
    try:
        while True:
            try:
                request = await read_head(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            if not await serve_one(reader, writer, request):
                return
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return
    finally:
        writer.transport.abort()


class FaultUpstream:
    """The server, on its own event loop in a thread; `port` is where it listens (127.0.0.1)."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.port = None
        started = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            server = self.loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0, limit=1 << 20))
            self.port = server.sockets[0].getsockname()[1]
            self.server = server
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        if not started.wait(10):
            raise RuntimeError("the fault upstream did not start")

    def close(self):
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

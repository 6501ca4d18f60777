"""The gateway's streaming proxy under hostile peers: a service that answers before reading the body, breaks the
connection or lies about sizes, and a client that disconnects, pipelines or sends bodies where none belong.

Each case passes when the client gets a sane answer (or a closed connection) and the gateway keeps running: the
same PID answers /health afterwards (the `stays_up` fixture), and its memory returns to where it was."""

import hashlib
import json
import os
import select
import socket
import subprocess
import threading
import time

import pytest

MB = 1 << 20
FAULT = "/api/v1/pipelines/fault"


class Closed(Exception):
    """The connection ended before a whole response arrived."""


class Client:
    """One raw HTTP/1.1 connection to the gateway."""

    def __init__(self, gateway, timeout=30):
        self.gateway = gateway
        self.sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=timeout)
        self.file = self.sock.makefile("rb")

    def head(self, method, path, length=None, extra=()):
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.gateway.port}",
                 f"Authorization: Bearer {self.gateway.token}"]
        if length is not None:
            lines.append(f"Content-Length: {length}")
        lines += list(extra)
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def send(self, data):
        self.sock.sendall(data)

    def send_body(self, size, chunk=MB):
        block = os.urandom(min(chunk, size)) if size else b""
        left = size
        while left > 0:
            self.sock.sendall(block[: min(left, len(block))])
            left -= min(left, len(block))

    def response(self, limit=None):
        """(status, headers, body); raises Closed when the connection ends first. `limit`: stop after so many
        body bytes (for partial downloads)."""
        line = self.file.readline()
        if not line:
            raise Closed("no status line")
        status = int(line.split()[1])
        headers = {}
        while True:
            line = self.file.readline()
            if not line:
                raise Closed("inside the headers")
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200:
            return self.response(limit)
        body = bytearray()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size_line = self.file.readline()
                if not size_line:
                    raise Closed(f"after {len(body)} body bytes")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    self.file.readline()
                    break
                data = self.file.read(size + 2)
                if len(data) < size + 2:
                    raise Closed(f"after {len(body) + len(data)} body bytes")
                body += data[:size]
                if limit and len(body) >= limit:
                    break
        else:
            length = int(headers.get("content-length", "0"))
            want = length if limit is None else min(limit, length)
            while len(body) < want:
                data = self.file.read(min(want - len(body), MB))
                if not data:
                    raise Closed(f"after {len(body)} of {length} body bytes")
                body += data
        return status, headers, bytes(body)

    def json(self):
        status, headers, body = self.response()
        return status, json.loads(body) if body else None

    def close(self):
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def in_background(send):
    """Runs `send` (the rest of a request) in a thread while the caller reads the answer, as a real client does.
    The gateway may close the connection once it has answered: a send that fails then is allowed."""
    def run():
        try:
            send()
        except OSError:
            pass

    sender = threading.Thread(target=run, daemon=True)
    sender.start()
    return sender


def upload_while_reading(client, size):
    """Sends `size` body bytes in the background."""
    return in_background(lambda: client.send_body(size))


def ok_on(client):
    """The connection still carries a request and its answer (keep-alive survived the case)."""
    client.send(client.head("GET", f"{FAULT}/ok"))
    status, _, body = client.response()
    assert status == 200, body


# -- a service that answers before it has read the body ------------------------------------------------------

@pytest.mark.parametrize("status", [404, 413, 415, 500])
@pytest.mark.parametrize("size", [5 * MB, 50 * MB])
def test_early_answer_while_the_client_still_sends(gateway, status, size):
    with Client(gateway) as client:
        client.send(client.head("POST", f"{FAULT}/early?status={status}", size,
                                ["Content-Type: application/octet-stream"]))
        sender = upload_while_reading(client, size)
        got, _, body = client.response()
        assert got == status, body
        sender.join(60)
        assert not sender.is_alive(), "the gateway stopped reading the rest of the body"
        ok_on(client)


@pytest.mark.parametrize("status", [404, 413, 415, 500])
@pytest.mark.parametrize("size", [5 * MB, 50 * MB])
def test_early_answer_to_expect_100_continue(gateway, status, size):
    """As curl does for any body over 1 MB: wait up to a second for 100 Continue, give up on a final answer."""
    with Client(gateway) as client:
        client.send(client.head("POST", f"{FAULT}/early?status={status}", size,
                                ["Content-Type: application/octet-stream", "Expect: 100-continue"]))
        got, _, body = client.response()
        assert got == status, body


@pytest.mark.parametrize("status", [404, 500])
def test_early_answer_then_the_service_closes(gateway, status):
    with Client(gateway) as client:
        client.send(client.head("POST", f"{FAULT}/early?status={status}&close=1", 5 * MB))
        sender = upload_while_reading(client, 5 * MB)
        got, _, body = client.response()
        # The service's answer arrived whole before it closed; 503 would also be honest if it had not.
        assert got in (status, 503), body
        sender.join(60)


@pytest.mark.parametrize("status", [404, 413])
def test_curl_upload_to_an_early_answer(gateway, tmp_path, status):
    """curl itself, which adds `Expect: 100-continue` to bodies over 1 MB: the reported trigger of the crash."""
    payload = tmp_path / "big.bin"
    payload.write_bytes(os.urandom(5 * MB))
    result = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", gateway.url(f"{FAULT}/early?status={status}"),
         "-H", f"Authorization: Bearer {gateway.token}", "-H", "Content-Type: application/octet-stream",
         "--data-binary", f"@{payload}"],
        capture_output=True, text=True, timeout=60)
    assert result.stdout == str(status), result.stderr


def test_curl_upload_arrives_whole(gateway, tmp_path):
    data = os.urandom(5 * MB + 17)
    payload = tmp_path / "big.bin"
    payload.write_bytes(data)
    result = subprocess.run(
        ["curl", "-sS", "-X", "POST", gateway.url(f"{FAULT}/digest"), "-H", f"Authorization: Bearer {gateway.token}",
         "--data-binary", f"@{payload}"],
        capture_output=True, text=True, timeout=60)
    answer = json.loads(result.stdout)
    assert answer == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "method": "POST"}


# -- a service that breaks the exchange ---------------------------------------------------------------------

def test_service_closes_mid_request(gateway):
    with Client(gateway) as client:
        client.send(client.head("POST", f"{FAULT}/drop-request?after={MB}", 5 * MB))
        sender = upload_while_reading(client, 5 * MB)
        try:
            status, body = client.json()
        except Closed:
            return
        assert status == 503 and body["error"]["code"] == "SERVICE_UNAVAILABLE", body
        sender.join(60)


def test_service_closes_mid_streamed_response(gateway):
    """Past the head the status is sent: the client sees a short body and a closed connection."""
    with Client(gateway) as client:
        client.send(client.head("GET", f"{FAULT}/drop-response?declared={MB}&sent=100000"))
        with pytest.raises(Closed):
            client.response()


def test_service_closes_mid_small_response(gateway):
    """An answer the gateway reads whole before sending on: still a clean 503."""
    with Client(gateway) as client:
        client.send(client.head("GET", f"{FAULT}/drop-response?declared=10000&sent=5000"))
        status, body = client.json()
        assert status == 503 and body["error"]["code"] == "SERVICE_UNAVAILABLE", body
        ok_on(client)


def test_slow_service_within_the_timeout(gateway):
    with Client(gateway) as client:
        client.send(client.head("GET", f"{FAULT}/slow?ms=500"))
        status, body = client.json()
        assert status == 200 and body == {"slow": True}


def test_silent_service_is_504(gateway):
    with Client(gateway) as client:
        started = time.monotonic()
        client.send(client.head("POST", f"{FAULT}/slow?ms=5000", 3 * MB))
        sender = upload_while_reading(client, 3 * MB)
        status, body = client.json()
        assert status == 504 and body["error"]["code"] == "GATEWAY_TIMEOUT", body
        assert time.monotonic() - started < 5
        sender.join(60)
        ok_on(client)


def test_service_sends_more_than_it_declared(gateway):
    with Client(gateway) as client:
        client.send(client.head("GET", f"{FAULT}/overlong"))
        status, _, body = client.response()
        assert status == 200 and body == b"y" * 10
        # The garbage must not become the answer to anyone's next request.
        for _ in range(3):
            ok_on(client)


# -- a client that misbehaves -------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["digest", "early?status=404", "slow?ms=300"])
def test_client_disconnects_mid_upload(gateway, target):
    client = Client(gateway)
    client.send(client.head("POST", f"{FAULT}/{target}", 50 * MB))
    client.send_body(2 * MB)
    client.close()


def test_client_disconnects_mid_download(gateway):
    client = Client(gateway)
    client.send(client.head("GET", f"{FAULT}/download?bytes={50 * MB}"))
    status, _, body = client.response(limit=MB)
    assert status == 200 and len(body) == MB
    client.close()


def test_download_arrives_whole(gateway):
    with Client(gateway) as client:
        client.send(client.head("GET", f"{FAULT}/download?bytes={20 * MB + 3}"))
        status, _, body = client.response()
        assert status == 200 and len(body) == 20 * MB + 3 and set(body) == {ord("z")}


def test_expect_100_continue_upload_arrives_whole(gateway):
    data = os.urandom(5 * MB)
    with Client(gateway) as client:
        client.send(client.head("POST", f"{FAULT}/digest", len(data), ["Expect: 100-continue"]))
        # curl waits up to a second for 100 Continue, then sends the body anyway; nothing final may come first.
        readable, _, _ = select.select([client.sock], [], [], 1.0)
        if readable:
            assert client.file.peek(12)[:12] == b"HTTP/1.1 100", "a final answer before the body was sent"
        client.send(data)
        status, body = client.json()
        assert status == 200 and body == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "method": "POST"}


def test_chunked_upload_arrives_whole(gateway):
    parts = [os.urandom(n) for n in (1, 65536, MB, 3 * MB + 5)]
    with Client(gateway) as client:
        client.send(client.head("POST", f"{FAULT}/digest", extra=["Transfer-Encoding: chunked"]))
        for part in parts:
            client.send(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        client.send(b"0\r\n\r\n")
        status, body = client.json()
        data = b"".join(parts)
        assert status == 200 and body == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "method": "POST"}
        ok_on(client)


def test_chunked_upload_over_the_limit_is_413(gateway):
    # The gateway's limit is 100 MB; declare nothing and keep sending.
    with Client(gateway) as client:
        client.send(client.head("POST", f"{FAULT}/digest", extra=["Transfer-Encoding: chunked"]))
        block = f"{MB:x}\r\n".encode() + os.urandom(MB) + b"\r\n"
        sender = in_background(lambda: [client.send(block) for _ in range(110)])
        try:
            status, body = client.json()
        except Closed:
            return
        assert status == 413 and body["error"]["code"] == "PAYLOAD_TOO_LARGE", body
        sender.join(60)


def test_pipelined_requests_are_answered_in_order(gateway):
    with Client(gateway) as client:
        client.send(client.head("GET", f"{FAULT}/first") + client.head("GET", f"{FAULT}/second")
                    + client.head("POST", f"{FAULT}/digest", 3) + b"abc")
        assert client.json() == (200, {"path": f"{FAULT}/first"})
        assert client.json() == (200, {"path": f"{FAULT}/second"})
        assert client.json() == (200, {"bytes": 3, "sha256": hashlib.sha256(b"abc").hexdigest(), "method": "POST"})


def test_body_on_get_is_forwarded_and_framed(gateway):
    data = os.urandom(1000)
    with Client(gateway) as client:
        client.send(client.head("GET", f"{FAULT}/digest", len(data)) + data)
        assert client.json() == (200, {"bytes": 1000, "sha256": hashlib.sha256(data).hexdigest(), "method": "GET"})
        ok_on(client)


# -- memory -------------------------------------------------------------------------------------------------

def heavy_round(gateway):
    with Client(gateway) as client:
        client.send(client.head("POST", f"{FAULT}/early?status=404", 50 * MB))
        sender = upload_while_reading(client, 50 * MB)
        client.response()
        sender.join(60)
    with Client(gateway) as client:
        client.send(client.head("POST", f"{FAULT}/early?status=413", 50 * MB, ["Expect: 100-continue"]))
        client.response()
    client = Client(gateway)
    client.send(client.head("POST", f"{FAULT}/digest", 50 * MB))
    client.send_body(5 * MB)
    client.close()
    client = Client(gateway)
    client.send(client.head("GET", f"{FAULT}/download?bytes={50 * MB}"))
    client.response(limit=2 * MB)
    client.close()
    with Client(gateway) as client:
        client.send(client.head("POST", f"{FAULT}/digest", 20 * MB))
        client.send_body(20 * MB)
        assert client.json()[0] == 200
    gateway.assert_alive()


def test_memory_returns_to_where_it_was(gateway):
    """Rounds of the heaviest cases: after the first (allocator and pools warmed), resident memory stays put."""
    heavy_round(gateway)
    baseline = gateway.rss_kib()
    readings = []
    for _ in range(4):
        heavy_round(gateway)
        readings.append(gateway.rss_kib())
    print(f"gateway RSS: baseline {baseline} KiB, after each round {readings}")
    assert readings[-1] - baseline < 24 * 1024, f"RSS grew from {baseline} KiB to {readings}"

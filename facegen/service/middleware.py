"""HTTP middleware: the upload size limit (before a byte is stored) and security headers on every answer."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


class _TooLargeError(Exception):
    """The request body passed the limit."""


async def _answer(send: Send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *SECURITY_HEADERS]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse (413) a request whose body is larger than `max_bytes`, by header or as it streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        too_large = f"the upload is larger than the limit of {self.max_bytes} bytes; send a smaller file"
        if declared is not None:
            if not declared.isdigit():
                await _answer(send, 400, "Content-Length is not a number")
                return
            if int(declared) > self.max_bytes:
                await _answer(send, 413, too_large)
                return
        received, exceeded, answered = 0, False, False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _TooLargeError
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal answered
            if exceeded:  # whatever the app answers to a cut-off body (a parse error), the caller learns why
                if not answered:
                    answered = True
                    await _answer(send, 413, too_large)
                return
            answered = answered or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _TooLargeError:
            if not answered:
                await _answer(send, 413, too_large)


class SecurityHeaders:
    """Add the security headers to every answer (and no CORS headers: cross-origin browsers are refused)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *(h for h in SECURITY_HEADERS if h[0] not in names)]  # fmt: skip
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)

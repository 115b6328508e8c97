"""Serving the profile API with uvicorn, with bounded request heads.

uvicorn's httptools protocol keeps every header of a request, however many and however large
(a 1 MB header, 5,000 headers), before the app sees any of them; a middleware would only look once
they are all in memory. This protocol counts the request line and headers while they arrive and
answers 431 (the API's JSON error) as soon as a head goes beyond its limits, before the app runs,
then closes the connection. On AWS, API Gateway bounds request heads itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("rfmlake.api")


@dataclass(frozen=True)
class HeadLimits:
    """What one request head may hold: header lines, and bytes of the request line and headers."""

    max_headers: int = 100
    max_head_bytes: int = 16 * 1024


class HeadTooLargeError(Exception):
    """A request head beyond its HeadLimits (raised inside the parser's callbacks to stop it)."""


def _too_large_response(message: str) -> bytes:
    body = json.dumps({"error": {"status": 431, "code": "request_header_fields_too_large",
                                 "message": message}}).encode()
    return b"".join([
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        b"content-type: application/json\r\n",
        b"content-length: " + str(len(body)).encode() + b"\r\n",
        b"connection: close\r\n\r\n",
        body,
    ])


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with HeadLimits (`limits`, set by `bounded_protocol`)."""

    limits = HeadLimits()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head()

    def _start_head(self) -> None:
        self._in_head = True
        self._raw_head = 0    # bytes received since the head began (all of them belong to it)
        self._head = 0        # bytes of the request line and the headers parsed so far
        self._header_count = 0

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head = len(b" HTTP/1.1\r\n\r\n")

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            raise HeadTooLargeError(f"more than {self.limits.max_headers} headers")
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count(self, size: int) -> None:
        self._head += size
        if self._head > self.limits.max_head_bytes:
            raise HeadTooLargeError(f"request line and headers beyond {self.limits.max_head_bytes} bytes")

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._start_head()

    def data_received(self, data: bytes) -> None:
        # uvicorn's data_received, plus the head limits: a header still arriving is counted in raw
        # bytes too (the parser holds an unfinished header line until it ends).
        self._unset_keepalive_if_required()
        if self.transport.is_closing():  # refused: the rest of what the client sends is dropped
            return
        if self._in_head:
            self._raw_head += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, HeadTooLargeError):
                self._refuse(str(exc.__context__))
                return
            self._bad_request()
            return
        except httptools.HttpParserError:
            self._bad_request()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._in_head and self._raw_head > self.limits.max_head_bytes:
            self._refuse(f"request line and headers beyond {self.limits.max_head_bytes} bytes")

    def _bad_request(self) -> None:
        message = "Invalid HTTP request received."
        self.logger.warning(message)
        self.send_400_response(message)

    def _refuse(self, reason: str) -> None:
        log.warning("431 request head refused: %s", reason)  # never the header names or values
        if not self.transport.is_closing():
            self.transport.write(_too_large_response(f"request head too large: {reason}"))
            self.transport.close()
        self._in_head = False


def bounded_protocol(limits: HeadLimits) -> type[BoundedHttpToolsProtocol]:
    """The protocol class for uvicorn's `http` setting, with these limits."""
    return type("BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,), {"limits": limits})


def server_config(app: Any, *, host: str, port: int, limits: HeadLimits | None = None,
                  log_level: str = "info") -> uvicorn.Config:
    """uvicorn's configuration for the profile API: bounded request heads, and uvicorn's own access
    log off (it prints query strings, and an email lookup carries the address in one)."""
    return uvicorn.Config(app, host=host, port=port, http=bounded_protocol(limits or HeadLimits()),
                          access_log=False, log_level=log_level)

"""uvicorn's h11 protocol with a deadline for request headers.

uvicorn closes idle keep-alive connections but waits forever for the headers of a request
that trickles in (a slowloris holds a connection slot per byte every few seconds). Here a
connection must deliver complete headers within ``header_timeout_s`` of opening, or of the
previous response, or it is closed. The body's own deadline is the ``Guard``'s.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


class GuardedH11Protocol(H11Protocol):
    # Set by ``polymodal serve`` (the class travels by name to worker processes).
    header_timeout_s: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer(self.header_timeout_s)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _arm_header_timer(self, delay: float) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(delay, self._headers_overdue)

    def _waiting_for_headers(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _headers_overdue(self) -> None:
        self._header_timer = None
        if self._waiting_for_headers() and not self.transport.is_closing():
            self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if not self._waiting_for_headers():
            self._cancel_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self._waiting_for_headers():
            # the next request's headers: keep-alive idle time, then the header deadline
            self._arm_header_timer(self.timeout_keep_alive + self.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)


def protocol_with(header_timeout_s: float) -> type[Any]:
    """The protocol class, its header deadline set (process-wide)."""
    GuardedH11Protocol.header_timeout_s = header_timeout_s
    return GuardedH11Protocol

"""A bounded window on the end of a byte stream (stderr tails, dump trailers)."""

from __future__ import annotations


class TailBuffer:
    """Keep only the last ``limit`` bytes fed, so a chatty child can't grow memory."""

    def __init__(self, limit: int = 8192) -> None:
        self._limit = limit
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        """Append ``data``, dropping what falls out of the window."""
        if len(data) >= self._limit:
            self._buf[:] = data[-self._limit :]
            return
        self._buf += data
        if len(self._buf) > self._limit:
            del self._buf[: len(self._buf) - self._limit]

    @property
    def data(self) -> bytes:
        return bytes(self._buf)

    def text(self) -> str:
        return self._buf.decode("utf-8", errors="replace")

    def lines(self) -> list[str]:
        """The non-empty lines of the window (the first may be cut)."""
        return [line.strip() for line in self.text().splitlines() if line.strip()]

    def last_line(self) -> str:
        """The last non-empty line, or ``""``."""
        lines = self.lines()
        return lines[-1] if lines else ""

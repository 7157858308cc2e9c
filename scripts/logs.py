"""The servers' log: one JSON object per line on stderr.

Every line has `time` (UTC, ISO 8601), `level`, `logger` and `message`; a line written while
a request runs also has its `request_id` (http.envelope); access lines add `method`, `route`,
`status`, `duration_ms`, `token_id` and `client`. Messages hold ids, never a secret or a
resource's attributes: the access line names the route, not the URL that was asked for.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import msgspec

from scimledger.http.envelope import REQUEST_ID

# Fields a log call may add with `extra=`: copied onto the line when present.
EXTRA_FIELDS = ("method", "route", "status", "duration_ms", "token_id", "client")


_encode = msgspec.json.Encoder(enc_hook=str).encode


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        for field in EXTRA_FIELDS:
            value = record.__dict__.get(field)
            if value is not None:
                line[field] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _encode(line).decode()


def configure(level: int = logging.INFO) -> None:
    """Sends every logger's lines, uvicorn's and the libraries' included, to stderr as JSON."""
    # A line names no thread, process or source line: not collected (each costs every
    # record, and a server writes one per request).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # the documented way to skip looking for the caller
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True

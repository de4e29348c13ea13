"""How logs are written: as one JSON object per line (OUTFITS_LOG_FORMAT=json) for a log
pipeline to index (time, level, logger, message, the process, and the exception's traceback
when there is one), and without libraries' chatter."""

import json
import logging
import os
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class QuietLibraries(logging.Filter):
    """Drops open_clip's INFO and DEBUG lines: it logs on the root logger, so no logger level
    can silence it, and announces every step of every model load ("Parsing model identifier",
    "Instantiating model architecture", ...). Its warnings and errors pass."""

    LIBRARY_PATHS = (f"{os.sep}open_clip{os.sep}",)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not any(
            path in record.pathname for path in self.LIBRARY_PATHS
        )

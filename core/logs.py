"""JSON log lines (LOG_FORMAT=json): one object per line, for log collectors.

Each line has `time` (UTC, ISO 8601), `level`, `logger` and `message`, then whatever the
call passed in `extra` as keys of their own: a job's lines carry `event`, `queue`,
`job_id`, `row_kind`, `row_id`, `attempt` and, at its end, `outcome` and `duration`
(jobs/attempts.py). A traceback goes in `exception`.
"""

import json
import logging
from datetime import UTC, datetime

# What every LogRecord has; anything else on a record came from `extra`.
STANDARD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record):
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(extra_fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def extra_fields(record):
    return {name: value for name, value in record.__dict__.items() if name not in STANDARD_ATTRIBUTES}

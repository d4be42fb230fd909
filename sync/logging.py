"""Keep OAuth secrets out of every log line, whatever logger produced it."""

import logging
import re

_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-~+/=]+"),
    re.compile(r"(?i)((?:access|refresh|id)_token['\"]?\s*[:=]\s*['\"]?)[^'\"&\s,}]+"),
    re.compile(r"(?i)(client_secret['\"]?\s*[:=]\s*['\"]?)[^'\"&\s,}]+"),
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?basic\s+)[A-Za-z0-9+/=]+"),
]


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(r"\1[redacted]", text)
    return text


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            # Formatters render the traceback later; pre-render it redacted.
            import traceback

            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)))
            record.exc_info = None
        return True

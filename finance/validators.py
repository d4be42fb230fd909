import re
from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError

_ISO6346 = re.compile(r"^[A-Z]{3}[UJZR]\d{7}$")
# Letter values of ISO 6346: multiples of 11 are skipped.
_LETTER_VALUES: dict[str, int] = {}
_value = 10
for _letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
    if _value % 11 == 0:
        _value += 1
    _LETTER_VALUES[_letter] = _value
    _value += 1


def iso6346_check_digit(prefix: str) -> int:
    """Check digit for the first 10 characters of a container number."""
    total = 0
    for position, char in enumerate(prefix):
        value = _LETTER_VALUES[char] if char.isalpha() else int(char)
        total += value * (2**position)
    return total % 11 % 10


def validate_container_number(value: str) -> None:
    if not value:
        return
    if not _ISO6346.match(value):
        raise ValidationError(
            "%(value)s is not a container number: 4 letters (owner + U/J/Z/R) then 7 digits.",
            params={"value": value},
        )
    if iso6346_check_digit(value[:10]) != int(value[10]):
        raise ValidationError(
            "%(value)s has a wrong check digit (ISO 6346).", params={"value": value}
        )


def validate_doc_number(value: str) -> None:
    # QuickBooks limits DocNumber to 21 characters and rejects control characters.
    if len(value) > 21:
        raise ValidationError("QuickBooks allows at most 21 characters in a document number.")
    if any(ord(c) < 32 for c in value):
        raise ValidationError("Document numbers cannot contain control characters.")


def validate_qb_id(value: str) -> None:
    # isascii: "²" and "١٢" are digits to str.isdigit(), but not QuickBooks IDs (int() fails).
    if not (value.isascii() and value.isdigit()) or int(value) <= 0:
        raise ValidationError(
            "A QuickBooks ID is a positive whole number, like 142 (got %(value)r).",
            params={"value": value},
        )


# C0 controls except tab, newline and carriage return; DEL; C1 controls. PostgreSQL refuses NUL
# in text (a DataError), QuickBooks refuses control characters in names and DocNumbers.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def has_control_characters(value: str) -> bool:
    return bool(_CONTROL.search(value))


def printable(value: str) -> str:
    """The text without control characters (for values that come from QuickBooks)."""
    return _CONTROL.sub("", value)


CONTROL_MESSAGE = "contains control characters (such as NUL or escape codes); remove them."
EARLIEST_DATE, LATEST_DATE = date(2000, 1, 1), date(2099, 12, 31)


def validate_business_date(value: date, what: str = "The date") -> None:
    """Dates a trucking company bills with; 9999-12-31 overflows date arithmetic."""
    if value is not None and not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValidationError(
            f"{what} must be between {EARLIEST_DATE.isoformat()} and {LATEST_DATE.isoformat()} "
            f"(got {value.isoformat()})."
        )


def money(value: object, what: str) -> Decimal:
    """A positive amount in cents, as QuickBooks holds it; anything else is refused, not rounded."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationError(f"{what} is not an amount (got {value!r}).") from None
    if not amount.is_finite() or amount <= 0:
        raise ValidationError(f"{what} must be more than zero (got {value}).")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValidationError(f"{what} can have at most two decimals (got {value}).")
    return amount.quantize(Decimal("0.01"))

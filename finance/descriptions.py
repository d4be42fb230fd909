"""The custom description builder: what each QuickBooks invoice line's Description reads.

Finance picks ordered fields (or writes a template) on Finance → QuickBooks; the sync engine
calls `describe_invoice` when it builds an Invoice, and the settings page calls
`preview_descriptions` with unsaved values for its live preview.

Rules, in order:
- a template (`{container}`, `{po}`…) wins over the field list; template segments (split on the
  separator) whose placeholders are all empty are dropped, so nothing reads "PO  ·";
- otherwise non-empty field values are joined as "Label value" pairs with the separator
  (charge name and charge note carry no label);
- the per-charge-set prefix ("Load {n} ({load}): ") is applied when the invoice is combined
  (several charge sets) or when a prefix is set explicitly; several sets of one single load
  default to "{label}: " (the set's label, else "Part {n}");
- control characters become spaces, whitespace is collapsed, and text over QuickBooks' 4000
  characters is cut with a visible marker and `truncated=True` (never silently).
"""

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date
from string import Formatter

from django.core.exceptions import ValidationError
from django.db.models import Prefetch

from finance.models import (
    BILL_DESCRIPTION_FIELDS,
    DESCRIPTION_FIELDS,
    BillLine,
    ChargeLine,
    ChargeSet,
    FinanceSettings,
    Invoice,
    Load,
)

MAX_LENGTH = 4000  # QuickBooks' limit for Line.Description
TRUNCATION_MARKER = " …[truncated]"
DEFAULT_COMBINED_PREFIX = "Load {n} ({load}): "
# Several charge sets of one load (line haul, then accessorials): name the set, not the load.
DEFAULT_SPLIT_PREFIX = "{label}: "

# Short labels for "Label value" pairs; charge name and note read on their own.
LABELS = {
    "container": "Container",
    "load": "Load",
    "po": "PO",
    "reference": "Ref",
    "bol": "BOL",
    "pickup": "Pickup",
    "delivery": "Delivery",
    "pickup_date": "Picked up",
    "delivery_date": "Delivered",
    "charge_name": "",
    "charge_note": "",
    "truck": "Truck",  # bill lines only
}
# Placeholders a prefix may use: the charge set number and anything about its load.
PREFIX_KEYS = frozenset({"n", "label"} | (set(DESCRIPTION_FIELDS) - {"charge_name", "charge_note"}))

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1 controls
_SPACES = re.compile(r"\s+")
_EMPTY_BRACKETS = re.compile(r"\(\s*\)|\[\s*\]")

# A parsed template or prefix: (literal text, placeholder name or None) pairs.
Parsed = list[tuple[str, str | None]]


@dataclass(frozen=True)
class LineDescription:
    charge_line: ChargeLine
    text: str
    truncated: bool


# --- parsing and validation -------------------------------------------------------------


def _parse(text: str, *, what: str) -> Parsed:
    """[(literal, placeholder or None)], refusing unbalanced braces and fancy formatting."""
    try:
        parts = list(Formatter().parse(text))
    except ValueError:
        raise ValidationError(
            f"The {what} has unbalanced braces: write placeholders as {{container}}, "
            "and a literal brace as {{ or }}."
        )
    parsed: Parsed = []
    for literal, name, spec, conversion in parts:
        if name is not None and (spec or conversion):
            raise ValidationError(
                f"The {what} placeholder {{{name}}} cannot have a format (':' or '!')."
            )
        parsed.append((literal, name))
    return parsed


def _unknown(names: Iterable[str], allowed: Collection[str]) -> list[str]:
    return sorted({n for n in names if n not in allowed})


def validate_mapping(*, fields: Iterable[str] | None, template: str = "", prefix: str = "") -> None:
    """Raise ValidationError naming every unknown field key or placeholder."""
    fields = list(fields or [])
    unknown = _unknown(fields, DESCRIPTION_FIELDS)
    if unknown:
        raise ValidationError(
            f"Unknown description field(s): {', '.join(unknown)}. "
            f"Choose from: {', '.join(DESCRIPTION_FIELDS)}."
        )
    if len(set(fields)) != len(fields):
        raise ValidationError("Each description field can be chosen only once.")
    if template:
        names = [name for _, name in _parse(template, what="template") if name is not None]
        unknown = _unknown(names, DESCRIPTION_FIELDS)
        if unknown:
            raise ValidationError(
                "Unknown placeholder(s) in the template: "
                f"{', '.join('{' + n + '}' for n in unknown)}. "
                f"Use: {', '.join('{' + k + '}' for k in DESCRIPTION_FIELDS)}."
            )
    if prefix:
        names = [name for _, name in _parse(prefix, what="prefix") if name is not None]
        unknown = _unknown(names, PREFIX_KEYS)
        if unknown:
            raise ValidationError(
                "Unknown placeholder(s) in the prefix: "
                f"{', '.join('{' + n + '}' for n in unknown)}. "
                "Use {n} (charge set number), {label}, {load}, {container}, {po}…"
            )


# --- rendering ---------------------------------------------------------------------------


def _date(value: date | None) -> str:
    return value.strftime("%m/%d/%Y") if value else ""


def _load_values(load: Load) -> dict[str, str]:
    return {
        "container": load.container_number,
        "load": load.load_number,
        "po": load.po_number,
        "reference": load.reference_number,
        "bol": load.bol_number,
        "pickup": load.pickup_location,
        "delivery": load.delivery_location,
        "pickup_date": _date(load.pickup_date),
        "delivery_date": _date(load.delivery_date),
    }


def _clean(text: str) -> str:
    return _SPACES.sub(" ", _CONTROL.sub(" ", text or "")).strip()


def _substitute(parsed: Parsed, values: dict[str, str]) -> str:
    return "".join(literal + (values.get(name, "") if name else "") for literal, name in parsed)


def _segments(parsed: Parsed, sep: str) -> list[Parsed]:
    """Split a parsed template at the separator, in literal text only: a separator that also
    occurs inside a placeholder or a brace ("{", "o") must not cut the placeholder in two."""
    segments: list[Parsed] = [[]]
    for literal, name in parsed:
        for i, piece in enumerate(literal.split(sep) if sep else [literal]):
            if i:
                segments.append([])
            if piece:
                segments[-1].append((piece, None))
        if name is not None:
            segments[-1].append(("", name))
    return segments


def _render_template(template: str, separator: str, values: dict[str, str]) -> str:
    sep = separator.strip()
    kept: list[str] = []
    for parsed in _segments(_parse(template, what="template"), sep):
        names = [name for _, name in parsed if name is not None]
        if names and not any(values.get(name) for name in names):
            continue  # every value of this segment is empty: drop it whole
        text = _clean(_substitute(parsed, values))
        if text:
            kept.append(text)
    return separator.join(kept) if sep else " ".join(kept)


def _render_fields(fields: Iterable[str], separator: str, values: dict[str, str]) -> str:
    pairs: list[str] = []
    for key in fields:
        value = values.get(key, "")
        if value:
            pairs.append(f"{LABELS[key]} {value}" if LABELS[key] else value)
    return separator.join(pairs)


def _render_prefix(prefix: str, values: dict[str, str]) -> str:
    text = _substitute(_parse(prefix, what="prefix"), values)
    text = _SPACES.sub(" ", _EMPTY_BRACKETS.sub("", _CONTROL.sub(" ", text)))
    # Keep the prefix's own trailing space ("Load 2: " + body), but never a double one.
    return text.lstrip()


def _finish(text: str) -> tuple[str, bool]:
    text = _clean(text)
    if len(text) <= MAX_LENGTH:
        return text, False
    return text[: MAX_LENGTH - len(TRUNCATION_MARKER)].rstrip() + TRUNCATION_MARKER, True


def _charge_sets(invoice: Invoice) -> list[ChargeSet]:
    """Sets with their loads, lines and charge codes. The sync engine loads a whole batch of
    invoices with these prefetched (sync.mappers.PREFETCH): use them rather than two more
    queries per invoice. Both relations are ordered by (position, id) in their Meta."""
    cached = getattr(invoice, "_prefetched_objects_cache", {}).get("charge_sets")
    if cached is not None and all(
        "lines" in getattr(cs, "_prefetched_objects_cache", {}) for cs in cached
    ):
        return list(cached)
    lines = ChargeLine.objects.select_related("charge_code").order_by("position", "id")
    return list(
        ChargeSet.objects.filter(invoice=invoice)
        .select_related("load")
        .prefetch_related(Prefetch("lines", queryset=lines))
        .order_by("position", "id")
    )


def _describe(
    *, invoice: Invoice, fields: Iterable[str], separator: str, prefix: str, template: str
) -> list[LineDescription]:
    charge_sets = _charge_sets(invoice)
    combined = len(charge_sets) > 1
    if not prefix and combined:
        one_load = len({cs.load_id for cs in charge_sets}) == 1
        prefix = DEFAULT_SPLIT_PREFIX if one_load else DEFAULT_COMBINED_PREFIX
    separator = separator if separator else " "
    result: list[LineDescription] = []
    for number, charge_set in enumerate(charge_sets, start=1):
        load_values = {k: _clean(v) for k, v in _load_values(charge_set.load).items()}
        label = _clean(charge_set.label) or f"Part {number}"
        head = (
            _render_prefix(prefix, {**load_values, "n": str(number), "label": label})
            if prefix
            else ""
        )
        for line in charge_set.lines.all():
            values = {
                **load_values,
                "charge_name": _clean(line.charge_code.name),
                "charge_note": _clean(line.note),
            }
            if template:
                body = _render_template(template, separator, values)
            else:
                body = _render_fields(fields, separator, values)
            # A line never reads empty in QuickBooks: fall back to the charge's own name.
            body = body or values["charge_name"]
            text, truncated = _finish(head + body)
            result.append(LineDescription(charge_line=line, text=text, truncated=truncated))
    return result


def describe_invoice(*, invoice: Invoice, settings: FinanceSettings) -> list[LineDescription]:
    """One description per charge line, charge sets then lines in position order."""
    return _describe(
        invoice=invoice,
        fields=settings.description_fields or [],
        separator=settings.description_separator,
        prefix=settings.description_prefix,
        template=settings.description_template,
    )


def preview_descriptions(
    *, invoice: Invoice, fields: Iterable[str] | None, separator: str, prefix: str, template: str
) -> list[LineDescription]:
    """Same as `describe_invoice` for values not saved yet (the settings page's live preview).

    Raises ValidationError for a mapping that `validate_mapping` refuses."""
    validate_mapping(fields=fields, template=template, prefix=prefix)
    return _describe(
        invoice=invoice,
        fields=list(fields or []),
        separator=separator,
        prefix=prefix,
        template=template,
    )


def describe_bill_line(*, line: BillLine, settings: FinanceSettings) -> str:
    """A bill line's Description: the chosen bill fields (load #, container #, truck #…) as
    "Label value" pairs, else the pay code's name; cut at QuickBooks' limit, visibly."""
    values = {k: _clean(v) for k, v in _load_values(line.load).items()} if line.load else {}
    values |= {
        "container": _clean(line.container_number) or values.get("container", ""),
        "truck": _clean(line.truck_number),
        "charge_name": _clean(line.pay_code.name),
        "charge_note": _clean(line.note),
    }
    fields = [f for f in settings.bill_description_fields or [] if f in BILL_DESCRIPTION_FIELDS]
    body = _render_fields(fields, settings.description_separator or " ", values)
    text, _ = _finish(body or values["charge_name"])
    return text

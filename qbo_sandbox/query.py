"""QBO's query language: SELECT * | COUNT(*) | fields FROM X [WHERE a op v AND ...]
[ORDER BY|ORDERBY f [ASC|DESC], ...] [STARTPOSITION n] [MAXRESULTS n].

Conditions on denormalized columns (Id, DisplayName/Name, DocNumber, TxnDate, CustomerRef or
VendorRef, Active, MetaData times) run in the database; the rest are checked in Python over the
rows the indexed conditions leave.
"""

import re
from decimal import Decimal, InvalidOperation
from functools import partial

from . import faults
from .models import Entity
from .store import NAME_LIST, canonical_name, party_ref_field, render
from .timefmt import parse_qbo_datetime

TOKEN = re.compile(
    r"""\s*(?:
    (?P<str>'(?:\\.|''|[^'\\])*')
    |(?P<op><=|>=|!=|<>|=|<|>)
    |(?P<punct>[(),*])
    |(?P<word>[A-Za-z_][\w.]*)
    |(?P<num>-?\d+(?:\.\d+)?)
    )""",
    re.VERBOSE,
)
# Tokenized so the fault can name them; QBO's language has no "not equal" (shared/qbo-api.md).
UNSUPPORTED_OPERATORS = {"!=", "<>"}
KEYWORDS = {"select", "from", "where", "and", "order", "orderby", "by", "asc", "desc", "in",
            "like", "startposition", "maxresults", "count", "or", "not", "true", "false"}  # fmt: skip


def tokenize(sql):
    tokens, pos = [], 0
    sql = sql.strip().rstrip(";")
    while pos < len(sql):
        if sql[pos:].strip() == "":
            break
        match = TOKEN.match(sql, pos)
        if not match or match.end() == pos:
            raise faults.query_parse_error(f'Encountered " {sql[pos : pos + 10]!r} at column {pos}')
        pos = match.end()
        kind = match.lastgroup
        text = match.group(kind)
        if kind == "str":
            text = text[1:-1].replace("\\'", "'").replace("''", "'").replace("\\\\", "\\")
        if kind == "word" and text.lower() in KEYWORDS:
            kind, text = "kw", text.lower()
        tokens.append((kind, text))
    return tokens


class Parser:
    def __init__(self, sql):
        self.tokens = tokenize(sql)
        self.i = 0

    def peek(self, offset=0):
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else (None, None)

    def take(self, kind=None, text=None):
        tok = self.peek()
        if tok[0] is None or (kind and tok[0] != kind) or (text and tok[1] != text):
            want = text or kind
            raise faults.query_parse_error(f"Encountered {tok[1]!r}, was expecting {want}")
        self.i += 1
        return tok

    def accept(self, kind, text=None):
        tok = self.peek()
        if tok[0] == kind and (text is None or tok[1] == text):
            self.i += 1
            return tok
        return None

    def value(self):
        kind, text = self.peek()
        if kind == "str":
            self.i += 1
            return text
        if kind == "num":
            self.i += 1
            return Decimal(text)
        if kind == "kw" and text in ("true", "false"):
            self.i += 1
            return text == "true"
        if kind == "word":  # unquoted value, e.g. Active = true written oddly
            self.i += 1
            return text
        raise faults.query_parse_error(f"Encountered {text!r}, was expecting a value")

    def parse(self):
        self.take("kw", "select")
        count, fields = self.select_list()
        self.take("kw", "from")
        entity = canonical_name(self.take("word")[1])
        if entity is None:
            raise faults.query_parse_error("Invalid entity in FROM clause")
        where = self.where_clause()
        order = self.order_clause()
        start, limit = self.paging()
        if self.peek()[0] is not None:
            raise faults.query_parse_error(f"Encountered {self.peek()[1]!r} at end of query")
        return {"count": count, "fields": fields, "entity": entity, "where": where,
                "order": order, "start": max(start, 1), "limit": max(min(limit, 1000), 0)}  # fmt: skip

    def select_list(self):
        """COUNT(*), * (extra fields after it ignored: SELECT *, Sku FROM Item) or fields:
        (count, fields), fields None for all of them."""
        if self.accept("kw", "count"):
            self.take("punct", "(")
            self.take("punct", "*")
            self.take("punct", ")")
            return True, None
        if self.accept("punct", "*"):
            while self.accept("punct", ","):
                self.take("word")
            return False, None
        fields = [self.take("word")[1]]
        while self.accept("punct", ","):
            fields.append(self.take("word")[1])
        return False, fields

    def where_clause(self):
        where = []
        if self.accept("kw", "where"):
            where.append(self.condition())
            while self.accept("kw", "and"):
                where.append(self.condition())
            if self.peek() == ("kw", "or"):
                raise faults.query_parse_error("OR is not supported")
        return where

    def order_clause(self):
        """ORDER BY or ORDERBY (python-quickbooks writes both): [(field, descending)]."""
        order = []
        if self.accept("kw", "orderby") or (self.accept("kw", "order") and self.take("kw", "by")):
            while True:
                field = self.take("word")[1]
                desc = bool(self.accept("kw", "desc"))
                if not desc:
                    self.accept("kw", "asc")
                order.append((field, desc))
                if not self.accept("punct", ","):
                    break
        return order

    def paging(self):
        """STARTPOSITION and MAXRESULTS, either order: (start, limit), defaults (1, 100)."""
        start, limit = 1, 100
        for _ in range(2):
            if self.accept("kw", "startposition"):
                start = self.whole_number("STARTPOSITION")
            elif self.accept("kw", "maxresults"):
                limit = self.whole_number("MAXRESULTS")
        return start, limit

    def whole_number(self, clause):
        text = self.take("num")[1]
        if not text.lstrip("-").isdigit():
            raise faults.query_parse_error(f"Encountered {text!r}, {clause} takes a whole number")
        return int(text)

    def condition(self):
        field = self.take("word")[1]
        if self.accept("kw", "in"):
            self.take("punct", "(")
            values = [self.value()]
            while self.accept("punct", ","):
                values.append(self.value())
            self.take("punct", ")")
            return (field, "in", values)
        if self.accept("kw", "like"):
            return (field, "like", self.value())
        op = self.take("op")[1]
        if op in UNSUPPORTED_OPERATORS:
            raise faults.query_parse_error(f"Encountered {op!r}: operator is not supported")
        return (field, op, self.value())


class AnyOf(list):
    """The values a path takes through a list (AttachableRef.EntityRef.value over every
    reference): a condition holds when it holds for one of them."""


def get_path(data, field):
    value = data
    parts = field.split(".")
    for index, part in enumerate(parts):
        if isinstance(value, list):
            rest = ".".join(parts[index:])
            return AnyOf(v for v in (get_path(item, rest) for item in value) if v is not None)
        if not isinstance(value, dict):
            return None
        if part in value:
            value = value[part]
        else:  # field names are matched case-insensitively
            value = next((v for k, v in value.items() if k.lower() == part.lower()), None)
    if isinstance(value, dict) and "value" in value:  # CustomerRef = '12'
        value = value["value"]
    elif isinstance(value, dict) and "Address" in value:  # PrimaryEmailAddr = 'a@b.c'
        value = value["Address"]
    return value


def comparable(value):
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, int | float | Decimal):
        return (1, Decimal(str(value)))
    if value is None:
        return (3, "")
    text = str(value)
    try:
        return (1, Decimal(text))
    except InvalidOperation:
        pass
    when = parse_qbo_datetime(text) if re.match(r"^\d{4}-\d{2}-\d{2}", text) else None
    if when is not None:
        return (2, when.timestamp())
    return (4, text.casefold())


def _bool(value):
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() == "true"


def matches(row_value, op, value):
    if isinstance(row_value, AnyOf):
        return any(matches(v, op, value) for v in row_value)
    if op == "in":
        return any(matches(row_value, "=", v) for v in value)
    if op == "like":
        pattern = "^" + ".*".join(re.escape(p) for p in str(value).split("%")) + "$"
        return row_value is not None and re.match(pattern, str(row_value), re.I | re.S) is not None
    if isinstance(value, bool) or isinstance(row_value, bool):
        if op == "=":
            return _bool(row_value if row_value is not None else True) == _bool(value)
    if row_value is None:
        return False
    left, right = comparable(row_value), comparable(value)
    if left[0] != right[0]:
        left, right = (4, str(row_value).casefold()), (4, str(value).casefold())
    return {
        "=": left == right,
        "<": left < right,
        ">": left > right,
        "<=": left <= right,
        ">=": left >= right,
    }[op]


COLUMN_FIELDS = {name.lower(): name for name in (
    "Id", "DisplayName", "Name", "DocNumber", "CustomerRef", "VendorRef", "Active", "TxnDate",
    "MetaData.LastUpdatedTime", "MetaData.CreateTime",
)}  # fmt: skip


LOOKUPS = {"=": "", "<": "__lt", ">": "__gt", "<=": "__lte", ">=": "__gte", "in": "__in"}
DB_ORDER = {"Id": "qbo_id", "MetaData.LastUpdatedTime": "updated", "MetaData.CreateTime": "created",
            "TxnDate": "txn_date", "DocNumber": "doc_number"}  # fmt: skip


def _converted(op, value, convert):
    return [convert(v) for v in value] if op == "in" else convert(value)


def _filter_id(qs, op, value):
    try:
        qbo_id = _converted(op, value, int)
    except (TypeError, ValueError):
        return qs.none(), True  # Id = 'abc' matches nothing
    return qs.filter(**{"qbo_id" + LOOKUPS[op]: qbo_id}), True


def _filter_name(qs, op, value):
    if op not in ("=", "in"):
        return qs, False
    key = _converted(op, value, lambda v: str(v).strip().casefold())
    return qs.filter(**{"name_key" + LOOKUPS[op]: key}), False  # python re-checks the field


def _filter_text(column, qs, op, value):
    if op not in ("=", "in"):
        return qs, False
    return qs.filter(**{column + LOOKUPS[op]: _converted(op, value, str)}), True


def _filter_txn_date(qs, op, value):
    when = parse_qbo_datetime(value) if op != "in" and isinstance(value, str) else None
    if when is None:
        return qs, False
    return qs.filter(**{"txn_date" + LOOKUPS[op]: when.date()}), True


def _filter_timestamp(column, qs, op, value):
    when = parse_qbo_datetime(value) if op != "in" else None
    if when is None:
        return qs, False
    return qs.filter(**{column + LOOKUPS[op]: when}), False


# Indexed columns (models.Entity) a condition on the field can use; Active is run_query's own.
COLUMN_FILTERS = {
    "Id": _filter_id,
    "DisplayName": _filter_name,
    "Name": _filter_name,
    "DocNumber": partial(_filter_text, "doc_number"),
    "CustomerRef": partial(_filter_text, "customer_ref"),
    "VendorRef": partial(_filter_text, "customer_ref"),
    "TxnDate": _filter_txn_date,
    "MetaData.LastUpdatedTime": partial(_filter_timestamp, "updated"),
    "MetaData.CreateTime": partial(_filter_timestamp, "created"),
}


PARTY_FIELDS = ("CustomerRef", "VendorRef")


def _db_filter(qs, entity_type, field, op, value):
    """Narrow the queryset for conditions on indexed columns; return (qs, handled), handled
    meaning the database answered the condition exactly (otherwise Python checks it again).
    The customer_ref column holds one party per entity type (store.party_ref_field): CustomerRef
    on a bill, say, is not in it."""
    name = COLUMN_FIELDS.get(field.lower(), field)
    if name in PARTY_FIELDS and name != party_ref_field(entity_type):
        return qs, False
    column_filter = COLUMN_FILTERS.get(name)
    if column_filter is None or op not in LOOKUPS:
        return qs, False
    return column_filter(qs, op, value)


def _active_flags(op, value):
    values = value if op == "in" else [value]
    return list({_bool(v) for v in values})


def _narrow(company, entity_type, where):
    """The rows the database can select, and the conditions Python must still check."""
    qs = Entity.objects.filter(company=company, entity_type=entity_type, deleted=False)
    pending = []
    active_condition = False
    for field, op, value in where:
        if field.lower() == "active":
            active_condition = True
            qs = qs.filter(active__in=_active_flags(op, value))
            continue
        qs, handled = _db_filter(qs, entity_type, field, op, value)
        if not handled:
            pending.append((field, op, value))
    if entity_type in NAME_LIST and not active_condition:
        qs = qs.filter(active=True)  # inactive name-list objects only when asked for
    return qs, pending


def _matching(qs, pending):
    return [
        e for e in qs.iterator(chunk_size=2000)
        if all(matches(get_path(_with_id(e), f), op, v) for f, op, v in pending)
    ]  # fmt: skip


def _page_in_db(qs, order, page):
    ordering = [("-" if desc else "") + DB_ORDER[f] for f, desc in order] + ["qbo_id"]
    return list(qs.order_by(*ordering)[page])


def _page_in_python(qs, pending, order, page):
    rows = _matching(qs, pending)
    for field, desc in reversed(order):  # stable sorts, last key first
        rows.sort(key=lambda e, f=field: _sort_key(get_path(_with_id(e), f)), reverse=desc)
    return rows[page]


def run_query(company, sql):
    query = Parser(sql).parse()
    qs, pending = _narrow(company, query["entity"], query["where"])
    order = [(COLUMN_FIELDS.get(f.lower(), f), d) for f, d in query["order"]] or [("Id", False)]
    # The database does it all when every condition and sort key is on a column.
    in_db = not pending and all(f in DB_ORDER for f, _ in order)
    if query["count"]:
        total = qs.count() if in_db else len(_matching(qs, pending))
        return {"QueryResponse": {"totalCount": total}}
    page = slice(query["start"] - 1, query["start"] - 1 + query["limit"])
    rows = _page_in_db(qs, order, page) if in_db else _page_in_python(qs, pending, order, page)
    return _query_response(query, rows)


def _query_response(query, rows):
    """maxResults is the number of rows returned; no row at all is an empty QueryResponse."""
    if not rows:
        return {"QueryResponse": {}}
    objects = [render(e) for e in rows]
    if query["fields"]:
        objects = [_project(o, query["fields"]) for o in objects]
    return {
        "QueryResponse": {
            query["entity"]: objects,
            "startPosition": query["start"],
            "maxResults": len(objects),
        }
    }


def _with_id(entity):
    data = dict(entity.data)
    data["Id"] = entity.qbo_id
    data["SyncToken"] = entity.sync_token
    data["MetaData"] = {
        "LastUpdatedTime": entity.updated.isoformat(),
        "CreateTime": entity.created.isoformat(),
    }
    return data


def _sort_key(value):
    return comparable(value)


def _project(obj, fields):
    out = {f: obj[f] for f in fields if f in obj}
    out.update({"domain": "QBO", "sparse": True, "Id": obj["Id"]})
    if "SyncToken" in obj:
        out["SyncToken"] = obj["SyncToken"]
    return out

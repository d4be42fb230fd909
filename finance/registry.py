"""Which finance models sync, keyed by their sync type (used by sync/, admin and the UI)."""

from finance.models import ChargeCode, CreditMemo, Customer, Invoice, Payment

SYNCED_MODELS = {
    "customer": Customer,
    "item": ChargeCode,
    "invoice": Invoice,
    "creditmemo": CreditMemo,
    "payment": Payment,
}
# Dependency order: customers → items → invoices and credit memos → payments.
SYNC_ORDER = ["customer", "item", "invoice", "creditmemo", "payment"]


def model_for(sync_type: str):
    try:
        return SYNCED_MODELS[sync_type]
    except KeyError:
        raise ValueError(f"unknown record type {sync_type!r}") from None

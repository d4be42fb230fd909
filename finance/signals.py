from django.dispatch import Signal

# Sent after commit with `records=[(sync_type, pk), ...]` for records newly owed to QuickBooks,
# and `company_ids`, the tenants they belong to.
# finance never imports sync: sync listens and decides whether to push now.
records_changed = Signal()

# Sent after commit when many records became due at once (a record type switched on again):
# sync runs a sweep rather than one push per record.
sweep_wanted = Signal()

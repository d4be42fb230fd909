from django.db import migrations


class Migration(migrations.Migration):
    """Emptied: it created the Problem Sync index with NULLS LAST, which SQLite refuses
    ("unsupported use of NULLS LAST"), so the embedded default could not migrate. 0004 drops
    that index where it was created (PostgreSQL) and adds one that works on both."""

    dependencies = [
        ('finance', '0002_create_uncertain'),
    ]

    operations = []

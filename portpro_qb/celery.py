import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portpro_qb.settings")

app = Celery("portpro_qb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

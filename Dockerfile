FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VAR_DIR=/app/var

WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Static files are collected once, at build time (whitenoise serves them).
RUN DEBUG=0 python manage.py collectstatic --noinput \
    && useradd --system --uid 1000 --home /app portpro \
    && mkdir -p /app/var \
    && chown -R portpro /app/var

USER portpro
EXPOSE 8000
CMD ["gunicorn", "portpro_qb.wsgi", "-b", "0.0.0.0:8000", "-w", "3"]

#!/usr/bin/env bash
# `make demo`: migrate, seed, and run web + Celery worker + Celery beat on embedded defaults
# (SQLite, a filesystem broker, the built-in QuickBooks emulator) under a supervisor that
# restarts whatever dies (portpro_qb/supervise.py). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

export PORT="${PORT:-8000}"
export VAR_DIR="${VAR_DIR:-$PWD/var}"
export DEBUG="${DEBUG:-1}"
export QBO_SANDBOX_ENABLED="${QBO_SANDBOX_ENABLED:-1}"
export QBO_ENVIRONMENT="${QBO_ENVIRONMENT:-local}"
export QBO_LOCAL_BASE_URL="${QBO_LOCAL_BASE_URL:-http://127.0.0.1:$PORT/qbo-sandbox}"
export QBO_REDIRECT_URI="${QBO_REDIRECT_URI:-http://127.0.0.1:$PORT/quickbooks/callback/}"
export ALLOWED_HOSTS="${ALLOWED_HOSTS:-127.0.0.1,localhost}"
export SITE_URL="${SITE_URL:-http://127.0.0.1:$PORT}"  # alerts' links
PY=.venv/bin/python
mkdir -p "$VAR_DIR/broker/queue" "$VAR_DIR/broker/control" "$VAR_DIR/logs"

$PY manage.py migrate --noinput -v0
export DEMO_TENANT_2="${DEMO_TENANT_2:-Bayou Drayage LLC}"
$PY manage.py seed_demo --with-users
# A second trucking company: its own finance login, data and QuickBooks company (supervise.py
# connects it); the demo's finance user belongs to both and switches with the company menu.
$PY manage.py tenant_create --name "$DEMO_TENANT_2" --finance-user bayou:bayou
$PY manage.py seed_demo --company "$DEMO_TENANT_2" --invoices 60 --seed 7 --with-users
# Alerts: the finance user gets both companies' digests and immediate alerts, written as files
# in $VAR_DIR/mail (no SMTP in the demo; set EMAIL_HOST to send them).
$PY manage.py alerts_subscribe finance
exec $PY -m portpro_qb.supervise demo

#!/usr/bin/env bash
# `make demo`: migrate, seed, and run web + Celery worker + Celery beat on embedded defaults
# (SQLite, a filesystem broker, the built-in QuickBooks emulator). Ctrl-C stops everything.
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
PY=.venv/bin/python
mkdir -p "$VAR_DIR/broker/queue" "$VAR_DIR/broker/control" "$VAR_DIR/logs"

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

$PY manage.py migrate --noinput -v0
$PY manage.py seed_demo --with-users

.venv/bin/gunicorn portpro_qb.wsgi -b "127.0.0.1:$PORT" -w 2 --threads 8 --timeout 120 \
  --access-logfile "$VAR_DIR/logs/web-access.log" >>"$VAR_DIR/logs/web.log" 2>&1 &
pids+=($!)
for _ in $(seq 60); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.5
done

if ! $PY manage.py shell -v 0 -c "from sync.models import QuickBooksConnection as C; import sys; sys.exit(0 if C.objects.filter(status='connected').exists() else 1)"; then
  $PY manage.py connect_sandbox --demo-conflicts
fi

.venv/bin/celery -A portpro_qb worker -P prefork -c 2 -l INFO >>"$VAR_DIR/logs/worker.log" 2>&1 &
pids+=($!)
.venv/bin/celery -A portpro_qb beat -l INFO --scheduler django_celery_beat.schedulers:DatabaseScheduler \
  --pidfile= >>"$VAR_DIR/logs/beat.log" 2>&1 &
pids+=($!)

cat <<MSG

  portpro-qb is running at http://127.0.0.1:$PORT
    Finance user:  finance / finance     (Problem Sync, Finance settings, QuickBooks connection)
    Support user:  support / support     (Django admin, QuickBooks ID area)
    Superuser:     admin / admin
  QuickBooks emulator: http://127.0.0.1:$PORT/qbo-sandbox/
  Logs: $VAR_DIR/logs/   Stop: Ctrl-C

MSG
wait -n "${pids[@]}"

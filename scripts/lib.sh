# Shared by scripts/run.sh and scripts/test.sh: idempotent set-up steps for a fresh machine.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_venv() {
  # ensure_venv [dev]: dbkeep and what running it needs; with "dev", the test tools too.
  local extras="${1:-}" spec="$ROOT"
  [ -n "$extras" ] && spec="$ROOT[$extras]"
  local hash; hash="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
  local stamp="$VENV/.installed-${extras:-run}-$hash"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating the virtual environment in .venv"
    "$PY" -m venv "$VENV"
  fi
  # A dev install includes everything running needs.
  if [ ! -f "$stamp" ] && [ ! -f "$VENV/.installed-dev-$hash" ]; then
    log "installing dbkeep${extras:+ with its $extras tools} into .venv"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q -e "$spec"
    rm -f "$VENV"/.installed-"${extras:-run}"-*
    touch "$stamp"
  fi
}

apt_install() {
  # Installs Debian packages that are missing; quiet when everything is there already.
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} (apt-get)"
  if [ "$(id -u)" -ne 0 ]; then
    echo "need root to install ${missing[*]}; run: sudo apt-get install -y ${missing[*]}" >&2
    return 1
  fi
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

wait_for() { # wait_for SECONDS command...
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.5
  done
}

ensure_mariadb() {
  if mariadb-admin --protocol=socket -uroot ping >/dev/null 2>&1; then return 0; fi
  log "starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  wait_for 60 mariadb-admin --protocol=socket -uroot ping || { echo "MariaDB did not start" >&2; return 1; }
}

ensure_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return 0; fi
  log "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for 30 redis-cli -h 127.0.0.1 -p 6379 ping || { echo "Redis did not start" >&2; return 1; }
}

ensure_postgres() {
  if pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then return 0; fi
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  wait_for 60 pg_isready -h 127.0.0.1 -p 5432
}

ensure_frontend_deps() {
  local lock="$ROOT/frontend/package-lock.json"
  [ -f "$lock" ] || return 0
  local stamp="$ROOT/frontend/node_modules/.installed-$(sha256sum "$lock" | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    log "installing the dashboard's dependencies (npm ci)"
    (cd "$ROOT/frontend" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    touch "$stamp"
  fi
}

ensure_frontend_built() {
  [ -f "$ROOT/frontend/package.json" ] || return 0
  local newest_src dist="$ROOT/frontend/dist/index.html"
  newest_src=$(find "$ROOT/frontend/src" "$ROOT/frontend/index.html" "$ROOT/frontend/package-lock.json" \
    -type f -newer "$dist" 2>/dev/null | head -n1 || true)
  if [ ! -f "$dist" ] || [ -n "$newest_src" ]; then
    ensure_frontend_deps
    log "building the dashboard"
    (cd "$ROOT/frontend" && npm run build --silent)
  fi
}

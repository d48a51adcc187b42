# syntax=docker/dockerfile:1
#
# dbkeep: one image for the API + dashboard (`dbkeep serve`) and for workers (`dbkeep worker`).
#   docker build -t dbkeep .
#   docker run -p 8000:8000 -v dbkeep-data:/data -e DBKEEP_SECRET_KEY=$(openssl rand -base64 48) \
#     -e DBKEEP_ENCRYPTION_KEY=...  (make one: docker run --rm dbkeep dbkeep key:generate; keep it) \
#     -e DBKEEP_TARGET_URL=mysql://backup:secret@db-host:3306/shop \
#     -e DBKEEP_ADMIN_EMAIL=admin@example.com -e DBKEEP_ADMIN_PASSWORD=... dbkeep
# Alone, it keeps its metadata in SQLite under /data and starts a private Redis (redis-server is
# installed); compose.yaml shows the scale-out layout (Redis, MariaDB, API and workers apart).

# ---- 1. the dashboard: a static build of frontend/ -------------------------------------------
FROM node:20-bookworm-slim AS frontend
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

# ---- 2. the Python environment ---------------------------------------------------------------
FROM python:3.11-slim-bookworm AS python
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY pyproject.toml README.md ./
COPY app/ app/
# Editable, so the package runs from /app where migrations/ and frontend/dist sit beside it.
RUN pip install -e .

# ---- 3. the runtime image --------------------------------------------------------------------
FROM python:3.11-slim-bookworm
# mariadb-client: mariadb-dump and mariadb for backups and restores; zstd: fast (de)compression;
# redis-server: the private queue `dbkeep serve` starts when no Redis is configured;
# util-linux (in the base image) provides setpriv, which ties dump processes to their worker.
RUN apt-get update \
    && apt-get install -y --no-install-recommends mariadb-client zstd redis-server tini \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin dbkeep \
    && mkdir -p /data/backups && chown -R dbkeep:dbkeep /data && chmod 0700 /data /data/backups

COPY --from=python /opt/venv /opt/venv
WORKDIR /app
COPY --from=python /app /app
COPY alembic.ini ./
COPY migrations/ migrations/
COPY --from=frontend /src/frontend/dist frontend/dist

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DBKEEP_ENV=prod \
    DBKEEP_HOST=0.0.0.0 \
    DBKEEP_PORT=8000 \
    DBKEEP_VAR_DIR=/data \
    DBKEEP_BACKUP_DIR=/data/backups \
    DBKEEP_DATABASE_URL=sqlite+aiosqlite:////data/dbkeep.sqlite3 \
    DBKEEP_LOG_FORMAT=json

USER dbkeep
VOLUME ["/data"]
EXPOSE 8000
# tini forwards SIGTERM to dbkeep, which lets running jobs clean up (kill dumps, re-queue).
ENTRYPOINT ["tini", "--"]
CMD ["sh", "-c", "dbkeep migrate && exec dbkeep serve"]

"""``postgresql://user:password@host:5432/db?sslmode=require`` → ``TargetSpec``.

Only the libpq options listed in ``LIBPQ_OPTIONS`` are taken from the query (they reach the tools
as environment variables, never argv); dbkeep's own restore options (``no_owner``,
``no_privileges``) ride in the same query and are read by the engine, never passed to libpq.
``?host=/var/run/postgresql`` connects over a Unix socket directory.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

from app.engines.base import TargetSpec, validate_database_name

DEFAULT_PORT = 5432
# query option -> the libpq environment variable that carries it.
LIBPQ_OPTIONS = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}
SSL_MODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})
# dbkeep's restore options: pg_restore --no-owner / --no-privileges when true.
RESTORE_OPTIONS = frozenset({"no_owner", "no_privileges"})
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def parse_postgres_url(url: str, *, database: str | None = None) -> TargetSpec:
    """Parse a ``postgresql://`` (or ``postgres://``) URL; ``database`` names the database when
    the URL names none (a server-wide source). ``ValueError`` says what is wrong (never the
    password)."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in {"postgresql", "postgres"}:
        raise ValueError(f"unsupported target scheme {scheme!r}: use postgresql://")
    database = database or unquote(parts.path.lstrip("/"))
    if not database:
        raise ValueError("the target URL must name a database, e.g. postgresql://user@host/shop")
    params: list[tuple[str, str]] = []
    socket: str | None = None
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name == "host":
            if not value.startswith("/"):
                raise ValueError("?host= must be a Unix socket directory (an absolute path)")
            socket = value
        elif name == "sslmode":
            if value not in SSL_MODES:
                raise ValueError(f"sslmode must be one of {', '.join(sorted(SSL_MODES))}")
            params.append((name, value))
        elif name in RESTORE_OPTIONS:
            if value.lower() not in _TRUE | _FALSE:
                raise ValueError(f"{name} must be true or false")
            params.append((name, "true" if value.lower() in _TRUE else "false"))
        elif name in LIBPQ_OPTIONS:
            if "\n" in value or "\0" in value:
                raise ValueError(f"{name} must be a single line")
            params.append((name, value))
        else:
            known = ", ".join(sorted({"host", *LIBPQ_OPTIONS, *RESTORE_OPTIONS}))
            raise ValueError(f"unknown option {name!r} in the URL (known: {known})")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535") from None
    return TargetSpec(
        scheme="postgresql",
        host=parts.hostname or "127.0.0.1",
        port=port,
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""),
        database=validate_database_name(database),
        socket=socket,
        params=tuple(params),
    )


def option(target: TargetSpec, name: str) -> str | None:
    """The value of a query option of ``target``'s URL, or None."""
    for key, value in target.params:
        if key == name:
            return value
    return None


def flag(target: TargetSpec, name: str) -> bool:
    return option(target, name) == "true"

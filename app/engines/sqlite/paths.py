"""``sqlite:///absolute/path/to/file.db``: the file a SQLite source names, and its database name.

A SQLite source is one file, so it has one database, named after the file's stem (``shop.db`` ->
``shop``; characters a database name can't hold become ``_``). Messages never repeat the path:
it shows only as part of the source's own URL.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from app.engines.base import TargetSpec

_NOT_NAME = re.compile(r"[^A-Za-z0-9_$-]")


def sqlite_path_of(url: str) -> str:
    """The absolute file path of a ``sqlite:///…`` URL; ``ValueError`` (never echoing the
    path) for a relative one, one with ``..``, a host, a query or no file name."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise ValueError("a SQLite URL starts with sqlite:///")
    if parts.netloc:
        raise ValueError(
            "the SQLite path must be absolute: sqlite:///absolute/path/to/file.db (three slashes)"
        )
    if parts.query or parts.fragment:
        raise ValueError("a SQLite URL takes no options (?…) or fragment (#…)")
    path = unquote(parts.path)
    if "\x00" in path:
        raise ValueError("the SQLite path holds a NUL character")
    if not path.startswith("/") or path.startswith("//"):
        raise ValueError("the SQLite path must be absolute: sqlite:///absolute/path/to/file.db")
    pure = PurePosixPath(path)
    if any(part in {"..", "."} for part in path.split("/")[1:]):
        raise ValueError("the SQLite path must not contain '.' or '..' components")
    if path.endswith("/") or not pure.name:
        raise ValueError("the SQLite path must name a file, not a directory")
    return str(pure)


def database_name_of(path: str) -> str:
    """The database name a SQLite file is shown under: its stem, made a valid name."""
    stem = PurePosixPath(path).stem or PurePosixPath(path).name
    name = _NOT_NAME.sub("_", stem)[:64] or "sqlite"
    return "_" + name[1:] if name.startswith("-") else name


def sqlite_target(url: str) -> TargetSpec:
    """The target of a SQLite URL: the file's path, the database named after its stem."""
    path = sqlite_path_of(url)
    return TargetSpec(
        scheme="sqlite", host="", port=0, user="", database=database_name_of(path), path=path
    )


def sqlite_directory_of(url: str) -> str:
    """The absolute directory a ``sqlite:///dir/`` URL names (a SQLite source's verify_url:
    where scratch files go); ``ValueError`` (never echoing the path) otherwise."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parts.scheme != "sqlite" or parts.netloc or parts.query or parts.fragment:
        raise ValueError("a SQLite scratch directory is given as sqlite:///absolute/dir/")
    if not path.startswith("/") or path.startswith("//") or "\x00" in path:
        raise ValueError("the SQLite scratch directory must be absolute: sqlite:///absolute/dir/")
    if any(part in {"..", "."} for part in path.split("/")[1:-1]) or not path.endswith("/"):
        raise ValueError("the SQLite scratch directory must end with '/' and hold no '.' or '..'")
    return str(PurePosixPath(path))


def sqlite_scratch_target(directory: str, name: str) -> TargetSpec:
    """The scratch file ``<directory>/<name>.sqlite`` (a verification's), named ``name``."""
    path = str(PurePosixPath(directory) / f"{name}.sqlite")
    return TargetSpec(scheme="sqlite", host="", port=0, user="", database=name, path=path)

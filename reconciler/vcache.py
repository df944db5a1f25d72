"""A content-addressed cache of each file's parse and schema result, like ruff's or mypy's.

Most of the time of `dfr validate`, `plan` and `apply` over thousands of
manifests goes into composing YAML and checking the JSON Schema, for files
that have not changed since the last run. This cache remembers, per file
content, what those two steps found, so an unchanged file is read (its bytes
are the key) but not parsed again.

Key: BLAKE2b of a salt, the file's strictness (named on the command line or
found in a directory), the models dfr.yaml allows beyond the schema's
(`extra_models`: they change what is valid and what warns) and the file's
bytes. The salt covers dfr's version, the bundled manifest schema, the
source of every module whose code decides a file's result (yamlsafe,
manifests, matching, validate, schema, this one), and the versions of Python, PyYAML
and jsonschema: a new release, a new schema, an upgraded library, an edited
checkout or an edited `extra_models` never reads an old answer.

Value: only clean outcomes are kept: a file whose every document parsed and
is either a valid manifest (name, spec, labels, place) or, in a directory, a
document skipped as not a manifest, with no error and no warning. A file with
any diagnostic is read afresh every time (it needs positions anyway).

Trusted for nothing else: discovery, reading the bytes, the uniqueness of
names across files, the project's policy (on the document, parsed again only
when a check needs a place to point at) and everything after run every time.

Storage: `$DFR_CACHE_DIR`, else `$XDG_CACHE_HOME/dfr`, else `~/.cache/dfr`,
in 256 shard files `validate-v1/XX.json` (the first byte of the key), each
replaced atomically (temporary file and rename), at most `MAX_PER_SHARD`
entries (the oldest go first). The directory must belong to the user and not
be writable by others, and so must each shard, since an entry decides what is
submitted: otherwise the cache is not used. A shard that cannot be read or
has the wrong shape is ignored (and replaced on the next write); a failure to
write is ignored. `--no-cache` or `DFR_NO_CACHE=1` turns it off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

from reconciler.cachefile import read_entries, write_entries

__all__ = ["ENTRY_VERSION", "MAX_PER_SHARD", "ValidationCache", "cache_dir", "open_cache"]

ENTRY_VERSION = 1
MAX_PER_SHARD = 2_000
_SUBDIR = f"validate-v{ENTRY_VERSION}"
SCHEMA_NAME = "generation-run.schema.json"
#: Modules whose source decides what a file's parse and schema check give.
_DECIDING_MODULES = (
    "yamlsafe",
    "manifests",
    "matching",
    "validate",
    "schema",
    "vcache",
    "outputs_check",
    "outputs_rules",
)
#: Libraries whose version may change what a file gives (the parser, the validator).
_DECIDING_LIBRARIES = ("PyYAML", "jsonschema", "referencing")

#: A cached manifest: name, spec, labels, line, column (of metadata.name), document index,
#: and its outputs/evaluate sections (`reconciler.outputs_check.cache_form`).
Entry = dict[str, Any]


def cache_dir(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    explicit = env.get("DFR_CACHE_DIR", "").strip()
    if explicit:
        return Path(explicit)
    xdg = env.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "dfr"


def open_cache(*, disabled: bool = False) -> ValidationCache | None:
    """The cache for a command: None when `disabled` (`--no-cache` or DFR_NO_CACHE,
    resolved by `reconciler.invocation`) or when unusable."""
    if disabled:
        return None
    return ValidationCache.open(cache_dir())


def salt() -> bytes | None:
    """What the results depend on besides the file; None if it cannot be known."""
    from importlib import resources

    from reconciler import __version__

    h = hashlib.blake2b(digest_size=16)
    h.update(f"dfr {__version__} entry {ENTRY_VERSION} python {sys.version}\0".encode())
    try:
        from importlib.metadata import PackageNotFoundError, version

        for dist in _DECIDING_LIBRARIES:
            h.update(f"{dist} {version(dist)}\0".encode())
    except (ImportError, PackageNotFoundError):
        return None
    try:
        schema = resources.files("reconciler").joinpath("schemas").joinpath(SCHEMA_NAME)
        h.update(schema.read_bytes())
        package = Path(__file__).resolve().parent
        for name in _DECIDING_MODULES:
            h.update(b"\0" + name.encode() + b"\0")
            h.update((package / f"{name}.py").read_bytes())
    except OSError:
        return None  # installed without sources: no way to tell versions apart safely
    return h.digest()


def _private_dir(path: Path) -> bool:
    """Ours and not writable by anyone else (or created so just now)."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.stat(path)
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


class ValidationCache:
    """Load shards on demand, remember new entries, write the changed shards on `flush`."""

    def __init__(self, folder: Path, salt: bytes) -> None:
        self.folder = folder
        self._salt = salt
        self._shards: dict[str, dict[str, Any]] = {}
        self._dirty: set[str] = set()
        self.hits = 0
        self.misses = 0

    @classmethod
    def open(cls, root: Path) -> ValidationCache | None:
        """A cache under `root`, or None when it cannot be used safely."""
        key_salt = salt()
        folder = root / _SUBDIR
        if key_salt is None or not _private_dir(root) or not _private_dir(folder):
            return None
        return cls(folder, key_salt)

    def key(self, data: bytes, strict: bool, extra_models: Iterable[str] = ()) -> str:
        """The entry's key for a file's bytes, its strictness and dfr.yaml's extra models."""
        h = hashlib.blake2b(self._salt, digest_size=20)
        h.update(b"S" if strict else b"L")
        # A JSON array ends where it ends: no list of models and bytes can pass for another.
        h.update(json.dumps(sorted(set(extra_models)), ensure_ascii=True).encode())
        h.update(data)
        return h.hexdigest()

    def get(self, key: str) -> Entry | None:
        entry = self._shard(key[:2]).get(key)
        if _well_formed(entry):
            self.hits += 1
            return cast(Entry, entry)
        self.misses += 1
        return None

    def has(self, key: str) -> bool:
        """Whether the key has an entry (not counted; `get` may still find it damaged)."""
        return key in self._shard(key[:2])

    def put(self, key: str, entry: Entry) -> None:
        shard = self._shard(key[:2])
        shard.pop(key, None)
        shard[key] = entry
        while len(shard) > MAX_PER_SHARD:
            del shard[next(iter(shard))]
        self._dirty.add(key[:2])

    def flush(self) -> None:
        """Write the shards that gained entries; failures are ignored (it is a cache)."""
        for name in sorted(self._dirty):
            with contextlib.suppress(OSError, TypeError, ValueError):
                path = self.folder / f"{name}.json"
                write_entries(path, ENTRY_VERSION, self._shards[name], prefix=f".{name}-")
        self._dirty.clear()

    def _shard(self, name: str) -> dict[str, Any]:
        shard = self._shards.get(name)
        if shard is None:
            path = self.folder / f"{name}.json"
            shard = read_entries(path, ENTRY_VERSION, refuse_shared=True)
            self._shards[name] = shard
        return shard


def _well_formed(entry: Any) -> bool:
    """The shape `validate` stores; anything else is a miss (a damaged or foreign entry)."""
    if not isinstance(entry, dict):
        return False
    documents, skipped, manifests = entry.get("d"), entry.get("s"), entry.get("m")
    if not (
        isinstance(documents, int) and isinstance(skipped, int) and isinstance(manifests, list)
    ):
        return False
    if documents != skipped + len(manifests):
        return False
    return all(_manifest_ok(m) for m in manifests)


def _manifest_ok(m: Any) -> bool:
    return (
        isinstance(m, list)
        and len(m) == 7
        and isinstance(m[0], str)
        and isinstance(m[1], dict)
        and isinstance(m[2], dict)
        and all(isinstance(v, str) for v in m[2].values())
        and all(isinstance(n, int) and not isinstance(n, bool) for n in m[3:6])
        and _sections_ok(m[6])
    )


def _sections_ok(sections: Any) -> bool:
    from reconciler.outputs_check import cache_ok

    return cache_ok(sections)


def entry(documents: int, skipped: int, manifests: Iterable[list[Any]]) -> Entry:
    return {"d": documents, "s": skipped, "m": list(manifests)}

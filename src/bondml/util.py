"""Small shared helpers: atomic writes, content hashes, JSON, version info."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + fsync + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write text atomically (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    if hasattr(o, "to_dict"):
        return o.to_dict()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def to_json(obj: Any, indent: int | None = 2) -> str:
    """JSON text with numpy types handled and keys sorted (stable for hashing)."""
    return json.dumps(obj, default=_json_default, indent=indent, sort_keys=True)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as JSON atomically."""
    atomic_write_text(path, to_json(obj) + "\n")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's content."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            b = fh.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    """Content hash of a JSON-serialisable object (canonical form: sorted keys, no spaces)."""
    return sha256_bytes(to_json(obj, indent=None).encode("utf-8"))


def sha256_arrays(arrays: Iterable[np.ndarray]) -> str:
    """Content hash of a sequence of arrays (dtype, shape and bytes)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        if a.dtype == object:
            h.update("\x00".join(map(str, a.ravel())).encode())
        else:
            h.update(a.tobytes())
    return h.hexdigest()


def code_version() -> dict[str, str]:
    """bondml version and, when run from a git checkout, the commit."""
    from ._version import __version__

    info = {"bondml": __version__}
    try:
        import subprocess

        root = Path(__file__).resolve().parents[2]
        if (root / ".git").exists():
            out = subprocess.run(
                ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                capture_output=True, text=True, timeout=5,
            )
            if out.returncode == 0:
                info["git"] = out.stdout.strip()
    except Exception:  # noqa: BLE001 - version info is best effort
        pass
    return info


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def pid_lock(lock: str | Path, busy: Callable[[int], Exception]) -> Iterator[None]:
    """Exclusive lock file holding our pid; a lock left by a dead (killed) process is taken over.

    ``busy(pid)`` builds the one-line error raised when a live process holds the lock.
    """
    lock = Path(lock)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and pid != os.getpid() and _pid_alive(pid):
                raise busy(pid) from None
            lock.unlink(missing_ok=True)
    else:  # pragma: no cover - lost the race twice
        raise busy(0)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)

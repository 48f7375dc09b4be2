"""Small shared helpers: atomic writes, content hashes, JSON, version info."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np


def current_umask() -> int:
    """The process umask, read without changing it (``/proc/self/status`` on Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)  # not thread safe, only where /proc is missing
    os.umask(old)
    return old


def file_mode() -> int:
    """Mode of a new file as ``open()`` would create it: 0o666 less the umask."""
    return 0o666 & ~current_umask()


def _with_path(exc: OSError, path: Path) -> OSError:
    """The same OSError, naming ``path`` when it named no file (ENOSPC on write, ...)."""
    if exc.filename is None:
        new = type(exc)(exc.errno, exc.strerror or str(exc), str(path))
        return new
    return exc


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + fsync + rename).

    The file gets the mode a plain ``open()`` would give it (0o666 less the umask), so a group
    can share a store or a model when the umask allows it. A failure (disk full, permission)
    leaves ``path`` as it was and raises OSError naming ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _with_path(exc, path.parent) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), file_mode())
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _with_path(exc, path) from None
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


class LockBusy(Exception):  # noqa: N818 - public name, part of the API
    """Raised by :func:`file_lock` when another process holds the lock (after ``wait`` seconds)."""


@contextlib.contextmanager
def file_lock(lock: str | Path, busy: Callable[[], Exception], wait: float = 0.0,
              on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Exclusive advisory lock (``fcntl.flock``) on the file ``lock`` for the ``with`` block.

    The kernel releases the lock when the holder exits or is killed, so there is no stale lock
    to take over and no race between two processes (unlike a pid file). The lock file itself is
    empty and left in place (deleting it would let two processes lock two different files).
    ``wait``: seconds to wait for a busy lock (0 = refuse at once); ``on_wait()`` is called once
    before waiting; ``busy()`` builds the one-line error raised when the lock stays busy.
    Reentrant within a process for the same path (nested use is a no-op).
    """
    import fcntl

    lock = Path(lock)
    key = str(lock.resolve()) if lock.parent.exists() else str(lock.absolute())
    if key in _HELD:
        yield
        return
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, file_mode())
    except OSError as exc:
        raise _with_path(exc, lock) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if wait <= 0:
                raise busy() from None
            if on_wait is not None:
                on_wait()
            deadline = time.monotonic() + wait
            while True:
                time.sleep(0.05)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise busy() from None
        _HELD.add(key)
        try:
            yield
        finally:
            _HELD.discard(key)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


_HELD: set[str] = set()


def lock_wait_seconds(default: float) -> float:
    """Seconds to wait for a busy lock: ``BONDML_LOCK_WAIT`` when set, else ``default``."""
    v = os.environ.get("BONDML_LOCK_WAIT", "")
    try:
        return float(v) if v else default
    except ValueError:
        return default


# ------------------------------------------------------------------------------------------ LAMMPS paths
_LAMMPS_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.,/+=@%:- ")


def lammps_word(path: str | Path, cwd: str | Path) -> str:
    """``path`` as one word of a LAMMPS input command run in the folder ``cwd``.

    LAMMPS splits words at spaces (quotes keep them together), substitutes ``$`` even inside
    double quotes and garbles non-ASCII bytes, so the path is written relative to ``cwd`` (the
    run folder: the same bytes wherever that folder is) and double-quoted. When the relative path
    still holds a character LAMMPS cannot take, a symbolic link with a plain name in ``cwd``
    (``.lmp-<hash>``) points to the file's folder and the word goes through it.
    """
    path, cwd = Path(path).resolve(), Path(cwd).resolve()
    rel = os.path.relpath(path, cwd)
    if set(rel) <= _LAMMPS_SAFE:
        return f'"{rel}"'
    link = cwd / f".lmp-{sha256_bytes(str(path.parent).encode('utf-8', 'surrogateescape'))[:12]}"
    if not link.is_symlink():
        link.symlink_to(path.parent, target_is_directory=True)
    name = path.name
    if not set(name) <= _LAMMPS_SAFE:  # the file name itself: link the file
        digest = sha256_bytes(str(path).encode("utf-8", "surrogateescape"))[:12]
        suffix = path.suffix if set(path.suffix) <= _LAMMPS_SAFE else ""
        flink = cwd / f".lmp-{digest}{suffix}"
        if not flink.is_symlink():
            flink.symlink_to(path)
        return f'"{flink.name}"'
    return f'"{link.name}/{name}"'


@contextlib.contextmanager
def working_dir(path: str | Path) -> Iterator[None]:
    """Run the block with ``path`` as the current folder (LAMMPS reads relative paths there)."""
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def clean_temp_files(folder: str | Path, recursive: bool = True) -> int:
    """Remove the temporary files an atomic write killed by SIGKILL left behind (``.<name>.*.tmp``).

    Call only while holding the folder's lock (no writer is running). Returns how many went."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    n = 0
    for p in (folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")):
        if p.is_file() and not p.is_symlink():
            p.unlink(missing_ok=True)
            n += 1
    return n

"""Code versions computed from the import graph, so that a pipeline cache key cannot go stale.

A stage's code version is the SHA-256 of the source files of every ``bondml`` module the stage
can execute: the transitive closure of the static imports (``import``/``from ... import``, at
module level *and* inside functions; ``if TYPE_CHECKING:`` blocks never run and are skipped) starting from its entry
points, found with :mod:`ast` (nothing is imported). Importing ``bondml.a.b`` runs
``bondml/__init__.py`` and ``bondml/a/__init__.py`` too, so package ``__init__`` files of every
module reached are part of the closure. When ``bondml.data`` (the package data) is reached, the
bundled data files are hashed too.

An entry point is a module (``"bondml.pipeline.report"``: the whole file and its imports) or a
function of a module (``"bondml.pipeline.stages:train_stage"``): then only that function, the
module-level functions/classes it names (transitively), the module-level statements (imports,
constants) and the modules bound to the names it uses enter the closure. That keeps the stages
in one file without one stage's edit re-running every other stage.

Imports that cannot be seen statically (``importlib.import_module`` with a computed name) are
not followed; bondml's library code has none (the CLI's lazy command loader is not a stage).
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import ConfigError

PACKAGE = "bondml"
#: Package whose use means "reads the bundled package data" (its files are then hashed too).
DATA_MODULE = "bondml.data"


def package_root() -> Path:
    """The folder holding the installed/imported ``bondml`` package (``src`` in a checkout)."""
    return Path(__file__).resolve().parents[2]


def module_file(name: str, root: Path) -> Path | None:
    """Source file of module ``name`` under ``root`` (``a/b.py`` or ``a/b/__init__.py``)."""
    base = root.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    f = base.with_suffix(".py")
    return f if f.is_file() else None


def _is_package(name: str, root: Path) -> bool:
    return (root.joinpath(*name.split(".")) / "__init__.py").is_file()


def _resolve_from(module: str, node: ast.ImportFrom, root: Path) -> str:
    """Absolute module name of a ``from X import ...`` statement inside ``module``."""
    if node.level == 0:
        return node.module or ""
    parts = module.split(".")
    pkg = parts if _is_package(module, root) else parts[:-1]
    if node.level > 1:
        pkg = pkg[: len(pkg) - (node.level - 1)]
    return ".".join([*pkg, node.module] if node.module else pkg)


def _is_type_checking(node: ast.AST) -> bool:
    t = node.test if isinstance(node, ast.If) else None
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _walk(node: ast.AST) -> Iterable[ast.AST]:
    """``ast.walk`` without the bodies of ``if TYPE_CHECKING:`` blocks (their ``else`` runs)."""
    todo = [node]
    while todo:
        n = todo.pop()
        yield n
        if _is_type_checking(n):
            todo.extend(n.orelse)  # type: ignore[attr-defined]
            continue
        todo.extend(ast.iter_child_nodes(n))


def _imports_of(module: str, nodes: Iterable[ast.AST], root: Path) -> tuple[set[str], dict[str, str]]:
    """bondml modules imported by ``nodes`` (walked recursively), and name -> module bindings."""
    found: set[str] = set()
    names: dict[str, str] = {}
    for top in nodes:
        for node in _walk(top):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name == PACKAGE or a.name.startswith(PACKAGE + "."):
                        found.add(a.name)
                        names[(a.asname or a.name).split(".")[0]] = a.name if a.asname else PACKAGE
            elif isinstance(node, ast.ImportFrom):
                base = _resolve_from(module, node, root)
                if not (base == PACKAGE or base.startswith(PACKAGE + ".")):
                    continue
                found.add(base)
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    target = sub if module_file(sub, root) is not None else base
                    found.add(target)
                    names[a.asname or a.name] = target
    return found, names


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts) + 1)]


@dataclass(frozen=True)
class _Parsed:
    tree: ast.Module
    lines: tuple[str, ...]

    def segment(self, node: ast.AST) -> str:
        """Source lines of a statement (whole lines, decorators included)."""
        start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])  # type: ignore[attr-defined]
        return "".join(self.lines[start - 1:node.end_lineno])  # type: ignore[attr-defined]


@lru_cache(maxsize=512)
def _parse(path: Path, mtime_ns: int, size: int) -> _Parsed:
    src = path.read_text(encoding="utf-8")
    return _Parsed(ast.parse(src, filename=str(path)), tuple(src.splitlines(keepends=True)))


@lru_cache(maxsize=4096)
def _file_digest(path: Path, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _parsed(path: Path) -> _Parsed:
    st = path.stat()
    return _parse(path, st.st_mtime_ns, st.st_size)


def _function_part(module: str, func: str, root: Path) -> tuple[str, set[str]]:
    """(source text that counts, bondml modules used) for ``module:func``."""
    path = module_file(module, root)
    if path is None:
        raise ConfigError(f"stage code module {module!r} not found under {root}")
    p = _parsed(path)
    defs = {n.name: n for n in p.tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    if func not in defs:
        raise ConfigError(f"stage code entry {module}:{func} not found (not a module-level function)")
    other = [n for n in p.tree.body if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    _, bound = _imports_of(module, other, root)
    reached: list[str] = []
    todo = [func]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.append(name)
        for node in ast.walk(defs[name]):
            if isinstance(node, ast.Name) and node.id in defs and node.id not in reached:
                todo.append(node.id)
    mods, _ = _imports_of(module, [defs[n] for n in reached], root)
    used = {n.id for r in reached for n in ast.walk(defs[r]) if isinstance(n, ast.Name)}
    mods |= {bound[u] for u in used if u in bound}
    text = "".join(p.segment(n) for n in other) + "".join(p.segment(defs[n]) for n in sorted(reached))
    return text, mods


def _top_level(tree: ast.Module) -> list[ast.AST]:
    """Statements that run when a module is imported: all but function bodies."""
    out: list[ast.AST] = []
    todo: list[ast.AST] = list(tree.body)
    while todo:
        n = todo.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(n, ast.ClassDef):
            todo += n.body
            continue
        if _is_type_checking(n):
            todo += n.orelse  # type: ignore[attr-defined]
            continue
        out.append(n)
    return out


@lru_cache(maxsize=2048)
def _module_imports(module: str, full: bool, root: Path, path: Path, mtime_ns: int, size: int) -> tuple[str, ...]:
    """bondml modules imported by ``module`` (all imports, or those its import runs); cached per file state."""
    tree = _parsed(path).tree
    found, _ = _imports_of(module, [tree] if full else _top_level(tree), root)
    return tuple(sorted(found))


def closure(entries: Iterable[str], root: Path | None = None) -> tuple[list[str], list[str]]:
    """(modules whose whole file counts, ``module:function`` parts) reachable from ``entries``.

    A module imported by reached code counts with every import in it (function bodies too: they
    run when the function is called). A package reached only as the parent of an imported
    module counts with the imports its import runs (module level), not those inside its
    functions, and so do the modules those imports reach (their functions are only run by code
    that imports them by name, which then brings them in fully). Every file reached counts whole.
    """
    root = Path(root) if root is not None else package_root()
    funcs = sorted({e for e in entries if ":" in e})
    todo: list[tuple[str, bool]] = [(e, True) for e in entries if ":" not in e]
    for f in funcs:
        m, fn = f.split(":")
        _, mods = _function_part(m, fn, root)
        todo += [(x, True) for x in sorted(mods)]
        # its packages' __init__ files run on import; the module itself counts by the parts
        # above, unless another reached module imports it (then whole)
        todo.append((m.rsplit(".", 1)[0], False))
    whole: set[str] = set()
    done: dict[str, bool] = {}  # module -> processed with all its imports (True) or module level only
    while todo:
        name, full = todo.pop()
        parents = _with_parents(name)
        for m in parents:
            f = full and m == name
            if not (m == PACKAGE or m.startswith(PACKAGE + ".")) or done.get(m) in (True, f):
                continue
            done[m] = f
            path = module_file(m, root)
            if path is None:
                raise ConfigError(f"stage code module {m!r} not found under {root}")
            whole.add(m)
            st = path.stat()
            found = _module_imports(m, f, root, path, st.st_mtime_ns, st.st_size)
            todo += [(x, f) for x in found if done.get(x) is not True]
    return sorted(whole), funcs


def code_fingerprint(entries: tuple[str, ...], root: Path | None = None) -> str:
    """SHA-256 over the code reachable from ``entries`` (see the module doc) + the bondml version."""
    root = Path(root) if root is not None else package_root()
    if module_file(PACKAGE, root) is None:
        raise ConfigError(f"no {PACKAGE} package under {root}")
    whole, funcs = closure(entries, root)
    h = hashlib.sha256()
    for m in whole:
        path = module_file(m, root)
        if path is None:  # pragma: no cover - closure() only returns existing files
            raise ConfigError(f"stage code module {m!r} not found under {root}")
        h.update(f"\0module {m}\0".encode())
        h.update(path.read_bytes())
    for f in funcs:
        m, fn = f.split(":")
        if m in whole:
            continue
        text, _ = _function_part(m, fn, root)
        h.update(f"\0part {f}\0".encode())
        h.update(text.encode())
    if DATA_MODULE in whole:
        data = root / PACKAGE / "data"
        for p in sorted(data.rglob("*")) if data.is_dir() else []:
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".py":
                st = p.stat()
                h.update(f"\0data {p.relative_to(data).as_posix()}\0".encode())
                h.update(_file_digest(p, st.st_mtime_ns, st.st_size).encode())
    return h.hexdigest()


def entries_of(*funcs: object) -> tuple[str, ...]:
    """Entry points (``module:function``) of bondml functions; others (tests, lambdas) are skipped,
    a lambda or nested function of a bondml module counts its whole module."""
    out = []
    for f in funcs:
        mod = getattr(f, "__module__", None) or ""
        qual = getattr(f, "__qualname__", "")
        if not (mod == PACKAGE or mod.startswith(PACKAGE + ".")):
            continue
        out.append(f"{mod}:{qual}" if qual and "<" not in qual and "." not in qual else mod)
    return tuple(dict.fromkeys(out))

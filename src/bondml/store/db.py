"""The bond database (DBI): a versioned, content-addressed Parquet store on disk.

Layout of a store folder::

    store.json                          format version, SOAP settings of the store
    cells/<cell key>/<fingerprint>/     one immutable object per (cell, inputs, settings)
        cell.json                       CellId, status, reason, source files + SHA-256, DUB list
        atoms.parquet                   atom index, element, x y z (A), SOAP vector
        bonds.parquet                   every bond 1.80-4.20 A: i j shift d type -ICOHP (NaN = no label)
    versions/<hash>.json                a dataset version: cell objects, settings, lineage
    tables/<hash>/<A-B>.parquet         per-type bond tables of that version (the DBI), cells.parquet
    selections/<name>.json              named, seeded selections / mixes (bond keys + parameters)
    labels/<name>/<A-B>.parquet         imported label-only tables of the original (.bnd)
    HEAD                                hash of the current version

Every write is atomic (temp file + rename) and objects are written before the manifests that
name them, so an interrupted ingest leaves the previous version intact and re-running resumes.
Re-ingesting unchanged inputs finds every object by fingerprint and writes nothing.

Integrity: ``cell.json`` records the SHA-256 of the object's Parquet files, the version manifest
repeats them (``cells[].files``) and adds those of its tables (``tables``). Every read checks the
hash before decoding (:func:`read_parquet`); re-ingest re-extracts a damaged object from its
source files; :meth:`BondStore.verify` checks (and with ``repair`` re-extracts) everything.
Writers hold an ``fcntl.flock`` on ``.lock`` (:func:`bondml.util.file_lock`); readers need none.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..chemistry import Chemistry
from ..constants import LABEL_WINDOW, STUDY_COMPOSITIONS
from ..core.dataset import BondDataset
from ..errors import BondmlError, InputFileError, StoreError
from ..features.soap import PAPER_SETTINGS, FeatureSettings
from ..io.getl import SubRunFiles
from ..io.runs import Run, find_runs
from ..types import CellId
from ..util import (
    atomic_write_bytes,
    atomic_write_json,
    clean_temp_files,
    code_version,
    file_lock,
    lock_wait_seconds,
    sha256_bytes,
    sha256_file,
    sha256_json,
)
from .extract import CellExtract, extract_cell

STORE_FORMAT = 1


def _table_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def _write_table(path: Path, table: pa.Table) -> str:
    """Write a Parquet object atomically; returns its SHA-256."""
    data = _table_bytes(table)
    atomic_write_bytes(path, data)
    return sha256_bytes(data)


def _damaged(path: Path, problem: str) -> StoreError:
    store = next((p for p in path.parents if (p / "store.json").is_file()), path.parent)
    return StoreError(f"{path}: {problem}; run 'bondml db verify --store {store} --repair' "
                      "(re-extracts it from the source files)")


def read_parquet(path: Path, sha256: str | None = None, columns: list[str] | None = None) -> pa.Table:
    """A stored Parquet object, checked against its recorded SHA-256 (when known) before it is
    decoded; a damaged or missing object is a one-line StoreError naming it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _damaged(path, "stored object is missing") from None
    if sha256 is not None and sha256_bytes(data) != sha256:
        raise _damaged(path, "stored object is damaged (SHA-256 differs from the manifest)")
    try:
        return pq.read_table(pa.BufferReader(data), columns=columns)
    except (pa.ArrowException, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _damaged(path, f"stored object is not readable Parquet ({first})") from None


def _read_json(path: Path, what: str = "store manifest") -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _damaged(path, f"{what} is missing") from None
    except (ValueError, UnicodeDecodeError):
        raise _damaged(path, f"{what} is damaged (not valid JSON)") from None


OBJECT_FILES = ("atoms.parquet", "bonds.parquet")


@dataclass
class IngestReport:
    """What an ingest did: cells added, unchanged, failed (with one-line reasons), the version."""

    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    repaired: list[str] = field(default_factory=list)
    version: str = ""
    version_changed: bool = False
    seconds: float = 0.0


#: Label sources a store can hold (one per store, never mixed).
LABEL_SOURCES: tuple[str, ...] = ("lobster", "xtb-gfn1")


class BondStore:
    """A bond database folder. Open with ``BondStore(path)``; ``create=True`` makes a new one.

    A store holds one target (``icohp``: -ICOHP in eV, the default; ``icoop``: ICOOP in e;
    ``icobi``: ICOBI, dimensionless; each with the sign that is positive for bonding) from one
    label source (``lobster``, or ``xtb-gfn1`` approximate labels): both are fixed at creation
    in ``store.json`` and asking another one of an existing store is a :class:`StoreError`.
    The label column of the tables is ``minus_icohp`` whatever the target (its meaning and unit
    are the store's ``target``/``unit``).
    """

    def __init__(self, path: str | Path, create: bool = False,
                 settings: FeatureSettings = PAPER_SETTINGS, target: str | None = None,
                 label_source: str | None = None) -> None:
        from .extract import TARGET_SIGN

        if target is not None and target not in TARGET_SIGN:
            raise StoreError(f"unknown target {target!r}; use one of {', '.join(TARGET_SIGN)}")
        if label_source is not None and label_source not in LABEL_SOURCES:
            raise StoreError(f"unknown label source {label_source!r}; use one of {', '.join(LABEL_SOURCES)}")
        self.path = Path(path)
        meta = self.path / "store.json"
        self.target = target or "icohp"
        self.label_source = label_source or "lobster"
        if meta.is_file():
            try:
                d = json.loads(meta.read_text(encoding="utf-8"))
                FeatureSettings.from_dict(d["settings"])
            except (ValueError, UnicodeDecodeError, KeyError, TypeError):
                raise StoreError(f"{meta}: corrupt store metadata (not the JSON bondml writes)") from None
            if d.get("format", 0) > STORE_FORMAT:
                raise StoreError(f"{meta}: store format {d['format']} is newer than this bondml ({STORE_FORMAT})")
            self.settings = FeatureSettings.from_dict(d["settings"])
            if create and self.settings != settings:
                self.settings.require_same(settings, f"store {self.path}")
            stored_t, stored_s = d.get("target", "icohp"), d.get("label_source", "lobster")
            if (target or stored_t) != stored_t or (label_source or stored_s) != stored_s:
                raise StoreError(f"{self.path}: store holds {stored_t} labels from {stored_s}, "
                                 f"not {target or stored_t} "
                                 f"from {label_source or stored_s}; targets and label sources are never mixed: use "
                                 "another store")
            self.target, self.label_source = stored_t, stored_s
        elif create:
            self.path.mkdir(parents=True, exist_ok=True)
            with self._lock():  # another process may create it (or clean temporary files) meanwhile
                if meta.is_file():
                    self.__init__(path, create, settings, target, label_source)  # type: ignore[misc]
                    return
                self.settings = settings
                from .extract import TARGET_UNITS

                extra = {} if (self.target, self.label_source) == ("icohp", "lobster") else {
                    "target": self.target, "unit": TARGET_UNITS[self.target], "label_source": self.label_source}
                atomic_write_json(meta, {"format": STORE_FORMAT, "settings": settings.to_dict(),
                                         "created_by": code_version(), **extra})
        else:
            raise StoreError(f"{self.path}: not a bondml store (no store.json); run 'bondml ingest' first")

    @property
    def chemistry(self) -> Chemistry:
        """Element set of the store (from its SOAP species; the study preset for Zr, Cu, Al)."""
        return Chemistry.from_species_z(self.settings.species_z)

    # ------------------------------------------------------------------ locking
    def _lock(self) -> contextlib.AbstractContextManager[None]:
        """Exclusive write lock of the store (``fcntl.flock`` on ``<store>/.lock``). A writer waits
        for another one (``BONDML_LOCK_WAIT`` seconds, default 600) so that concurrent ingests
        queue up instead of losing a version; readers need no lock (objects are immutable)."""
        import logging

        return file_lock(self.path / ".lock", lambda: StoreError(
            f"{self.path}: the store is locked by another bondml process; try again when it is done"),
            wait=lock_wait_seconds(600.0),
            on_wait=lambda: logging.getLogger("bondml.store").info("waiting for the store lock of %s", self.path))

    # ------------------------------------------------------------------ ingest
    def fingerprint(self, folder: Path, cell: CellId, run: Run | None = None) -> str:
        """Content fingerprint of a sub-run's inputs plus the store's SOAP settings (the study
        layout's file names, else the run's files)."""
        parts: dict[str, Any] = {"cell": str(cell), "settings": self.settings.to_dict(),
                                 "format": STORE_FORMAT}
        if run is None or run.layout == "study":
            f = SubRunFiles(folder, cell.nc)
            for p in (f.xyz, f.icohplist, f.scf_out, f.lobsterout):
                parts[p.name] = sha256_file(p) if p.is_file() else None
            gz = folder / "ICOHPLIST.lobster.gz"
            if gz.is_file():
                parts[gz.name] = sha256_file(gz)
        else:
            parts["layout"] = run.layout
            for p in run.files.fingerprint_files(self.target):
                parts[p.name] = sha256_file(p)
        if (self.target, self.label_source) != ("icohp", "lobster"):
            parts["target"], parts["label_source"] = self.target, self.label_source
            xtb = folder / "ICOHPLIST.xtb"
            if self.label_source != "lobster" and xtb.is_file():
                parts[xtb.name] = sha256_file(xtb)
        return sha256_json(parts)[:16]

    def _object_dir(self, cell: CellId, fp: str) -> Path:
        return self.path / "cells" / cell.key / fp

    def _write_object(self, ex: CellExtract, fp: str) -> None:
        d = self._object_dir(ex.cell, fp)
        d.mkdir(parents=True, exist_ok=True)
        files: dict[str, str] = {}
        for name in OBJECT_FILES:  # a re-extraction: no stale file of another extraction stays
            (d / name).unlink(missing_ok=True)
        if ex.atoms is not None:
            sym = ex.atoms.get_chemical_symbols()
            pos = ex.atoms.positions
            cols: dict[str, Any] = {
                "atom": pa.array(np.arange(len(sym), dtype=np.int32)),
                "element": pa.array(sym),
                "x": pa.array(pos[:, 0]), "y": pa.array(pos[:, 1]), "z": pa.array(pos[:, 2]),
            }
            if ex.soap is not None and self.settings.kind == "atom":
                p = ex.soap.shape[1]
                cols["soap"] = pa.FixedSizeListArray.from_arrays(pa.array(ex.soap.ravel()), p)
            files["atoms.parquet"] = _write_table(d / "atoms.parquet", pa.table(cols))
        if ex.bonds is not None:
            b = ex.bonds
            y = ex.minus_icohp if ex.minus_icohp is not None else np.full(len(b), np.nan)
            files["bonds.parquet"] = _write_table(d / "bonds.parquet", pa.table({
                "i": pa.array(b.i.astype(np.int32)), "j": pa.array(b.j.astype(np.int32)),
                "sx": pa.array(b.shift[:, 0].astype(np.int16)), "sy": pa.array(b.shift[:, 1].astype(np.int16)),
                "sz": pa.array(b.shift[:, 2].astype(np.int16)),
                "distance": pa.array(b.distance), "type": pa.array(b.type.astype(str)),
                "minus_icohp": pa.array(y, mask=np.isnan(y)),  # null = no label
                # bond-centred descriptors live with their bonds, one row each
                **({"soap": pa.FixedSizeListArray.from_arrays(pa.array(ex.soap.ravel()), ex.soap.shape[1])}
                   if ex.soap is not None and self.settings.kind == "bond" else {}),
            }))
        meta = {
            "cell": {"nc": ex.cell.nc, "run": ex.cell.run, "sub_run": ex.cell.sub_run},
            "folder": str(ex.folder),
            "fingerprint": fp,
            "status": ex.status.status, "reason": ex.status.reason,
            "labelled": (ex.status.labelled if ex.label_source == "lobster" else
                         ex.minus_icohp is not None and bool(np.isfinite(ex.minus_icohp).any())) and ex.error is None,
            "target": self.target,
            "error": ex.error, "sources": ex.sources, "unmatched": ex.unmatched,
            "label_source": ex.label_source, "details": ex.status.details,
            "cell_matrix": ex.atoms.cell.array.tolist() if ex.atoms is not None else None,
            "n_atoms": len(ex.atoms) if ex.atoms is not None else 0,
            "settings": self.settings.to_dict(), "code": code_version(),
            "files": files,  # SHA-256 of every Parquet file of the object
        }
        atomic_write_json(d / "cell.json", meta)  # written last: the object is complete

    def check_object(self, obj: Path) -> tuple[dict[str, Any] | None, str | None]:
        """(cell.json, None) when the object is complete and every file matches its SHA-256,
        else (None or the metadata, the problem). Objects of older stores (no hashes) are
        checked by decoding their Parquet files."""
        meta_p = obj / "cell.json"
        if not meta_p.is_file():
            return None, f"{meta_p}: missing"
        try:
            meta = json.loads(meta_p.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError, OSError):
            return None, f"{meta_p}: damaged (not valid JSON)"
        files = meta.get("files")
        if files is None:  # legacy object: decodable Parquet is the best check there is
            for name in OBJECT_FILES:
                p = obj / name
                if p.is_file():
                    try:
                        pq.read_table(p)
                    except (pa.ArrowException, OSError, ValueError):
                        return meta, f"{p}: not readable Parquet"
            return meta, None
        for name, sha in files.items():
            p = obj / name
            if not p.is_file():
                return meta, f"{p}: missing"
            if sha256_file(p) != sha:
                return meta, f"{p}: SHA-256 differs from cell.json (damaged)"
        return meta, None

    def ingest(self, root: str | Path, progress: Callable[[CellId, str], None] | None = None,
               runs: list[Run] | None = None) -> IngestReport:
        """Add every sub-run found under a GETL ``root``; idempotent and resumable.

        Cells whose inputs are unchanged are skipped (found by fingerprint). A bad sub-run gets
        its status and error line but never stops the ingest nor touches stored objects.
        ``runs``: the runs of ``root`` when the caller already discovered them (:func:`require_runs`).
        """
        t0 = time.perf_counter()
        rep = IngestReport()
        runs = require_runs(root) if runs is None else runs
        with self._lock():
            clean_temp_files(self.path)  # left by a writer killed mid-write
            entries: dict[str, dict[str, Any]] = {}
            cur = self.current_version(required=False)
            if cur is not None:
                entries = {e["key"]: e for e in self.read_version(cur)["cells"]}
            for run in runs:
                cell = run.cell
                folder = run.files.folder
                fp = self.fingerprint(folder, cell, run)
                obj = self._object_dir(cell, fp)
                meta, problem = self.check_object(obj) if (obj / "cell.json").exists() else (None, "new")
                if problem is None and meta is not None:
                    rep.unchanged.append(str(cell))
                else:
                    self._write_object(self._extract(run), fp)
                    meta = json.loads((obj / "cell.json").read_text())
                    (rep.added if problem == "new" else rep.repaired).append(str(cell))
                if meta.get("error"):
                    rep.errors[str(cell)] = meta["error"]
                entries[cell.key] = {"key": cell.key, "nc": cell.nc, "run": cell.run, "sub_run": cell.sub_run,
                                     "fingerprint": fp, "status": meta["status"], "reason": meta["reason"],
                                     "labelled": meta["labelled"], "error": meta.get("error"),
                                     "source_root": str(Path(root).resolve()), "path": run.relpath,
                                     "layout": run.layout}
                if progress:
                    progress(cell, meta["status"])
            rep.version, rep.version_changed = self._commit_version(list(entries.values()))
        rep.seconds = time.perf_counter() - t0
        return rep

    # ------------------------------------------------------------------ integrity
    def verify(self, repair: bool = False,
               progress: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Check every object, table and manifest of the store against the SHA-256 recorded for it.

        Returns ``{"checked": n, "problems": [line, ...], "repaired": [line, ...]}``. With
        ``repair``, damaged cell objects are re-extracted from their source files (the GETL root
        recorded in the version) and the tables of damaged versions are rewritten; what cannot
        be repaired (source gone) stays in ``problems``.
        """
        problems: list[str] = []
        repaired: list[str] = []
        checked = 0
        head = None
        try:
            head = self.current_version(required=False)
        except StoreError as exc:
            problems.append(str(exc).split("; run")[0])
        ctx = self._lock() if repair else contextlib.nullcontext()
        with ctx:
            for vp in sorted((self.path / "versions").glob("*.json")):
                try:
                    ver = json.loads(vp.read_text(encoding="utf-8"))
                    h = ver["hash"]
                except (ValueError, UnicodeDecodeError, KeyError, TypeError):
                    problems.append(f"{vp}: version manifest damaged (not valid JSON)")
                    continue
                bad_cells = False
                for c in ver["cells"]:
                    cell = CellId(c["nc"], c["run"], c["sub_run"])
                    obj = self._object_dir(cell, c["fingerprint"])
                    checked += 1
                    meta, problem = self.check_object(obj)
                    if problem is None and c.get("files") is not None and meta is not None \
                            and meta.get("files") != c["files"]:
                        problem = f"{obj}: object files differ from the version manifest"
                    if problem is None:
                        continue
                    bad_cells = True
                    if repair and self._reextract(cell, c, obj):
                        repaired.append(f"{problem}: re-extracted from {c.get('source_root')}")
                    else:
                        problems.append(problem + ("" if not repair else
                                                   f" (source {c.get('source_root')} not available)"))
                    if progress:
                        progress(problem)
                checked += len(ver.get("tables") or {})
                tprob = self._tables_problems(h, ver) if ver.get("tables") is not None else []
                if tprob or (repair and bad_cells):
                    if repair:
                        try:
                            cells = ver["cells"]
                            for c in cells:
                                m = _read_json(self._object_dir(CellId(c["nc"], c["run"], c["sub_run"]),
                                                                c["fingerprint"]) / "cell.json")
                                if m.get("files") is not None:
                                    c["files"] = m["files"]
                            ver["tables"] = self._write_tables(h, cells)
                            atomic_write_json(vp, ver)
                            repaired.extend(f"{t}: rewritten from the cell objects" for t in tprob)
                        except StoreError as exc:
                            problems.extend(tprob or [str(exc)])
                    else:
                        problems.extend(tprob)
            if head is not None and not (self.path / "versions" / f"{head}.json").is_file():
                problems.append(f"{self.path / 'HEAD'}: names version {head}, which does not exist")
        return {"store": str(self.path), "checked": checked, "problems": problems, "repaired": repaired}

    def _extract(self, run: Run) -> CellExtract:
        """Extract one discovered run with the store's settings, target and label source."""
        kw: dict[str, Any] = {"target": self.target}
        if self.label_source != "lobster":
            kw.update(icohp_file="ICOHPLIST.xtb", label_source=self.label_source)
        if run.layout == "study":
            return extract_cell(run.files.folder, run.cell, self.settings, **kw)
        return extract_cell(run.files.folder, run.cell, self.settings, window=None, files=run.files, **kw)

    def _reextract(self, cell: CellId, entry: dict[str, Any], obj: Path) -> bool:
        """Re-extract one damaged object from its source run (same fingerprint only)."""
        root = entry.get("source_root")
        if not root:
            return False
        try:
            run = next((r for r in find_runs(root) if r.cell == cell), None)
            if run is None or self.fingerprint(run.files.folder, cell, run) != entry["fingerprint"]:
                return False
            self._write_object(self._extract(run), entry["fingerprint"])
        except (BondmlError, OSError):
            return False
        return self.check_object(obj)[1] is None

    # ------------------------------------------------------------------ versions
    def _commit_version(self, cells: list[dict[str, Any]]) -> tuple[str, bool]:
        cells = sorted(cells, key=lambda e: (e["nc"], e["run"], e["sub_run"]))
        content = {"cells": [{k: e[k] for k in ("key", "nc", "run", "sub_run", "fingerprint", "status",
                                                "labelled")} for e in cells],
                   "settings": self.settings.to_dict(), "format": STORE_FORMAT}
        h = sha256_json(content)[:16]
        vpath = self.path / "versions" / f"{h}.json"
        changed = self.current_version(required=False) != h
        for e in cells:  # the SHA-256 of every object file, as recorded by the object
            meta = _read_json(self._object_dir(CellId(e["nc"], e["run"], e["sub_run"]), e["fingerprint"])
                              / "cell.json", "cell object metadata")
            if meta.get("files") is not None:
                e["files"] = meta["files"]
        old = None
        if vpath.is_file():
            try:
                old = json.loads(vpath.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError):
                old = None
        if old is None or self._tables_problems(h, old) or any("files" not in c for c in old.get("cells", [])):
            tables = self._write_tables(h, cells)
            lineage = (old or {}).get("lineage") or {
                "code": code_version(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "parent": self.current_version(required=False)}
            atomic_write_json(vpath, {**content, "hash": h, "lineage": lineage, "cells": cells, "tables": tables})
        if changed:
            atomic_write_bytes(self.path / "HEAD", (h + "\n").encode())
        return h, changed

    def _tables_problems(self, h: str, ver: dict[str, Any]) -> list[str]:
        """Problems of the materialised tables of a version (missing, damaged, no hashes)."""
        tables = ver.get("tables")
        if tables is None:
            return [f"{self.path / 'versions' / (h + '.json')}: records no table hashes (older store)"]
        out = []
        for name, sha in tables.items():
            p = self.path / "tables" / h / name
            if not p.is_file():
                out.append(f"{p}: missing")
            elif sha256_file(p) != sha:
                out.append(f"{p}: SHA-256 differs from the version manifest (damaged)")
        return out

    def _write_tables(self, h: str, cells: list[dict[str, Any]]) -> dict[str, str]:
        """Materialise the per-type bond tables (the DBI) and the cell table of a version;
        returns {file name: SHA-256}."""
        out = self.path / "tables" / h
        hashes: dict[str, str] = {}
        per_type: dict[str, list[pa.Table]] = {t: [] for t in self.chemistry.bond_types}
        for e in cells:
            obj = self._object_dir(CellId(e["nc"], e["run"], e["sub_run"]), e["fingerprint"])
            bp = obj / "bonds.parquet"
            if not bp.is_file():
                continue
            t = read_parquet(bp, (e.get("files") or {}).get("bonds.parquet"))
            n = t.num_rows
            t = t.append_column("nc", pa.array([e["nc"]] * n)).append_column(
                "run", pa.array(np.full(n, e["run"], np.int32))).append_column(
                "sub_run", pa.array(np.full(n, e["sub_run"], np.int32))).append_column(
                "status", pa.array([e["status"]] * n)).append_column(
                "label_source", pa.array([self.label_source if e["labelled"] else "none"] * n))
            for bt in self.chemistry.bond_types:
                sub = t.filter(pa.compute.equal(t["type"], bt))
                if sub.num_rows:
                    per_type[bt].append(sub)
        for bt, parts in per_type.items():
            if parts:
                tab = pa.concat_tables(parts)
                cols = ["nc", "run", "sub_run", "i", "j", "sx", "sy", "sz", "distance", "minus_icohp",
                        "label_source", "status"]
                hashes[f"{bt}.parquet"] = _write_table(out / f"{bt}.parquet", tab.select(cols))
        hashes["cells.parquet"] = _write_table(out / "cells.parquet", pa.table({
            k: pa.array([e[k] for e in cells]) for k in ("nc", "run", "sub_run", "status", "reason", "fingerprint")
        }))
        return hashes

    def current_version(self, required: bool = True) -> str | None:
        head = self.path / "HEAD"
        if head.is_file():
            v = head.read_text(encoding="utf-8", errors="replace").strip()
            if not v or not all(ch in "0123456789abcdef" for ch in v):
                raise _damaged(head, f"HEAD is damaged ({v[:20]!r} is not a version hash)")
            return v
        if required:
            raise StoreError(f"{self.path}: the store holds no version yet; run 'bondml ingest'")
        return None

    def versions(self) -> list[dict[str, Any]]:
        """Every dataset version with its hash, creation time and cell count."""
        out = []
        for p in sorted((self.path / "versions").glob("*.json")):
            d = _read_json(p, "version manifest")
            out.append({"hash": d["hash"], "created": d["lineage"]["created"], "cells": len(d["cells"]),
                        "parent": d["lineage"].get("parent")})
        return sorted(out, key=lambda d: d["created"])

    def read_version(self, version: str | None = None) -> dict[str, Any]:
        v = version or self.current_version()
        p = self.path / "versions" / f"{v}.json"
        if not p.is_file():
            matches = list((self.path / "versions").glob(f"{v}*.json"))
            if len(matches) != 1:
                raise StoreError(f"{self.path}: no dataset version {v!r}")
            p = matches[0]
        return _read_json(p, "version manifest")

    # ------------------------------------------------------------------ queries
    def cells(self, version: str | None = None) -> list[dict[str, Any]]:
        return self.read_version(version)["cells"]

    def bond_table(self, bond_type: str, version: str | None = None) -> pa.Table:
        """The DBI table of one bond type for a version (all bonds 1.80-4.20 A, NaN = unlabelled)."""
        ver = self.read_version(version)
        p = self.path / "tables" / ver["hash"] / f"{bond_type}.parquet"
        tables = ver.get("tables")
        if tables is not None and f"{bond_type}.parquet" not in tables:
            return pa.table({})
        if tables is None and not p.is_file():
            return pa.table({})
        return read_parquet(p, (tables or {}).get(f"{bond_type}.parquet"))

    def query(self, sql: str, version: str | None = None) -> Any:
        """Run SQL with duckdb over the version's tables, exposed as views ``bonds`` (all types,
        with a ``type`` column) and ``cells``. Returns a list of row tuples.

        The tables are read (and checked against their SHA-256) here and handed to duckdb as
        registered Arrow tables: no path is ever pasted into SQL."""
        import duckdb

        ver = self.read_version(version)
        tdir = self.path / "tables" / ver["hash"]
        tables = ver.get("tables")
        con = duckdb.connect()
        parts = []
        for k, t in enumerate(self.chemistry.bond_types):
            tab = self.bond_table(t, ver["hash"])
            if tab.num_rows:
                con.register(f"_bonds_{k}", tab)
                parts.append(f"SELECT *, '{t}' AS type FROM _bonds_{k}")
        if parts:
            con.execute(f"CREATE VIEW bonds AS {' UNION ALL '.join(parts)}")
        con.register("_cells", read_parquet(tdir / "cells.parquet", (tables or {}).get("cells.parquet")))
        con.execute("CREATE VIEW cells AS SELECT * FROM _cells")
        try:
            return con.execute(sql).fetchall()
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StoreError(f"SQL {sql!r}: {first}") from None

    def info(self, version: str | None = None, label_window: tuple[float, float] = LABEL_WINDOW) -> dict[str, Any]:
        """Inventory: cells with status, labelled bonds per type in ``label_window``, label statistics."""
        ver = self.read_version(version)
        cells = [{"nc": c["nc"], "run": c["run"], "sub_run": c["sub_run"], "status": c["status"],
                  "reason": c.get("reason", ""), "error": c.get("error")} for c in ver["cells"]]
        bonds: dict[str, int] = {}
        stats: dict[str, dict[str, float]] = {}
        for t in self.chemistry.bond_types:
            tab = self.bond_table(t, ver["hash"])
            if tab.num_rows == 0:
                bonds[t] = 0
                continue
            d = tab["distance"].to_numpy()
            y = tab["minus_icohp"].to_numpy(zero_copy_only=False)
            lab = (tab["label_source"].to_numpy(zero_copy_only=False) == self.label_source) & ~np.isnan(y)
            m = lab & (d >= label_window[0]) & (d <= label_window[1])
            bonds[t] = int(m.sum())
            if m.any():
                stats[t] = {"mean": float(y[m].mean()), "std": float(y[m].std()), "min": float(y[m].min()),
                            "max": float(y[m].max()), "d_min": float(d[m].min()), "d_max": float(d[m].max())}
        by_status: dict[str, int] = {}
        for c in cells:
            by_status[c["status"]] = by_status.get(c["status"], 0) + 1
        return {"store": str(self.path), "version": ver["hash"], "settings": ver["settings"],
                "cells": cells, "cells_by_status": by_status, "bonds": bonds, "label_stats": stats,
                "label_window": list(label_window), "selections": self.selection_names(),
                "target": self.target, "label_source": self.label_source,
                "label_tables": self.label_table_names()}

    def load_dataset(
        self,
        version: str | None = None,
        selection: str | None = None,
        ncs: list[str] | None = None,
        runs: list[int] | None = None,
        sub_runs: list[int] | None = None,
        types: list[str] | None = None,
        label_window: tuple[float, float] = LABEL_WINDOW,
    ) -> BondDataset:
        """Labelled bonds (``label_window``, A) of a version, optionally filtered or a named selection,
        as a :class:`BondDataset` with the per-atom SOAP of every cell involved."""
        sel_keys = None
        if selection is not None:
            s = self.read_selection(selection)
            version = s["version"]
            sel_keys = {tuple(k) for k in s["bonds"]}
        ver = self.read_version(version)
        cols: dict[str, list[np.ndarray]] = {}
        soaps: list[np.ndarray] = []
        offset = 0
        lineage_cells = []
        for c in ver["cells"]:
            if not c["labelled"]:
                continue
            if ncs and c["nc"] not in ncs or runs and c["run"] not in runs or sub_runs and c["sub_run"] not in sub_runs:
                continue
            obj = self._object_dir(CellId(c["nc"], c["run"], c["sub_run"]), c["fingerprint"])
            files = c.get("files") or {}
            btab = read_parquet(obj / "bonds.parquet", files.get("bonds.parquet"))
            b = btab.drop_columns([c_ for c_ in ("soap",) if c_ in btab.column_names]).to_pydict()
            d = np.asarray(b["distance"])
            y = np.asarray(b["minus_icohp"], dtype=float)
            bt = np.asarray(b["type"]).astype(str)
            i = np.asarray(b["i"], np.int64)
            j = np.asarray(b["j"], np.int64)
            sh = np.column_stack([b["sx"], b["sy"], b["sz"]]).astype(np.int64)
            keep = ~np.isnan(y) & (d >= label_window[0]) & (d <= label_window[1])
            if types:
                keep &= np.isin(bt, types)
            if sel_keys is not None:
                keep &= np.array([(c["key"], int(a), int(bb), *map(int, s_)) in sel_keys
                                  for a, bb, s_ in zip(i, j, sh, strict=True)], dtype=bool)
            n = int(keep.sum())
            if n == 0:
                continue
            if self.settings.kind == "bond":  # one descriptor per bond: keep the selected rows
                bt_soap = btab.select(["soap"])
                soap = np.asarray(bt_soap["soap"].combine_chunks().flatten().to_numpy()).reshape(
                    bt_soap.num_rows, -1)[keep]
                rows_i = rows_j = np.arange(n)
            else:
                at = read_parquet(obj / "atoms.parquet", files.get("atoms.parquet"), columns=["soap"])
                soap = np.asarray(at["soap"].combine_chunks().flatten().to_numpy()).reshape(at.num_rows, -1)
                rows_i, rows_j = i[keep], j[keep]
            add = {"bond_type": bt[keep], "distance": d[keep], "y": y[keep],
                   "nc": np.full(n, c["nc"]).astype(str), "run": np.full(n, c["run"], np.int64),
                   "sub_run": np.full(n, c["sub_run"], np.int64), "i": i[keep], "j": j[keep],
                   "shift": sh[keep], "label_source": np.full(n, self.label_source).astype(str),
                   "atom_i": rows_i + offset, "atom_j": rows_j + offset}
            for k, v in add.items():
                cols.setdefault(k, []).append(v)
            soaps.append(soap)
            offset += soap.shape[0]
            lineage_cells.append({"cell": c["key"], "fingerprint": c["fingerprint"]})
        if not soaps:
            raise StoreError(f"{self.path}: no labelled bonds match this selection")
        arrays = {k: np.concatenate(v) for k, v in cols.items()}
        arrays["shift"] = arrays["shift"].reshape(-1, 3)
        return BondDataset(**arrays, atom_soap=np.concatenate(soaps, axis=0), settings=self.settings,
                           lineage={"store": str(self.path), "version": ver["hash"], "selection": selection,
                                    "filters": {"ncs": ncs, "runs": runs, "sub_runs": sub_runs, "types": types},
                                    "label_window": list(label_window), "cells": lineage_cells,
                                    "code": code_version(), **self._target_lineage()})

    def _target_lineage(self) -> dict[str, str]:
        from .extract import TARGET_LABELS, TARGET_UNITS

        if (self.target, self.label_source) == ("icohp", "lobster"):
            return {}  # the study's lineage unchanged
        return {"target": self.target, "target_label": TARGET_LABELS[self.target],
                "unit": TARGET_UNITS[self.target], "label_source": self.label_source}

    # ------------------------------------------------------------------ selections and mixes
    def make_selection(
        self,
        name: str,
        n_per_type: int,
        seed: int,
        ncs: list[str] | None = None,
        runs: list[int] | None = None,
        sub_runs: list[int] | None = None,
        stratify: str = "nc",
        types: list[str] | None = None,
        version: str | None = None,
        label_window: tuple[float, float] = LABEL_WINDOW,
    ) -> dict[str, Any]:
        """Draw ``n_per_type`` labelled bonds per type, stratified over ``stratify`` groups
        (``nc``, ``run`` or ``cell``: equal shares, the remainder given to groups that have more),
        seeded, and save it as a named selection (the original DB4/DB8 mixes are this with nc)."""
        if stratify not in ("nc", "run", "cell"):
            raise StoreError(f"unknown stratification {stratify!r}; use nc, run or cell")
        ds = self.load_dataset(version=version, ncs=ncs, runs=runs, sub_runs=sub_runs, types=types,
                               label_window=label_window)
        rng = np.random.default_rng(seed)
        groups = ds.groups(stratify)
        keys = np.array([f"{a}-{r}-{s}" for a, r, s in zip(ds.nc, ds.run, ds.sub_run, strict=True)])
        chosen: list[int] = []
        counts: dict[str, dict[str, int]] = {}
        for t in types or self.chemistry.bond_types:
            idx = np.flatnonzero(ds.bond_type == t)
            if idx.size == 0:
                continue
            pick = _stratified_draw(idx, groups[idx], n_per_type, rng)
            chosen.extend(pick.tolist())
            g, c = np.unique(groups[pick], return_counts=True)
            counts[t] = dict(zip(g.tolist(), c.astype(int).tolist(), strict=True))
        chosen_arr = np.array(sorted(chosen), dtype=np.int64)
        bonds = [[str(keys[k]), int(ds.i[k]), int(ds.j[k]), *map(int, ds.shift[k])] for k in chosen_arr]
        params = {"n_per_type": n_per_type, "seed": seed, "ncs": ncs, "runs": runs, "sub_runs": sub_runs,
                  "stratify": stratify, "types": types, "label_window": list(label_window)}
        sel = {"name": name, "version": ds.lineage["version"], "params": params, "counts": counts,
               "bonds": bonds, "code": code_version()}
        sel["hash"] = sha256_json({"version": sel["version"], "bonds": bonds})[:16]
        _check_name(name)
        with self._lock():
            atomic_write_json(self.path / "selections" / f"{name}.json", sel)
        return sel

    def read_selection(self, name: str) -> dict[str, Any]:
        p = self.path / "selections" / f"{name}.json"
        if not p.is_file():
            have = ", ".join(self.selection_names()) or "none"
            raise StoreError(f"{self.path}: no selection named {name!r} (have: {have})")
        return _read_json(p, "selection")

    def selection_names(self) -> list[str]:
        return sorted(p.stem for p in (self.path / "selections").glob("*.json"))

    def _elements(self, ds: BondDataset) -> np.ndarray:
        """Element of every row of ``ds.atom_soap`` (cells in dataset lineage order)."""
        parts = []
        for c in ds.lineage["cells"]:
            nc, run, sub = c["cell"].rsplit("-", 2)
            parts.append(_elements_of(self._object_dir(CellId(nc, int(run), int(sub)), c["fingerprint"])))
        return np.concatenate(parts)

    # ------------------------------------------------------------------ original tables
    def import_tables(self, folder: str | Path, name: str | None = None) -> dict[str, int]:
        """Import the original label-only ``.bnd`` tables of a folder (PBSSDB or DB4/DB8 layout)
        plus ``ND.info``/``DUB.info`` when present. Returns rows per type."""
        from .tables import read_bnd_folder

        folder = Path(folder)
        name = name or folder.name
        _check_name(name)
        tables, extras = read_bnd_folder(folder)
        if not tables:
            raise InputFileError(folder, "no .bnd label tables in this folder")
        out = self.path / "labels" / name
        counts = {}
        files = {}
        with self._lock():
            for t, tab in tables.items():
                files[f"{t}.parquet"] = _write_table(out / f"{t}.parquet", tab)
                counts[t] = tab.num_rows
            atomic_write_json(out / "meta.json", {"source": str(folder.resolve()), "counts": counts, **extras,
                                                  "files": files, "code": code_version()})
        return counts

    def label_table_names(self) -> list[str]:
        return sorted(p.name for p in (self.path / "labels").glob("*") if (p / "meta.json").is_file())

    def label_table(self, name: str, bond_type: str) -> pa.Table:
        p = self.path / "labels" / name / f"{bond_type}.parquet"
        if not p.is_file():
            raise StoreError(f"{self.path}: label table {name!r} has no {bond_type} bonds")
        return pq.read_table(p)

    def export_bnd(self, out: str | Path, selection: str | None = None, version: str | None = None,
                   ncs_order: tuple[str, ...] = STUDY_COMPOSITIONS) -> dict[str, Path]:
        """Write the original ``.bnd`` tables (``nc run sub i j d -ICOHP``, 1-based atoms, first atom of
        the type's first element) for a version or selection, so old results can be compared."""
        from .tables import write_bnd

        ds = self.load_dataset(version=version, selection=selection)
        out = Path(out)
        written = {}
        elements = self._elements(ds)
        for t in self.chemistry.bond_types:
            sub = ds.of_type(t)
            if len(sub) == 0:
                continue
            swap = elements[sub.atom_i] != t.split("-")[0]
            prefix = selection or f"v{ds.lineage['version'][:8]}"
            written[t] = write_bnd(out / f"{prefix}_{t}.bnd", sub, ncs_order, swap=swap)
        return written


def require_runs(root: str | Path) -> list[Run]:
    """The runs under ``root`` (:func:`bondml.io.runs.find_runs`); InputFileError when there is none."""
    runs = find_runs(root)
    if not runs:
        raise InputFileError(root, "holds no LOBSTER run (no study tree, and no folder with an ICOHPLIST.lobster "
                                   "next to a structure); see docs/formats.md")
    return runs


def settings_for_data(root: str | Path, base: FeatureSettings = PAPER_SETTINGS,
                      runs: list[Run] | None = None) -> FeatureSettings:
    """SOAP settings of a new store for the runs under ``root`` (or the already discovered
    ``runs``): ``base`` (the paper's) when every structure's elements are among Zr, Cu, Al (the
    study preset), else ``base`` with the SOAP species of the elements present
    (:class:`bondml.chemistry.Chemistry`)."""
    from dataclasses import replace

    from ..io.runs import read_structure

    runs = find_runs(root) if runs is None else runs
    if not runs or all(r.layout == "study" for r in runs):
        return base
    elements: set[str] = set()
    for r in runs:
        try:
            elements.update(read_structure(r.files).get_chemical_symbols())
        except InputFileError:
            continue  # the cell's own error is reported by the ingest
    chem = Chemistry.from_elements(elements) if elements else None
    if chem is None or chem.is_study:
        return base
    return replace(base, species_z=chem.species_z)


def _elements_of(obj: Path) -> np.ndarray:
    meta = _read_json(obj / "cell.json", "cell object metadata")
    tab = read_parquet(obj / "atoms.parquet", (meta.get("files") or {}).get("atoms.parquet"), columns=["element"])
    return np.asarray(tab["element"].to_pylist())


def _stratified_draw(idx: np.ndarray, groups: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw up to ``n`` of ``idx`` with equal shares per group; shortfalls are refilled from groups
    with spare bonds. Deterministic for a given generator state."""
    ug = np.unique(groups)
    pools = {g: rng.permutation(idx[groups == g]) for g in ug}
    take = dict.fromkeys(ug, 0)
    remaining = min(n, idx.size)
    while remaining > 0:
        open_g = [g for g in ug if take[g] < pools[g].size]
        share = max(1, remaining // len(open_g))
        for g in open_g:
            k = min(share, pools[g].size - take[g], remaining)
            take[g] += k
            remaining -= k
            if remaining == 0:
                break
    return np.concatenate([pools[g][: take[g]] for g in ug])


def _check_name(name: str) -> None:
    if not name or any(c in name for c in "/\\ \t") or name.startswith("."):
        raise StoreError(f"invalid name {name!r}: use letters, digits, '-', '_' and '.'")


__all__ = ["BondStore", "IngestReport", "InputFileError"]

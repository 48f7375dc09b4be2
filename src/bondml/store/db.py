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

from ..constants import BOND_TYPES, LABEL_WINDOW, STUDY_COMPOSITIONS
from ..errors import InputFileError, StoreError
from ..features.soap import PAPER_SETTINGS, FeatureSettings
from ..io.getl import SubRunFiles, tree_root, discover, subrun_path
from ..types import CellId
from ..util import atomic_write_bytes, atomic_write_json, code_version, pid_lock, sha256_file, sha256_json
from .dataset import BondDataset
from .extract import CellExtract, extract_cell

STORE_FORMAT = 1


def _table_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def _write_table(path: Path, table: pa.Table) -> None:
    atomic_write_bytes(path, _table_bytes(table))


@dataclass
class IngestReport:
    """What an ingest did: cells added, unchanged, failed (with one-line reasons), the version."""

    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    version: str = ""
    version_changed: bool = False
    seconds: float = 0.0


class BondStore:
    """A bond database folder. Open with ``BondStore(path)``; ``create=True`` makes a new one."""

    def __init__(self, path: str | Path, create: bool = False,
                 settings: FeatureSettings = PAPER_SETTINGS) -> None:
        self.path = Path(path)
        meta = self.path / "store.json"
        if meta.is_file():
            try:
                d = json.loads(meta.read_text())
            except json.JSONDecodeError:
                raise StoreError(f"{meta}: corrupt store metadata") from None
            if d.get("format", 0) > STORE_FORMAT:
                raise StoreError(f"{meta}: store format {d['format']} is newer than this bondml ({STORE_FORMAT})")
            self.settings = FeatureSettings.from_dict(d["settings"])
            if create and self.settings != settings:
                self.settings.require_same(settings, f"store {self.path}")
        elif create:
            self.path.mkdir(parents=True, exist_ok=True)
            self.settings = settings
            atomic_write_json(meta, {"format": STORE_FORMAT, "settings": settings.to_dict(),
                                     "created_by": code_version()})
        else:
            raise StoreError(f"{self.path}: not a bondml store (no store.json); run 'bondml ingest' first")

    # ------------------------------------------------------------------ locking
    def _lock(self) -> contextlib.AbstractContextManager[None]:
        return pid_lock(self.path / ".lock", lambda pid: StoreError(
            f"{self.path}: store is in use by process {pid}"))

    # ------------------------------------------------------------------ ingest
    def fingerprint(self, folder: Path, cell: CellId) -> str:
        """Content fingerprint of a sub-run's inputs plus the store's SOAP settings."""
        f = SubRunFiles(folder, cell.nc)
        parts: dict[str, Any] = {"cell": str(cell), "settings": self.settings.to_dict(),
                                 "format": STORE_FORMAT}
        for p in (f.xyz, f.icohplist, f.scf_out, f.lobsterout):
            parts[p.name] = sha256_file(p) if p.is_file() else None
        return sha256_json(parts)[:16]

    def _object_dir(self, cell: CellId, fp: str) -> Path:
        return self.path / "cells" / cell.key / fp

    def _write_object(self, ex: CellExtract, fp: str) -> None:
        d = self._object_dir(ex.cell, fp)
        d.mkdir(parents=True, exist_ok=True)
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
            _write_table(d / "atoms.parquet", pa.table(cols))
        if ex.bonds is not None:
            b = ex.bonds
            y = ex.minus_icohp if ex.minus_icohp is not None else np.full(len(b), np.nan)
            _write_table(d / "bonds.parquet", pa.table({
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
            "fingerprint": fp,
            "status": ex.status.status, "reason": ex.status.reason,
            "labelled": ex.status.labelled and ex.error is None,
            "error": ex.error, "sources": ex.sources, "unmatched": ex.unmatched,
            "label_source": ex.label_source, "details": ex.status.details,
            "cell_matrix": ex.atoms.cell.array.tolist() if ex.atoms is not None else None,
            "n_atoms": len(ex.atoms) if ex.atoms is not None else 0,
            "settings": self.settings.to_dict(), "code": code_version(),
        }
        atomic_write_json(d / "cell.json", meta)  # written last: the object is complete

    def ingest(self, root: str | Path, progress: Callable[[CellId, str], None] | None = None) -> IngestReport:
        """Add every sub-run found under a GETL ``root``; idempotent and resumable.

        Cells whose inputs are unchanged are skipped (found by fingerprint). A bad sub-run gets
        its status and error line but never stops the ingest nor touches stored objects.
        """
        t0 = time.perf_counter()
        rep = IngestReport()
        with self._lock():
            top = tree_root(root)
            entries: dict[str, dict[str, Any]] = {}
            cur = self.current_version(required=False)
            if cur is not None:
                entries = {e["key"]: e for e in self.read_version(cur)["cells"]}
            for cell in discover(root):
                folder = subrun_path(top, cell)
                fp = self.fingerprint(folder, cell)
                obj = self._object_dir(cell, fp)
                if (obj / "cell.json").is_file():
                    rep.unchanged.append(str(cell))
                    meta = json.loads((obj / "cell.json").read_text())
                else:
                    ex = extract_cell(folder, cell, self.settings)
                    self._write_object(ex, fp)
                    meta = json.loads((obj / "cell.json").read_text())
                    rep.added.append(str(cell))
                if meta.get("error"):
                    rep.errors[str(cell)] = meta["error"]
                entries[cell.key] = {"key": cell.key, "nc": cell.nc, "run": cell.run, "sub_run": cell.sub_run,
                                     "fingerprint": fp, "status": meta["status"], "reason": meta["reason"],
                                     "labelled": meta["labelled"], "error": meta.get("error"),
                                     "source_root": str(Path(root).resolve())}
                if progress:
                    progress(cell, meta["status"])
            rep.version, rep.version_changed = self._commit_version(list(entries.values()))
        rep.seconds = time.perf_counter() - t0
        return rep

    # ------------------------------------------------------------------ versions
    def _commit_version(self, cells: list[dict[str, Any]]) -> tuple[str, bool]:
        cells = sorted(cells, key=lambda e: (e["nc"], e["run"], e["sub_run"]))
        content = {"cells": [{k: e[k] for k in ("key", "nc", "run", "sub_run", "fingerprint", "status",
                                                "labelled")} for e in cells],
                   "settings": self.settings.to_dict(), "format": STORE_FORMAT}
        h = sha256_json(content)[:16]
        vpath = self.path / "versions" / f"{h}.json"
        changed = self.current_version(required=False) != h
        if not vpath.is_file():
            self._write_tables(h, cells)
            lineage = {"code": code_version(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       "parent": self.current_version(required=False)}
            atomic_write_json(vpath, {**content, "hash": h, "lineage": lineage,
                                      "cells": cells})
        if changed:
            atomic_write_bytes(self.path / "HEAD", (h + "\n").encode())
        return h, changed

    def _write_tables(self, h: str, cells: list[dict[str, Any]]) -> None:
        """Materialise the per-type bond tables (the DBI) and the cell table of a version."""
        out = self.path / "tables" / h
        per_type: dict[str, list[pa.Table]] = {t: [] for t in BOND_TYPES}
        for e in cells:
            obj = self._object_dir(CellId(e["nc"], e["run"], e["sub_run"]), e["fingerprint"])
            bp = obj / "bonds.parquet"
            if not bp.is_file():
                continue
            t = pq.read_table(bp)
            n = t.num_rows
            t = t.append_column("nc", pa.array([e["nc"]] * n)).append_column(
                "run", pa.array(np.full(n, e["run"], np.int32))).append_column(
                "sub_run", pa.array(np.full(n, e["sub_run"], np.int32))).append_column(
                "status", pa.array([e["status"]] * n)).append_column(
                "label_source", pa.array(["lobster" if e["labelled"] else "none"] * n))
            for bt in BOND_TYPES:
                sub = t.filter(pa.compute.equal(t["type"], bt))
                if sub.num_rows:
                    per_type[bt].append(sub)
        for bt, parts in per_type.items():
            if parts:
                tab = pa.concat_tables(parts)
                cols = ["nc", "run", "sub_run", "i", "j", "sx", "sy", "sz", "distance", "minus_icohp",
                        "label_source", "status"]
                _write_table(out / f"{bt}.parquet", tab.select(cols))
        _write_table(out / "cells.parquet", pa.table({
            k: pa.array([e[k] for e in cells]) for k in ("nc", "run", "sub_run", "status", "reason", "fingerprint")
        }))

    def current_version(self, required: bool = True) -> str | None:
        head = self.path / "HEAD"
        if head.is_file():
            return head.read_text().strip()
        if required:
            raise StoreError(f"{self.path}: the store holds no version yet; run 'bondml ingest'")
        return None

    def versions(self) -> list[dict[str, Any]]:
        """Every dataset version with its hash, creation time and cell count."""
        out = []
        for p in sorted((self.path / "versions").glob("*.json")):
            d = json.loads(p.read_text())
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
        return json.loads(p.read_text())

    # ------------------------------------------------------------------ queries
    def cells(self, version: str | None = None) -> list[dict[str, Any]]:
        return self.read_version(version)["cells"]

    def bond_table(self, bond_type: str, version: str | None = None) -> pa.Table:
        """The DBI table of one bond type for a version (all bonds 1.80-4.20 A, NaN = unlabelled)."""
        v = self.read_version(version)["hash"]
        p = self.path / "tables" / v / f"{bond_type}.parquet"
        if not p.is_file():
            return pa.table({})
        return pq.read_table(p)

    def query(self, sql: str, version: str | None = None) -> Any:
        """Run SQL with duckdb over the version's tables, exposed as views ``bonds`` (all types,
        with a ``type`` column) and ``cells``. Returns a list of row tuples."""
        import duckdb

        v = self.read_version(version)["hash"]
        tdir = self.path / "tables" / v
        con = duckdb.connect()
        files = [str(tdir / f"{t}.parquet") for t in BOND_TYPES if (tdir / f"{t}.parquet").is_file()]
        if files:
            unions = " UNION ALL ".join(
                f"SELECT *, '{Path(f).stem}' AS type FROM read_parquet('{f}')" for f in files)
            con.execute(f"CREATE VIEW bonds AS {unions}")
        con.execute(f"CREATE VIEW cells AS SELECT * FROM read_parquet('{tdir / 'cells.parquet'}')")
        return con.execute(sql).fetchall()

    def info(self, version: str | None = None, label_window: tuple[float, float] = LABEL_WINDOW) -> dict[str, Any]:
        """Inventory: cells with status, labelled bonds per type in ``label_window``, label statistics."""
        ver = self.read_version(version)
        cells = [{"nc": c["nc"], "run": c["run"], "sub_run": c["sub_run"], "status": c["status"],
                  "reason": c.get("reason", ""), "error": c.get("error")} for c in ver["cells"]]
        bonds: dict[str, int] = {}
        stats: dict[str, dict[str, float]] = {}
        for t in BOND_TYPES:
            tab = self.bond_table(t, ver["hash"])
            if tab.num_rows == 0:
                bonds[t] = 0
                continue
            d = tab["distance"].to_numpy()
            y = tab["minus_icohp"].to_numpy(zero_copy_only=False)
            lab = (tab["label_source"].to_numpy(zero_copy_only=False) == "lobster") & ~np.isnan(y)
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
            b = pq.read_table(obj / "bonds.parquet").to_pydict()
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
                bt_soap = pq.read_table(obj / "bonds.parquet", columns=["soap"])
                soap = np.asarray(bt_soap["soap"].combine_chunks().flatten().to_numpy()).reshape(
                    bt_soap.num_rows, -1)[keep]
                rows_i = rows_j = np.arange(n)
            else:
                at = pq.read_table(obj / "atoms.parquet", columns=["soap"])
                soap = np.asarray(at["soap"].combine_chunks().flatten().to_numpy()).reshape(at.num_rows, -1)
                rows_i, rows_j = i[keep], j[keep]
            add = {"bond_type": bt[keep], "distance": d[keep], "y": y[keep],
                   "nc": np.full(n, c["nc"]).astype(str), "run": np.full(n, c["run"], np.int64),
                   "sub_run": np.full(n, c["sub_run"], np.int64), "i": i[keep], "j": j[keep],
                   "shift": sh[keep], "label_source": np.full(n, "lobster").astype(str),
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
                                    "code": code_version()})

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
        for t in types or BOND_TYPES:
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
        atomic_write_json(self.path / "selections" / f"{name}.json", sel)
        return sel

    def read_selection(self, name: str) -> dict[str, Any]:
        p = self.path / "selections" / f"{name}.json"
        if not p.is_file():
            raise StoreError(f"{self.path}: no selection named {name!r} (have: {', '.join(self.selection_names()) or 'none'})")
        return json.loads(p.read_text())

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
        out = self.path / "labels" / name
        counts = {}
        for t, tab in tables.items():
            _write_table(out / f"{t}.parquet", tab)
            counts[t] = tab.num_rows
        atomic_write_json(out / "meta.json", {"source": str(folder.resolve()), "counts": counts, **extras,
                                              "code": code_version()})
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
        for t in BOND_TYPES:
            sub = ds.of_type(t)
            if len(sub) == 0:
                continue
            swap = elements[sub.atom_i] != t.split("-")[0]
            prefix = selection or f"v{ds.lineage['version'][:8]}"
            written[t] = write_bnd(out / f"{prefix}_{t}.bnd", sub, ncs_order, swap=swap)
        return written


def _elements_of(obj: Path) -> np.ndarray:
    return np.asarray(pq.read_table(obj / "atoms.parquet", columns=["element"])["element"].to_pylist())


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

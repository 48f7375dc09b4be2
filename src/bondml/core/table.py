"""One columnar bond table with units in its schema.

Also the one implementation of the bond-container operations (``select``, ``of_type``,
``counts``, ``groups``) that every bond container of bondml shares (:class:`BondDataset`,
:class:`~bondml.evaluate.tables.LabelTable`,
:class:`~bondml.structure.bonds.Bonds`, the API's :class:`BondPredictions`).

Columns are numpy arrays of equal length n (``shift`` is (n, 3)). Units live in
:data:`BOND_SCHEMA` and travel into Arrow field metadata (``unit``) and pandas ``attrs``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True)
class Column:
    """Schema entry of a bond column: numpy dtype kind, unit ("" = dimensionless) and meaning."""

    dtype: str
    unit: str
    doc: str


#: Every bond column bondml uses, with its unit. Atom indices are 0-based unless a file format
#: says otherwise (the original ``.bnd`` tables: 1-based, kept as read in ``LabelTable``).
BOND_SCHEMA: dict[str, Column] = {
    "i": Column("int64", "", "index of the first atom (0-based)"),
    "j": Column("int64", "", "index of the second atom (0-based)"),
    "bond_type": Column("str", "", "paper bond type, heavier element first (Zr-Cu)"),
    "type": Column("str", "", "bond type (structure.Bonds' name for bond_type)"),
    "shift": Column("int64", "", "(n, 3) lattice shift: bond vector r_j + shift @ cell - r_i"),
    "distance": Column("float64", "Angstrom", "bond length"),
    "y": Column("float64", "eV", "label: -ICOHP (positive = bonding)"),
    "minus_icohp": Column("float64", "eV", "-ICOHP (positive = bonding)"),
    "std": Column("float64", "eV", "predictive standard deviation of -ICOHP"),
    "flags": Column("str", "", "comma-separated flags: fallback (distance-only model), out_of_domain"),
    "fallback": Column("bool", "", "distance-only fallback model used"),
    "out_of_domain": Column("bool", "", "distance outside training range or std above threshold"),
    "nc": Column("str", "", "composition name (Zr49Cu49Al2)"),
    "run": Column("int64", "", "MD run (ID_RUN)"),
    "sub_run": Column("int64", "", "sub-run (0 = quenched cell, 1..14 augmentations)"),
    "label_source": Column("str", "", "where the label came from (lobster, xtb-gfn1)"),
    "source": Column("str", "", "label table name (PBSSDB, DB4, DB8)"),
    "atom_i": Column("int64", "", "row of atom i in the per-atom SOAP matrix"),
    "atom_j": Column("int64", "", "row of atom j in the per-atom SOAP matrix"),
}


def unit_of(column: str) -> str:
    """Unit of a bond column ("" when dimensionless or unknown)."""
    c = BOND_SCHEMA.get(column)
    return c.unit if c else ""


class BondColumns:
    """Mixin: the shared operations of a bond container.

    A frozen dataclass whose bond columns are listed in ``_columns`` (arrays of equal length);
    ``_type_column`` names the bond-type column.
    """

    _columns: ClassVar[tuple[str, ...]] = ()
    _type_column: ClassVar[str] = "bond_type"

    def __len__(self) -> int:
        return int(np.asarray(getattr(self, self._columns[0])).shape[0])

    def select(self, mask: np.ndarray) -> Any:
        """Subset of bonds (boolean mask or index array); other fields are shared, not copied."""
        return replace(self, **{k: getattr(self, k)[mask] for k in self._columns})  # type: ignore[type-var]

    def of_type(self, bond_type: str) -> Any:
        """The bonds of one type (e.g. ``"Zr-Cu"``)."""
        return self.select(np.asarray(getattr(self, self._type_column)) == bond_type)

    def _col(self, name: str) -> np.ndarray:
        return np.asarray(getattr(self, name))

    def to_table(self) -> BondTable:
        """The bond columns as a :class:`BondTable`, e.g. ``ds.to_table().to_pandas()``.

        Units come with its schema; ``type`` is renamed ``bond_type`` and the label ``y``
        ``minus_icohp``.
        """
        rename = {"type": "bond_type", "y": "minus_icohp"}
        return BondTable({rename.get(k, k): self._col(k) for k in self._columns})

    def counts(self) -> dict[str, int]:
        """Number of bonds per type: every type of the study (zeros included), then any other type present."""
        u, c = np.unique(self._col(self._type_column).astype(str), return_counts=True)
        d = dict(zip(u.tolist(), c.tolist(), strict=True))
        from ..chemistry import types_in_order

        return {t: int(d.get(t, 0)) for t in types_in_order(d)}

    def groups(self, level: str = "cell") -> np.ndarray:
        """Group label per bond for grouped splits: ``cell`` (nc/run/sub-run), ``run`` or ``nc``."""
        nc = self._col("nc").astype(str)
        if level == "nc":
            return nc
        g = np.char.add(np.char.add(nc, "/"), self._col("run").astype(str))
        if level == "run":
            return g
        if level == "cell":
            return np.char.add(np.char.add(g, "/"), self._col("sub_run").astype(str))
        raise ValueError(f"unknown group level {level!r}; use cell, run or nc")


@dataclass(frozen=True)
class BondTable(BondColumns):
    """A generic columnar bond table.

    ``columns`` {name: array (n,) or (n, 3)}; units from :data:`BOND_SCHEMA`. Columns are also
    attributes (``table.distance``).

    >>> import numpy as np
    >>> t = BondTable({"i": np.array([0, 1]), "j": np.array([1, 2]), "bond_type": np.array(["Zr-Cu", "Cu-Cu"]),
    ...                "distance": np.array([2.9, 2.5])})
    >>> len(t), t.of_type("Cu-Cu").distance.tolist(), t.unit("distance")
    (2, [2.5], 'Angstrom')
    """

    columns: Mapping[str, np.ndarray]
    meta: Mapping[str, Any] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        cols = {k: np.asarray(v) for k, v in self.columns.items()}
        n = {v.shape[0] for v in cols.values()}
        if len(n) > 1:
            raise ValueError(f"bond columns of unequal length: {sorted(n)}")
        object.__setattr__(self, "columns", cols)
        object.__setattr__(self, "meta", dict(self.meta or {}))

    def __getattr__(self, name: str) -> np.ndarray:
        cols = self.__dict__.get("columns", {})
        if name in cols:
            return cols[name]
        raise AttributeError(name)

    def __len__(self) -> int:
        return int(next(iter(self.columns.values())).shape[0]) if self.columns else 0

    def select(self, mask: np.ndarray) -> BondTable:
        """Subset of rows (boolean mask or index array)."""
        return type(self)({k: v[mask] for k, v in self.columns.items()}, self.meta)

    def unit(self, column: str) -> str:
        """Unit of ``column`` (Angstrom, eV or "")."""
        return unit_of(column)

    @property
    def schema(self) -> dict[str, Column]:
        """Schema entries of the columns present."""
        return {k: BOND_SCHEMA.get(k, Column(str(v.dtype), "", "")) for k, v in self.columns.items()}

    def _flat(self) -> dict[str, np.ndarray]:
        out = {}
        for k, v in self.columns.items():
            if v.ndim == 2:
                for n, ax in enumerate("xyz"[: v.shape[1]]):
                    out[f"{k}_{ax}"] = v[:, n]
            else:
                out[k] = v
        return out

    def to_pandas(self) -> Any:
        """A pandas DataFrame (2-D columns split into ``<name>_x/_y/_z``); units in ``df.attrs["units"]``."""
        import pandas as pd

        df = pd.DataFrame(self._flat())
        df.attrs["units"] = {k: unit_of(k) for k in self.columns if unit_of(k)}
        return df

    def to_arrow(self) -> Any:
        """A pyarrow Table; each field's metadata holds its ``unit`` and description."""
        import pyarrow as pa

        arrays, flds = [], []
        for k, v in self._flat().items():
            base = k.rsplit("_", 1)[0] if k not in BOND_SCHEMA and k.rsplit("_", 1)[0] in BOND_SCHEMA else k
            a = pa.array(v.tolist() if v.dtype.kind in "OU" else v)
            col = BOND_SCHEMA.get(base)
            md = {"unit": col.unit, "doc": col.doc} if col else {}
            arrays.append(a)
            flds.append(pa.field(k, a.type, metadata=md or None))
        return pa.Table.from_arrays(arrays, schema=pa.schema(flds, metadata={"producer": "bondml"}))


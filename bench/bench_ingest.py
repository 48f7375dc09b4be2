"""Full ingest of the reference tree: first ingest, idempotent re-ingest, and where the time goes.

Prints one table; ratios are measured side by side in this run.
Usage: .venv/bin/python bench/bench_ingest.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from ase.io import read

from bondml.data import reference_root
from bondml.features.soap import PAPER_SETTINGS, compute_soap
from bondml.io.getl import classify, discover, subrun_path
from bondml.io.lobster import read_icohplist
from bondml.store.db import BondStore
from bondml.structure.bonds import find_bonds, match_pairs


def main() -> None:
    root = reference_root()
    cells = discover(root)
    with tempfile.TemporaryDirectory() as tmp:
        store = BondStore(Path(tmp) / "db", create=True)
        t0 = time.perf_counter()
        rep = store.ingest(root)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        rep2 = store.ingest(root)
        again = time.perf_counter() - t0
        assert rep2.version == rep.version and not rep2.added
    steps = {"classify": 0.0, "read xyz": 0.0, "read ICOHPLIST": 0.0, "bonds+match": 0.0, "SOAP (quippy)": 0.0}
    for c in cells:
        d = subrun_path(root, c)
        t = time.perf_counter()
        st = classify(d, c.nc)
        steps["classify"] += time.perf_counter() - t
        t = time.perf_counter()
        a = read(d / f"{c.nc}.xyz")
        steps["read xyz"] += time.perf_counter() - t
        if st.labelled:
            t = time.perf_counter()
            lst = read_icohplist(d / "ICOHPLIST.lobster")
            steps["read ICOHPLIST"] += time.perf_counter() - t
            t = time.perf_counter()
            b = find_bonds(a)
            match_pairs(b, lst.i, lst.j, lst.shift)
            steps["bonds+match"] += time.perf_counter() - t
        t = time.perf_counter()
        compute_soap(a, PAPER_SETTINGS)
        steps["SOAP (quippy)"] += time.perf_counter() - t
    print(f"reference tree: {len(cells)} sub-runs, {len(rep.added)} ingested")
    print(f"{'first ingest':<28s}{first:8.2f} s   ({first / len(cells) * 1e3:.0f} ms per sub-run)")
    print(f"{'re-ingest (unchanged)':<28s}{again:8.3f} s   ratio first/re-ingest = {first / again:.0f}x")
    print("breakdown of the work per sub-run (ms):")
    for k, v in steps.items():
        print(f"  {k:<26s}{v / len(cells) * 1e3:8.1f}")
    rest = first - sum(steps.values())
    print(f"  {'hashing + Parquet writes':<26s}{max(rest, 0) / len(cells) * 1e3:8.1f}")


if __name__ == "__main__":
    main()

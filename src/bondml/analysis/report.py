"""``bondml analyze``: every analysis of a predict run, as PNGs plus a Markdown and an HTML report.

Streams the run frame by frame (two frames at a time for bond exchange), so memory does not grow
with the number of frames.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import BOND_TYPES
from ..deploy.outputs import frames_available, read_bonds, read_peratom
from ..errors import InputFileError
from ..util import atomic_write_json, atomic_write_text
from .distributions import TypeDistributions, data_edges, plot_distributions, type_distributions
from .exchange import bond_exchange, plot_exchange
from .maps import plot_slice_maps, slice_map
from .peratom import StressCorrelation, plot_stress_correlation, stress_correlation
from .stress import StressStrain, plot_stress_strain, stress_strain_from_thermo
from .strongest import extreme_bonds, plot_extreme_bonds


@dataclass
class Section:
    """One report section: title, Markdown text, image file name."""

    title: str
    text: str
    image: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def _stack_distributions(parts: list[TypeDistributions]) -> TypeDistributions:
    def cat(attr: str) -> dict[str, np.ndarray]:
        return {t: np.concatenate([getattr(p, attr)[t] for p in parts]) for t in BOND_TYPES}

    return TypeDistributions(
        np.concatenate([p.strain for p in parts]), parts[0].icohp_edges, parts[0].distance_edges,
        cat("hist_icohp"), cat("hist_distance"), cat("mean_icohp"), cat("std_icohp"), cat("mean_distance"),
        cat("count"),
    )


def _find_thermo(run_dir: Path) -> Path | None:
    man = json.loads((run_dir / "manifest.json").read_text())
    cand = Path(man["input"]["path"]).parent / "thermo.csv"
    return cand if cand.is_file() else None


def analyze(run_dir: str | Path, out_dir: str | Path, thermo_csv: str | Path | None = None,
            slice_thickness: float = 5.0, bins: int = 60) -> Path:
    """Write ``report.md``, ``report.html``, ``analysis.json`` and PNGs into ``out_dir``; returns the HTML path."""
    run_dir, out = Path(run_dir), Path(out_dir)
    if not (run_dir / "manifest.json").is_file():
        raise InputFileError(run_dir, "not a bondml predict output (no manifest.json)")
    out.mkdir(parents=True, exist_ok=True)
    frames = frames_available(run_dir)
    if not frames:
        raise InputFileError(run_dir, "no finished frames")
    thermo_csv = Path(thermo_csv) if thermo_csv else _find_thermo(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").is_file() else {}
    note = protocol_note(thermo_csv, summary)
    ie, de = _edges(run_dir, frames)
    dists, corr_parts, curve_pa = [], [], []
    first_pa = last_pa = None
    for f in frames:
        b = read_bonds(run_dir, [f], ["strain", "type", "minus_icohp", "distance"])
        dists.append(type_distributions(np.full(b.num_rows, f), b["strain"].to_numpy(),
                                        b["type"].to_numpy(zero_copy_only=False),
                                        b["minus_icohp"].to_numpy().astype(float),
                                        b["distance"].to_numpy().astype(float), ie, de))
        pa_t = read_peratom(run_dir, [f])
        if "pressure" in pa_t.column_names:
            cols = {c: pa_t[c].to_numpy(zero_copy_only=False)
                    for c in ("strain", "element", "sum_micohp", "pressure", "sxx")}
            corr_parts.append(stress_correlation(np.full(pa_t.num_rows, f), cols["strain"], cols["element"],
                                                 cols["sum_micohp"], cols["pressure"]))
            curve_pa.append((cols["strain"][0], -float(np.mean(cols["sxx"]))))
        if f == frames[0]:
            first_pa = pa_t
        last_pa = pa_t
    sections: list[Section] = []
    sections.append(_overview(run_dir, frames, summary, note))
    sections.append(_stress_section(out, thermo_csv, curve_pa, note))
    sections.append(_distribution_section(out, _stack_distributions(dists), note))
    sections.append(_extremes_section(out, run_dir, frames, note))
    if corr_parts:
        sections.append(_correlation_section(out, corr_parts, last_pa, note))
    if len(frames) > 1:
        sections.append(_exchange_section(out, run_dir, note))
    sections.append(_map_section(out, first_pa, last_pa, slice_thickness, bins, run_dir, note))
    atomic_write_json(out / "analysis.json", {s.title: s.data for s in sections})
    atomic_write_text(out / "report.md", _markdown(sections))
    atomic_write_text(out / "report.html", _html(sections, out))
    return out / "report.html"


def protocol_note(thermo_csv: Path | None, summary: dict[str, Any]) -> str:
    """"SCALED-DOWN DEMO ..." when the MD protocol beside the thermo table is not the study's
    (strain rate above 1e7 1/s or fewer than 10,000 atoms); empty otherwise or when unknown."""
    if thermo_csv is None or not (Path(thermo_csv).parent / "protocol.json").is_file():
        return ""
    p = json.loads((Path(thermo_csv).parent / "protocol.json").read_text())
    rate, n = float(p.get("strain_rate_per_s", 1e7)), int(summary.get("n_atoms", 10000) or 10000)
    if rate <= 1.01e7 and n >= 10000:
        return ""
    return (f"SCALED-DOWN DEMO: {n} atoms, strain rate {rate:.0e} 1/s (study: 10,000 atoms, 1e7 1/s); "
            "approximate, not the study's result")


def _edges(run_dir: Path, frames: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Histogram edges from the full data range of every frame (-ICOHP eV, length A)."""
    import pyarrow.compute as pc

    lo_i = lo_d = np.inf
    hi_i = hi_d = -np.inf
    for f in frames:
        b = read_bonds(run_dir, [f], ["minus_icohp", "distance"])
        if not b.num_rows:
            continue
        mi, md = pc.min_max(b["minus_icohp"]), pc.min_max(b["distance"])
        lo_i, hi_i = min(lo_i, mi["min"].as_py()), max(hi_i, mi["max"].as_py())
        lo_d, hi_d = min(lo_d, md["min"].as_py()), max(hi_d, md["max"].as_py())
    if not np.isfinite(lo_i):
        return data_edges(0.0, 1.0), data_edges(2.0, 4.0)
    return data_edges(lo_i, hi_i, 160), data_edges(lo_d, hi_d, 120)


def _overview(run_dir: Path, frames: list[int], summary: dict[str, Any], note: str = "") -> Section:
    counts = summary.get("bonds", {})
    rows = "\n".join(f"| {t} | {counts.get(t, 0)} |" for t in BOND_TYPES)
    text = ((f"**{note}.**\n\n" if note else "")
            + f"Predictions `{run_dir.name}`: {len(frames)} frames, {summary.get('n_atoms', '?')} atoms, "
            f"{summary.get('seconds_per_frame', float('nan')):.2f} s per frame; "
            f"{100 * summary.get('fraction_out_of_domain', 0):.1f} % of bond predictions flagged out of domain, "
            f"{100 * summary.get('fraction_fallback', 0):.2f} % from the distance-only fallback.\n\n"
            f"| bond type | bonds in frame 0 |\n|---|---|\n{rows}\n")
    return Section("Overview", text, None, {"frames": len(frames), "bonds_first_frame": counts})


def _stress_section(out: Path, thermo_csv: Path | None, curve_pa: list[tuple[float, float]], note: str = "") -> Section:
    from ..md.compress import read_thermo

    curves: list[StressStrain] = []
    if thermo_csv is not None:
        curves.append(stress_strain_from_thermo(read_thermo(thermo_csv)))
    if curve_pa:
        a = np.array(curve_pa)
        curves.append(StressStrain(a[:, 0], a[:, 1], "per-atom"))
    if not curves:
        return Section("Stress-strain", "No thermo table and no per-atom stress in this run.")
    plot_stress_strain(curves, out / "stress_strain.png", note=note)
    e, s = curves[0].peak
    start = ""
    if thermo_csv is not None:
        th = read_thermo(thermo_csv)
        first = th["time_ps"] <= th["time_ps"][0] + 1.0
        start = (f" The compression starts (first ps) at {th['temperature_k'][first].mean():.0f} K and "
                 f"{np.mean([th[a][first].mean() for a in ('pxx_gpa', 'pyy_gpa', 'pzz_gpa')]):.2f} GPa mean pressure "
                 "(equilibrated by NVT then zero-pressure NPT).")
    text = (f"Compressive stress along x (GPa, positive in compression) vs engineering strain; "
            f"source: {', '.join(c.source for c in curves)}; the thermo curve is smoothed by a running mean with a "
            f"±1σ band of the raw points.{start} Raw peak {s:.2f} GPa at {100 * e:.1f} % strain "
            "(original 10k run: about 2.47 GPa near -6 %). The per-atom curve is minus the mean per-atom "
            "stress s_xx of the frames (equal to the global stress by construction).")
    return Section("Stress-strain", text, "stress_strain.png",
                   {"peak_strain": e, "peak_stress_gpa": s, "strain": curves[0].strain,
                    "stress_gpa": curves[0].stress_gpa})


def _distribution_section(out: Path, d: TypeDistributions, note: str = "") -> Section:
    plot_distributions(d, out / "distributions.png", out / "distribution_trends.png", note=note)
    rows = "\n".join(
        f"| {t} | {d.count[t][0]} | {d.mean_icohp[t][0]:.3f} | {d.mean_icohp[t][-1]:.3f} | "
        f"{d.mean_distance[t][0]:.3f} | {d.mean_distance[t][-1]:.3f} |" for t in BOND_TYPES)
    text = ("-ICOHP (eV) and bond length (Angstrom) per type, first vs last frame (top image: densities on the "
            f"data's full range, {d.icohp_edges[0]:.2f} to {d.icohp_edges[-1]:.2f} eV and {d.distance_edges[0]:.2f} to "
            f"{d.distance_edges[-1]:.2f} A, every bond counted; Gaussian-smoothed with the Poisson ±1σ band), and the "
            "means vs strain with their standard errors (second image).\n\n"
            "| type | n (frame 0) | mean -ICOHP first | last | mean d first | last |\n"
            f"|---|---|---|---|---|---|\n{rows}\n\n![trends](distribution_trends.png)")
    return Section("Bond strength and length distributions", text, "distributions.png",
                   {"strain": d.strain, "mean_icohp": d.mean_icohp, "mean_distance": d.mean_distance, "count": d.count})


def _correlation_section(out: Path, parts: list[StressCorrelation], last: Any, note: str = "") -> Section:
    c = StressCorrelation(np.concatenate([p.strain for p in parts]), np.concatenate([p.pearson for p in parts]),
                          np.concatenate([p.spearman for p in parts]),
                          {e: np.concatenate([p.pearson_by_element.get(e, np.full(p.strain.size, np.nan))
                                              for p in parts])
                           for e in parts[0].pearson_by_element})
    plot_stress_correlation(c, last["element"].to_numpy(zero_copy_only=False), last["sum_micohp"].to_numpy(),
                            last["pressure"].to_numpy(), out / "peratom_stress.png", note=note)
    text = ("Per-atom sum of -ICOHP (eV) against per-atom pressure (GPa; -trace(stress)/3 with the mean atomic "
            f"volume). Pearson r in frame 0: {c.pearson[0]:.3f}, last frame: {c.pearson[-1]:.3f}; per element "
            + ", ".join(f"{e} {v[-1]:.3f}" for e, v in c.pearson_by_element.items()) + " (last frame).")
    return Section("Per-atom bond strength vs stress", text, "peratom_stress.png",
                   {"strain": c.strain, "pearson": c.pearson, "spearman": c.spearman,
                    "by_element": c.pearson_by_element})


def _exchange_section(out: Path, run_dir: Path, note: str = "") -> Section:
    ex = bond_exchange(run_dir)
    plot_exchange(ex, out / "exchange.png", note=note)
    tot = {k: {t: int(ex.series(k, t).sum()) for t in BOND_TYPES}
           for k in ("formed", "broken", "broken_flicker", "formed_flicker")}

    def mean(what: str, t: str, n: int) -> float:
        return float(np.nanmean(ex.series(what, t))) if n else float("nan")

    rows = "\n".join(
        f"| {t} | {tot['broken'][t] - tot['broken_flicker'][t]} | {tot['formed'][t] - tot['formed_flicker'][t]} | "
        f"{tot['broken_flicker'][t]} | {tot['formed_flicker'][t]} | {mean('micohp_broken', t, tot['broken'][t]):.3f} | "
        f"{mean('micohp_formed', t, tot['formed'][t]):.3f} |" for t in BOND_TYPES)
    text = (f"Bonds broken and formed between consecutive frames (matched by {ex.match}: "
            + ("(i, j, lattice shift) on unwrapped positions" if ex.match == "shift"
               else "(i, j), each pair having at most one bond")
            + "). Window-edge flicker (a bond that breaks and re-forms within two frames, or forms having broken "
            "within the two frames before: its length sits at the edge of the distance window) is counted apart "
            "from the persistent exchange.\n\n| type | broken (persistent) | formed (persistent) | broken (flicker) | "
            "formed (flicker) | mean -ICOHP broken (eV) | formed (eV) |\n|---|---|---|---|---|---|---|\n" + rows)
    return Section("Bond exchange", text, "exchange.png", {"strain": ex.strain, "match": ex.match, **tot})


def _extremes_section(out: Path, run_dir: Path, frames: list[int], note: str = "") -> Section:
    f = frames[-1]
    cols = ["i", "j", "type", "distance", "minus_icohp", "std", "strain"]
    t = read_bonds(run_dir, [f], cols)
    arr = {c: t[c].to_numpy(zero_copy_only=False) for c in cols}
    ext = extreme_bonds(arr["i"], arr["j"], arr["type"], arr["distance"], arr["minus_icohp"], arr["std"], n=5)
    eps = 100 * float(arr["strain"][0]) if t.num_rows else float("nan")
    plot_extreme_bonds(arr["type"], arr["distance"], arr["minus_icohp"], ext, out / "extreme_bonds.png",
                       title=f"frame {f} (strain {eps:.1f} %)", note=note)
    rows = []
    for bt, d in ext.items():
        for kind in ("strongest", "weakest"):
            for b in d[kind][:3]:
                rows.append(f"| {bt} | {kind} | {b.i}-{b.j} | {b.distance:.3f} | {b.minus_icohp:.3f} | {b.std:.3f} |")
    text = (f"The strongest and weakest predicted bonds of the last frame (strain {eps:.1f} %) in the context of every "
            "bond of their type: -ICOHP vs bond length (grey: counts per bin, log scale; orange: mean per length bin), "
            "the five strongest (red) and weakest (blue) with ±1 predicted σ. Atom pairs are 0-based rows "
            "(LAMMPS id - 1). No COHP(E) curves: the model predicts the integrated -ICOHP only.\n\n"
            "| type | which | atoms | length (A) | -ICOHP (eV) | σ (eV) |\n|---|---|---|---|---|---|\n"
            + "\n".join(rows))
    return Section("Strongest and weakest bonds", text, "extreme_bonds.png",
                   {t: {k: [b.to_dict() for b in v] for k, v in d.items()} for t, d in ext.items()})


def excess_bond_strength(element: np.ndarray, sum_micohp: np.ndarray) -> np.ndarray:
    """Per-atom sum of -ICOHP minus the mean of its element in the frame (eV): removes chemistry
    (a Zr atom has about twice the bond strength of a Cu atom) and leaves the structural signal."""
    el = np.asarray(element).astype(str)
    out = np.asarray(sum_micohp, float).copy()
    for e in np.unique(el):
        m = el == e
        out[m] -= out[m].mean()
    return out


def _map_section(out: Path, first: Any, last: Any, thickness: float, bins: int, run_dir: Path,
                 note: str = "") -> Section:
    maps = []
    for name, t in (("first frame", first), ("last frame", last)):
        pos = np.column_stack([t[c].to_numpy() for c in ("x", "y", "z")])
        frame = int(t["frame"][0].as_py())
        cell = _cell_of(run_dir, frame)
        val = excess_bond_strength(t["element"].to_numpy(zero_copy_only=False), t["sum_micohp"].to_numpy())
        maps.append((f"{name} (strain {100 * float(t['strain'][0].as_py()):.1f} %)",
                     slice_map(pos, cell, val, "z", 0.5, thickness, bins, smooth=1.5)))
    plot_slice_maps(maps, out / "slice_maps.png", label="excess bond strength (eV)", cmap="RdBu_r", note=note)
    change = None
    if first is not last and first.num_rows == last.num_rows:  # the same atoms, rows sorted by id
        pos = np.column_stack([last[c].to_numpy() for c in ("x", "y", "z")])
        dv = last["sum_micohp"].to_numpy() - first["sum_micohp"].to_numpy()
        cm = slice_map(pos, _cell_of(run_dir, int(last["frame"][0].as_py())), dv, "z", 0.5, thickness, bins, smooth=1.5)
        plot_slice_maps([(f"last minus first frame (mean {dv.mean():+.3f} eV per atom)", cm)],
                        out / "slice_change.png", label="change of per-atom sum of -ICOHP (eV)", cmap="RdBu_r",
                        note=note)
        change = float(dv.mean())
    text = (f"Per-atom excess bond strength (sum of -ICOHP minus its element's mean in the frame, eV), "
            f"Gaussian-averaged (sigma 1.5 A) on a {bins}x{bins} grid in a {thickness:g} A thick slab through the "
            "middle of the cell (normal z); compression along x. Full per-atom values for OVITO: "
            "`peratom/frame_*.xyz` in the run folder.")
    if change is not None:
        text += ("\n\n![change map](slice_change.png)\n\nChange of each atom's sum of -ICOHP between the first "
                 "and the last frame, mapped at its last position, same slab and smoothing "
                 f"(mean {change:+.3f} eV per atom).")
    return Section("Spatial maps of bond strength", text, "slice_maps.png",
                   {"n_atoms_in_slab": [m.n_atoms for _, m in maps], "mean_change_eV": change})


def _cell_of(run_dir: Path, frame: int) -> np.ndarray:
    from ase.io import read

    a = read(run_dir / "peratom" / f"frame_{frame:05d}.xyz", format="extxyz")
    return np.asarray(a.cell.array)


def _markdown(sections: list[Section]) -> str:
    parts = ["# bondml deployment report\n"]
    for s in sections:
        parts.append(f"## {s.title}\n\n{s.text}\n")
        if s.image:
            parts.append(f"![{s.title}]({s.image})\n")
    return "\n".join(parts)


def _html(sections: list[Section], out: Path) -> str:
    from ..reporting import render_page

    return render_page(_markdown(sections), "bondml deployment report", base_dir=out,
                       footer="One self-contained file: figures embedded. Units: Angstrom, eV, GPa, ps.")

"""``bondml analyze``: every analysis of a predict run, as PNGs plus a Markdown and an HTML report.

Streams the run frame by frame (two frames at a time for bond exchange), so memory does not grow
with the number of frames.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import BOND_TYPES
from ..deploy.outputs import frames_available, read_bonds, read_peratom
from ..errors import InputFileError
from ..util import atomic_write_json, atomic_write_text
from .distributions import TypeDistributions, plot_distributions, type_distributions
from .exchange import bond_exchange, plot_exchange
from .maps import plot_slice_maps, slice_map
from .peratom import StressCorrelation, plot_stress_correlation, stress_correlation
from .stress import StressStrain, plot_stress_strain, stress_strain_from_thermo


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
    dists, corr_parts, curve_pa = [], [], []
    first_pa = last_pa = None
    for f in frames:
        b = read_bonds(run_dir, [f], ["strain", "type", "minus_icohp", "distance"])
        dists.append(type_distributions(np.full(b.num_rows, f), b["strain"].to_numpy(),
                                        b["type"].to_numpy(zero_copy_only=False), b["minus_icohp"].to_numpy().astype(float),
                                        b["distance"].to_numpy().astype(float)))
        pa_t = read_peratom(run_dir, [f])
        if "pressure" in pa_t.column_names:
            cols = {c: pa_t[c].to_numpy(zero_copy_only=False) for c in ("strain", "element", "sum_micohp", "pressure", "sxx")}
            corr_parts.append(stress_correlation(np.full(pa_t.num_rows, f), cols["strain"], cols["element"],
                                                 cols["sum_micohp"], cols["pressure"]))
            curve_pa.append((cols["strain"][0], -float(np.mean(cols["sxx"]))))
        if f == frames[0]:
            first_pa = pa_t
        last_pa = pa_t
    sections: list[Section] = []
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").is_file() else {}
    sections.append(_overview(run_dir, frames, summary))
    sections.append(_stress_section(out, thermo_csv, curve_pa))
    sections.append(_distribution_section(out, _stack_distributions(dists)))
    if corr_parts:
        sections.append(_correlation_section(out, corr_parts, last_pa))
    if len(frames) > 1:
        sections.append(_exchange_section(out, run_dir))
    sections.append(_map_section(out, first_pa, last_pa, slice_thickness, bins, run_dir))
    atomic_write_json(out / "analysis.json", {s.title: s.data for s in sections})
    atomic_write_text(out / "report.md", _markdown(sections))
    atomic_write_text(out / "report.html", _html(sections))
    return out / "report.html"


def _overview(run_dir: Path, frames: list[int], summary: dict[str, Any]) -> Section:
    counts = summary.get("bonds", {})
    rows = "\n".join(f"| {t} | {counts.get(t, 0)} |" for t in BOND_TYPES)
    text = (f"Run `{run_dir}`: {len(frames)} frames, {summary.get('n_atoms', '?')} atoms, "
            f"{summary.get('seconds_per_frame', float('nan')):.2f} s per frame; "
            f"{100 * summary.get('fraction_out_of_domain', 0):.1f} % of bond predictions flagged out of domain, "
            f"{100 * summary.get('fraction_fallback', 0):.2f} % from the distance-only fallback.\n\n"
            f"| bond type | bonds in frame 0 |\n|---|---|\n{rows}\n")
    return Section("Overview", text, None, {"frames": len(frames), "bonds_first_frame": counts})


def _stress_section(out: Path, thermo_csv: Path | None, curve_pa: list[tuple[float, float]]) -> Section:
    from ..deploy.md import read_thermo

    curves: list[StressStrain] = []
    if thermo_csv is not None:
        curves.append(stress_strain_from_thermo(read_thermo(thermo_csv)))
    if curve_pa:
        a = np.array(curve_pa)
        curves.append(StressStrain(a[:, 0], a[:, 1], "per-atom"))
    if not curves:
        return Section("Stress-strain", "No thermo table and no per-atom stress in this run.")
    plot_stress_strain(curves, out / "stress_strain.png")
    e, s = curves[0].peak
    text = (f"Compressive stress along x (GPa, positive in compression) vs engineering strain; "
            f"source: {', '.join(c.source for c in curves)}. Peak {s:.2f} GPa at {100 * e:.1f} % strain "
            "(original 10k run: about 2.47 GPa near -6 %). The per-atom curve is minus the mean per-atom "
            "stress s_xx of the frames (equal to the global stress by construction).")
    return Section("Stress-strain", text, "stress_strain.png", {"peak_strain": e, "peak_stress_gpa": s,
                                                                 "strain": curves[0].strain, "stress_gpa": curves[0].stress_gpa})


def _distribution_section(out: Path, d: TypeDistributions) -> Section:
    plot_distributions(d, out / "distributions.png", out / "distribution_trends.png")
    rows = "\n".join(
        f"| {t} | {d.count[t][0]} | {d.mean_icohp[t][0]:.3f} | {d.mean_icohp[t][-1]:.3f} | "
        f"{d.mean_distance[t][0]:.3f} | {d.mean_distance[t][-1]:.3f} |" for t in BOND_TYPES)
    text = ("-ICOHP (eV) and bond length (Angstrom) per type, first vs last frame (top image), and the "
            "means vs strain (second image).\n\n| type | n (frame 0) | mean -ICOHP first | last | mean d first | last |\n"
            f"|---|---|---|---|---|---|\n{rows}\n\n![trends](distribution_trends.png)")
    return Section("Bond strength and length distributions", text, "distributions.png",
                   {"strain": d.strain, "mean_icohp": d.mean_icohp, "mean_distance": d.mean_distance, "count": d.count})


def _correlation_section(out: Path, parts: list[StressCorrelation], last: Any) -> Section:
    c = StressCorrelation(np.concatenate([p.strain for p in parts]), np.concatenate([p.pearson for p in parts]),
                          np.concatenate([p.spearman for p in parts]),
                          {e: np.concatenate([p.pearson_by_element.get(e, np.full(p.strain.size, np.nan)) for p in parts])
                           for e in parts[0].pearson_by_element})
    plot_stress_correlation(c, last["element"].to_numpy(zero_copy_only=False), last["sum_micohp"].to_numpy(),
                            last["pressure"].to_numpy(), out / "peratom_stress.png")
    text = ("Per-atom sum of -ICOHP (eV) against per-atom pressure (GPa; -trace(stress)/3 with the mean atomic "
            f"volume). Pearson r in frame 0: {c.pearson[0]:.3f}, last frame: {c.pearson[-1]:.3f}; per element "
            + ", ".join(f"{e} {v[-1]:.3f}" for e, v in c.pearson_by_element.items()) + " (last frame).")
    return Section("Per-atom bond strength vs stress", text, "peratom_stress.png",
                   {"strain": c.strain, "pearson": c.pearson, "spearman": c.spearman, "by_element": c.pearson_by_element})


def _exchange_section(out: Path, run_dir: Path) -> Section:
    ex = bond_exchange(run_dir)
    plot_exchange(ex, out / "exchange.png")
    tot_f = {t: int(ex.series("formed", t).sum()) for t in BOND_TYPES}
    tot_b = {t: int(ex.series("broken", t).sum()) for t in BOND_TYPES}
    rows = "\n".join(f"| {t} | {tot_f[t]} | {tot_b[t]} | {np.nanmean(ex.series('micohp_formed', t)) if tot_f[t] else float('nan'):.3f} | "
                     f"{np.nanmean(ex.series('micohp_broken', t)) if tot_b[t] else float('nan'):.3f} |" for t in BOND_TYPES)
    text = (f"Bonds formed and broken between consecutive frames (matched by {ex.match}: "
            + ("(i, j, lattice shift) on unwrapped positions" if ex.match == "shift" else "(i, j), each pair having at most one bond")
            + ").\n\n| type | formed (total) | broken (total) | mean -ICOHP formed | broken |\n|---|---|---|---|---|\n" + rows)
    return Section("Bond exchange", text, "exchange.png", {"strain": ex.strain, "formed": tot_f, "broken": tot_b, "match": ex.match})


def excess_bond_strength(element: np.ndarray, sum_micohp: np.ndarray) -> np.ndarray:
    """Per-atom sum of -ICOHP minus the mean of its element in the frame (eV): removes chemistry
    (a Zr atom has about twice the bond strength of a Cu atom) and leaves the structural signal."""
    el = np.asarray(element).astype(str)
    out = np.asarray(sum_micohp, float).copy()
    for e in np.unique(el):
        m = el == e
        out[m] -= out[m].mean()
    return out


def _map_section(out: Path, first: Any, last: Any, thickness: float, bins: int, run_dir: Path) -> Section:
    maps = []
    for name, t in (("first frame", first), ("last frame", last)):
        pos = np.column_stack([t[c].to_numpy() for c in ("x", "y", "z")])
        frame = int(t["frame"][0].as_py())
        cell = _cell_of(run_dir, frame)
        val = excess_bond_strength(t["element"].to_numpy(zero_copy_only=False), t["sum_micohp"].to_numpy())
        maps.append((f"{name} (strain {100 * float(t['strain'][0].as_py()):.1f} %)",
                     slice_map(pos, cell, val, "z", 0.5, thickness, bins, smooth=1.5)))
    plot_slice_maps(maps, out / "slice_maps.png", label="excess bond strength (eV)", cmap="RdBu_r")
    text = (f"Per-atom excess bond strength (sum of -ICOHP minus its element's mean in the frame, eV), "
            f"Gaussian-averaged (sigma 1.5 A) on a {bins}x{bins} grid in a {thickness:g} A thick slab through the "
            "middle of the cell (normal z); compression along x. Full per-atom values for OVITO: "
            "`peratom/frame_*.xyz` in the run folder.")
    return Section("Spatial maps of bond strength", text, "slice_maps.png", {"n_atoms_in_slab": [m.n_atoms for _, m in maps]})


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


def _html(sections: list[Section]) -> str:
    import re

    body = []
    for s in sections:
        text = html.escape(s.text)
        text = re.sub(r"!\[[^\]]*\]\(([^)]+)\)", r'<img src="\1" style="max-width:100%">', text)
        lines = text.split("\n")
        table = [ln for ln in lines if ln.startswith("|")]
        prose = "<br>".join(ln for ln in lines if not ln.startswith("|"))
        tab = ""
        if table:
            rows = [r.strip("|").split("|") for r in table if not set(r) <= set("|-")]
            tab = "<table border=1 cellpadding=3>" + "".join(
                "<tr>" + "".join(f"<td>{c.strip()}</td>" for c in r) + "</tr>" for r in rows) + "</table>"
        img = f'<img src="{s.image}" style="max-width:100%">' if s.image else ""
        body.append(f"<h2>{html.escape(s.title)}</h2><p>{prose}</p>{tab}{img}")
    return "<!doctype html><html><head><meta charset=utf-8><title>bondml report</title></head><body>" \
           "<h1>bondml deployment report</h1>" + "".join(body) + "</body></html>\n"

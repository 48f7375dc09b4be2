"""Analysis functions on small hand-checked cases."""

from __future__ import annotations

import numpy as np
import pytest

from bondml.analysis.distributions import type_distributions
from bondml.analysis.exchange import bond_keys, exchange_between
from bondml.analysis.maps import plot_slice_maps, slice_map
from bondml.analysis.peratom import pearson, per_atom_sums, spearman, stress_correlation
from bondml.analysis.stress import (
    StressStrain,
    plot_stress_strain,
    stress_strain_from_peratom,
    stress_strain_from_thermo,
)
from bondml.errors import BondmlError


def test_per_atom_sums_and_coordination():
    # bonds 0-1 (1.0 eV), 1-2 (0.5), 0-2 (0.25), and a self-image bond 3-3 (0.1)
    s, c = per_atom_sums(5, np.array([0, 1, 0, 3]), np.array([1, 2, 2, 3]), np.array([1.0, 0.5, 0.25, 0.1]))
    assert np.allclose(s, [1.25, 1.5, 0.75, 0.2, 0.0])
    assert c.tolist() == [2, 2, 2, 2, 0]


def test_exchange_counts_and_strengths():
    n = 10
    ta = np.array(["Zr-Cu", "Zr-Cu", "Cu-Cu"])
    ka = bond_keys(np.array([0, 1, 2]), np.array([1, 2, 3]), n)
    va = np.array([1.0, 0.4, 0.3])
    # next frame: 0-1 kept (1.0 -> 1.2), 1-2 broken, 2-3 kept (0.3 -> 0.2), 0-3 formed (Zr-Cu, 0.6)
    tb = np.array(["Zr-Cu", "Cu-Cu", "Zr-Cu"])
    kb = bond_keys(np.array([0, 2, 0]), np.array([1, 3, 3]), n)
    vb = np.array([1.2, 0.2, 0.6])
    ex = exchange_between(ka, ta, va, kb, tb, vb)
    assert ex.formed["Zr-Cu"] == 1 and ex.broken["Zr-Cu"] == 1 and ex.kept["Zr-Cu"] == 1
    assert ex.formed["Cu-Cu"] == 0 and ex.broken["Cu-Cu"] == 0 and ex.kept["Cu-Cu"] == 1
    assert ex.micohp_broken["Zr-Cu"] == pytest.approx(0.4)
    assert ex.micohp_formed["Zr-Cu"] == pytest.approx(0.6)
    assert ex.micohp_kept_change["Zr-Cu"] == pytest.approx(0.2)
    assert ex.micohp_kept_change["Cu-Cu"] == pytest.approx(-0.1)
    assert np.isnan(ex.micohp_formed["Cu-Cu"])


def test_bond_keys_with_shift_distinguish_images():
    i, j = np.array([0, 0]), np.array([1, 1])
    k_pair = bond_keys(i, j, 5)
    assert k_pair[0] == k_pair[1]
    k = bond_keys(i, j, 5, np.array([[0, 0, 0], [1, 0, -1]]))
    assert k[0] != k[1]
    with pytest.raises(BondmlError):
        bond_keys(i, j, 5, np.array([[9, 0, 0], [0, 0, 0]]))


def test_correlations():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert pearson(x, 2 * x + 1) == pytest.approx(1.0)
    assert pearson(x, -x) == pytest.approx(-1.0)
    assert spearman(x, x**3) == pytest.approx(1.0)
    assert np.isnan(pearson(x, np.ones(4)))
    frame = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    el = np.array(["Zr", "Zr", "Cu", "Cu"] * 2)
    c = stress_correlation(frame, np.repeat([0.0, -0.01], 4), el, np.tile(x, 2), np.concatenate([x, -x]))
    assert c.pearson.tolist() == pytest.approx([1.0, -1.0])
    assert c.pearson_by_element["Zr"].tolist() == pytest.approx([1.0, -1.0])
    assert c.strain.tolist() == [0.0, -0.01]


def test_stress_strain_peak_and_per_atom_mean(tmp_path):
    th = {"strain": np.array([0, -0.02, -0.04, -0.06, -0.08]), "pxx_gpa": np.array([0.0, 1.0, 2.0, 2.5, 2.1])}
    c = stress_strain_from_thermo(th)
    assert c.peak == (pytest.approx(-0.06), pytest.approx(2.5))
    # per-atom: compressive stress = -mean(sxx) per frame
    frame = np.array([0, 0, 1, 1])
    pa = stress_strain_from_peratom(np.array([0, 0, -0.01, -0.01]), frame, np.array([-1.0, -3.0, 2.0, 0.0]))
    assert pa.stress_gpa.tolist() == [2.0, -1.0]
    assert plot_stress_strain([c, StressStrain(pa.strain, pa.stress_gpa, "per-atom")], tmp_path / "s.png").is_file()


def test_type_distributions_means_counts():
    frame = np.array([0, 0, 0, 1, 1])
    strain = np.array([0, 0, 0, -0.01, -0.01])
    bt = np.array(["Zr-Zr", "Zr-Zr", "Cu-Cu", "Zr-Zr", "Cu-Cu"])
    v = np.array([1.0, 2.0, 0.5, 4.0, 0.7])
    d = np.array([3.0, 3.2, 2.6, 3.1, 2.5])
    r = type_distributions(frame, strain, bt, v, d)
    assert r.count["Zr-Zr"].tolist() == [2, 1] and r.count["Al-Al"].tolist() == [0, 0]
    assert r.mean_icohp["Zr-Zr"].tolist() == pytest.approx([1.5, 4.0])
    assert r.mean_distance["Cu-Cu"].tolist() == pytest.approx([2.6, 2.5])
    assert r.hist_icohp["Zr-Zr"][0].sum() == 2  # counts
    assert np.sum(r.density("icohp", "Zr-Zr", 0) * np.diff(r.icohp_edges)) == pytest.approx(1.0)


def test_slice_map_hand_case(tmp_path):
    cell = np.diag([10.0, 10.0, 10.0])
    pos = np.array([[1.0, 1.0, 5.0], [1.5, 1.2, 5.5], [6.0, 6.0, 4.5], [6.0, 6.0, 9.0]])
    vals = np.array([1.0, 3.0, 5.0, 100.0])
    m = slice_map(pos, cell, vals, normal="z", center=0.5, thickness=2.0, bins=2)
    assert m.n_atoms == 3  # z = 9 is outside the slab 4..6
    assert m.grid[0, 0] == pytest.approx(2.0) and m.grid[1, 1] == pytest.approx(5.0)
    assert np.isnan(m.grid[0, 1]) and np.isnan(m.grid[1, 0])
    assert m.axes == ("x", "y")
    # a sheared cell: fractional binning puts the same atoms in the same cells
    sheared = np.array([[10.0, 0, 0], [3.0, 10.0, 0], [0, 0, 10.0]])
    frac = np.linalg.solve(cell.T, pos.T).T
    m2 = slice_map(frac @ sheared, sheared, vals, bins=2, thickness=2.0)
    assert np.allclose(np.nan_to_num(m2.grid), np.nan_to_num(m.grid))
    assert plot_slice_maps([("a", m), ("b", m2)], tmp_path / "m.png").stat().st_size > 1000


def test_exchange_separates_window_edge_flicker():
    """Bond 7 breaks and re-forms a frame later (flicker); bond 9 breaks for good; bond 5 is new."""
    from bondml.analysis.exchange import exchange_series

    keys = [[1, 7, 9], [1, 9], [1, 7], [1, 7, 5], [1, 7, 5]]
    frames = [(np.array(k), np.array(["Zr-Zr"] * len(k)), np.ones(len(k)), -0.01 * m) for m, k in enumerate(keys)]
    ex = exchange_series(frames)
    assert ex.series("broken", "Zr-Zr").tolist() == [1, 1, 0, 0]          # 7 at step 0, 9 at step 1
    assert ex.series("broken_flicker", "Zr-Zr").tolist() == [1, 0, 0, 0]  # 7 is back in frame 2
    assert ex.series("broken_persistent", "Zr-Zr").tolist() == [0, 1, 0, 0]
    assert ex.series("formed", "Zr-Zr").tolist() == [0, 1, 1, 0]          # 7 again at step 1, 5 at step 2
    assert ex.series("formed_flicker", "Zr-Zr").tolist() == [0, 1, 0, 0]
    assert ex.series("formed_persistent", "Zr-Zr").tolist() == [0, 0, 1, 0]
    assert ex.strain.tolist() == pytest.approx([-0.01, -0.02, -0.03, -0.04])


def test_distributions_keep_every_bond():
    """Data-driven edges: no bond is outside the histogram (the old fixed [-0.2, 2] eV range hid them)."""
    rng = np.random.default_rng(0)
    v = np.r_[rng.normal(0.8, 0.5, 500), [-0.6, 2.9]]  # tails beyond the old range
    frame = np.zeros(v.size, int)
    r = type_distributions(frame, np.zeros(v.size), np.array(["Zr-Al"] * v.size), v, np.full(v.size, 3.0))
    assert r.hist_icohp["Zr-Al"][0].sum() == v.size
    assert r.icohp_edges[0] < -0.6 and r.icohp_edges[-1] > 2.9
    assert np.sum(r.density("icohp", "Zr-Al", 0) * np.diff(r.icohp_edges)) == pytest.approx(1.0)

"""Write the hand-made LOBSTER files of this folder (run once; the files are committed).

Each file follows the layout LOBSTER documents for its version (column widths copied from
files of that version): 2.x six columns (no translation, ``#bonds``), 3.x/4.x eight columns
(spin 2 as a second block), 4.x/5.x orbital-resolved blocks with LOBSTER's orbital names
(``Cu1_3s``), 5.x nine columns (both spins on one row, two-line header), and a COHPCAR.
Pairs and totals are the first rows of the real run-21 sub-run 0 ICOHPLIST (Zr-Cu-Al); spin
channels and orbital parts are made up (seeded) so that the parts add up to the totals.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
# COHP#, atomMU, atomNU, distance, translation, ICOHP of run 21 / sub-run 0
PAIRS = [
    (1, "Cu1", "Zr2", 3.26048, (0, 0, 0), -0.41728),
    (2, "Cu1", "Cu3", 2.47778, (0, 0, 0), -0.48810),
    (3, "Cu1", "Cu7", 2.58171, (0, 0, 1), -0.41301),
    (4, "Cu1", "Al34", 4.09130, (0, 0, 0), -0.02055),
]
BASIS = {"Zr": ["4s", "5s", "4p_y", "4p_z", "4p_x", "4d_xy", "4d_yz", "4d_z^2", "4d_xz", "4d_x^2-y^2"],
         "Cu": ["3s", "4s", "3p_y", "3p_z", "3p_x", "3d_xy", "3d_yz", "3d_z^2", "3d_xz", "3d_x^2-y^2"],
         "Al": ["3s", "3p_y", "3p_z", "3p_x"]}
RNG = np.random.default_rng(13)
DOWN = {p[0]: round(p[5] * 0.47 + RNG.normal(0, 0.01), 5) for p in PAIRS}  # spin-2 share
UP = {p[0]: round(p[5] - DOWN[p[0]], 5) for p in PAIRS}


def el(label: str) -> str:
    return label.rstrip("0123456789")


def parts(total: float, n: int) -> list[float]:
    """``n`` 5-decimal values adding up to ``total`` exactly (in units of 1e-5)."""
    w = RNG.dirichlet(np.ones(n)) * total
    v = [round(x, 5) for x in w[:-1]]
    v.append(round(total - sum(v), 5))
    return v


def orbital_rows(p, values_per_spin):
    n, a, b, d, t, _ = p
    oa, ob = BASIS[el(a)], BASIS[el(b)]
    split = [parts(v, len(oa) * len(ob)) for v in values_per_spin]
    k = 0
    for x in oa:
        for y in ob:
            yield f"{a}_{x}", f"{b}_{y}", [s[k] for s in split]
            k += 1


def write(name: str, text: str, gz: bool = False) -> None:
    (HERE / name).write_text(text)
    if gz:
        (HERE / f"{name}.gz").write_bytes(gzip.compress(text.encode(), mtime=0))


H2 = "  COHP#  atomMU  atomNU     distance          ICOHP(eF) avg. over # bonds  for spin  {s}\n"
H3 = "  COHP#  atomMU  atomNU     distance     translation      ICOHP (at) eF   for spin  {s}\n"
H5 = "  COHP#       atomMU       atomNU     distance     translation      ICOHP (at) eF   for spin  {s}\n"
H5SP = ("  COHP#    atomMU    atomNU   distance   translation   ICOHP (at) eF    ICOHP (at) eF \n"
        "                                                          for spin 1       for spin 2 \n")


def row2(n, a, b, d, v, nb=1):
    return f"{n:7d} {a:>7s} {b:>7s} {d:12.5f} {v:18.5f} {nb:17d}\n"


def row3(n, a, b, d, t, v, w=7):
    return f"{n:7d} {a:>{w}s} {b:>{w}s} {d:12.5f} {t[0]:7d} {t[1]:3d} {t[2]:3d} {v:18.5f} \n"


def row5sp(n, a, b, d, t, u, dn):
    return f"{n:7d} {a:>9s} {b:>9s} {d:10.5f} {t[0]:5d} {t[1]:3d} {t[2]:3d} {u:15.5f} {dn:16.5f} \n"


def main() -> None:
    # 2.x: six columns, no translation
    write("ICOHPLIST_2x.lobster", H2.format(s=1) + "".join(row2(n, a, b, d, v) for n, a, b, d, _, v in PAIRS), gz=True)
    write("ICOHPLIST_2x_spin.lobster",
          H2.format(s=1) + "".join(row2(n, a, b, d, UP[n]) for n, a, b, d, _, _ in PAIRS)
          + H2.format(s=2) + "".join(row2(n, a, b, d, DOWN[n]) for n, a, b, d, _, _ in PAIRS))
    # 3.x / 4.x: eight columns
    write("ICOHPLIST_3x.lobster", H3.format(s=1) + "".join(row3(*p) for p in PAIRS), gz=True)
    write("ICOHPLIST_3x_spin.lobster",
          H3.format(s=1) + "".join(row3(n, a, b, d, t, UP[n]) for n, a, b, d, t, _ in PAIRS)
          + H3.format(s=2) + "".join(row3(n, a, b, d, t, DOWN[n]) for n, a, b, d, t, _ in PAIRS))
    write("ICOOPLIST_3x.lobster", H3.replace("COHP#", "COOP#").replace("ICOHP", "ICOOP").format(s=1)
          + "".join(row3(n, a, b, d, t, round(-v / 10, 5)) for n, a, b, d, t, v in PAIRS))
    write("ICOBILIST_3x.lobster", H3.replace("COHP#", "COBI#").replace("ICOHP", "ICOBI").format(s=1)
          + "".join(row3(n, a, b, d, t, round(-v / 4, 5)) for n, a, b, d, t, v in PAIRS))
    # 4.x orbitalwise, spin-polarised: total line then its orbital lines, spin 2 as a second block
    out = []
    for s, vals in ((1, UP), (2, DOWN)):
        out.append(H5.format(s=s))
        for p in PAIRS:
            n, a, b, d, t, _ = p
            out.append(row3(n, a, b, d, t, vals[n], w=12))
            for oa, ob, v in orbital_rows(p, [vals[n]]):
                out.append(row3(n, oa, ob, d, t, v[0], w=12))
    write("ICOHPLIST_4x_orbitalwise_spin.lobster", "".join(out))
    # 5.x without spin polarisation, orbitalwise (same columns as 3.x, wider labels)
    out = [H5.format(s=1)]
    for p in PAIRS:
        n, a, b, d, t, v = p
        out.append(row3(n, a, b, d, t, v, w=12))
        out += [row3(n, oa, ob, d, t, x[0], w=12) for oa, ob, x in orbital_rows(p, [v])]
    write("ICOHPLIST_5x_orbitalwise.lobster", "".join(out), gz=True)
    # 5.x spin-polarised: nine columns, with and without orbitals
    write("ICOHPLIST_5x_spin.lobster", H5SP + "".join(row5sp(n, a, b, d, t, UP[n], DOWN[n])
                                                     for n, a, b, d, t, _ in PAIRS), gz=True)
    out = [H5SP]
    for p in PAIRS:
        n, a, b, d, t, _ = p
        out.append(row5sp(n, a, b, d, t, UP[n], DOWN[n]))
        out += [row5sp(n, oa, ob, d, t, x[0], x[1]) for oa, ob, x in orbital_rows(p, [UP[n], DOWN[n]])]
    write("ICOHPLIST_5x_spin_orbitalwise.lobster", "".join(out), gz=True)
    write("ICOBILIST_5x_spin.lobster", H5SP.replace("COHP#", "COBI#").replace("ICOHP", "ICOBI")
          + "".join(row5sp(n, a, b, d, t, round(-UP[n] / 4, 5), round(-DOWN[n] / 4, 5))
                    for n, a, b, d, t, _ in PAIRS))
    # COHPCAR: 2 pairs + average, spin-polarised, 7 energy points from -3 to 3 eV, E_F = 0
    e = np.linspace(-3.0, 3.0, 7)
    pairs = [("Cu1", "Zr2", 3.26048), ("Cu1", "Cu3", 2.47778)]
    lines = ["COHPCAR.lobster (hand-written, LOBSTER layout)\n",
             "       3       2       7     -3.00000      3.00000      0.00000\n", "Average\n"]
    lines += [f"No.{k + 1}:{a}->{b}({d})\n" for k, (a, b, d) in enumerate(pairs)]
    for k, x in enumerate(e):
        cols = [x]
        for s in (1.0, 0.5):
            cs = [s * (k + 1) * -0.01 * (p + 1) for p in range(2)]
            ics = [s * -0.02 * (k + 1) * (p + 1) for p in range(2)]
            cols += [float(np.mean(cs)), float(np.mean(ics))]
            for c_, i_ in zip(cs, ics, strict=True):
                cols += [c_, i_]
        lines.append(" ".join(f"{v:.5f}" for v in cols) + "\n")
    write("COHPCAR.lobster", "".join(lines), gz=True)


if __name__ == "__main__":
    main()

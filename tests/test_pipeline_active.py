"""Active learning: ranking with known answers, batch files and approval, benchmark summary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bondml.errors import ConfigError
from bondml.evaluate.active import (
    EXPLOIT,
    EXPLORE,
    Candidate,
    cell_bonds,
    cells_to_reach,
    greedy_maxmin,
    rank_and_split,
    score_cell,
    summarise_benchmark,
)
from bondml.generate.augment import parse_augmentation
from bondml.pipeline.active import (
    BatchError,
    approve_batch,
    approved_batches,
    list_batches,
    read_batch,
    reject_batch,
    write_batch,
)


def test_greedy_maxmin_known_answer() -> None:
    # item 1 duplicates item 0 (same descriptor): after the most uncertain (0), diversity picks 3 not 1
    scores = np.array([0.9, 0.85, 0.1, 0.8, np.nan])
    desc = np.array([[0, 0], [0, 0], [5, 5], [3, 0], [9, 9]], float)
    assert greedy_maxmin(scores, desc, 2, top_fraction=0.75) == [0, 3]
    # item 2 is far away but among the least uncertain: excluded by top_fraction
    assert 2 not in greedy_maxmin(scores, desc, 3, top_fraction=0.5)
    # with every item allowed, the far one is picked second
    assert greedy_maxmin(scores, desc, 2, top_fraction=1.0) == [0, 2]
    assert greedy_maxmin(scores, desc, 0) == [] and 4 not in greedy_maxmin(scores, desc, 4, 1.0)


def _c(i: str, kind: str, s: float, d: list[float]) -> Candidate:
    return Candidate(i, kind, {"kind": "x"}, "", s, 10, np.array(d, float))


def test_rank_and_split_exploit_explore() -> None:
    cands = [_c("a", EXPLOIT, 0.5, [0]), _c("b", EXPLOIT, 0.4, [1]), _c("c", EXPLOIT, 0.1, [2]),
             _c("d", EXPLORE, 0.9, [3]), _c("e", EXPLORE, 0.2, [9])]
    got = rank_and_split(cands, 4, 0.5, 1.0)
    assert sorted(c.id for c in got if c.kind == EXPLORE) == ["d", "e"]
    assert len([c for c in got if c.kind == EXPLOIT]) == 2 and got[0].id == "a"
    # no explore candidates: their places go to exploit
    assert len(rank_and_split(cands[:3], 3, 0.5, 1.0)) == 3


def test_parse_augmentation() -> None:
    assert parse_augmentation("shear-xy-0.25").name == "shear_xy"
    assert parse_augmentation("iso-0.95").name == "iso_0.95"
    m = np.asarray(parse_augmentation("axial-z-1.05").matrix)
    assert m[2, 2] == pytest.approx(1.05)
    for bad in ("shear-xx-0.1", "twist", "axial-w-1"):
        with pytest.raises(ConfigError):
            parse_augmentation(bad)


def test_batches_and_approval(tmp_path: Path) -> None:
    c = [_c("a", EXPLOIT, 0.5, [0])]
    b = write_batch(tmp_path, c, {"proposal_key": "k1"})
    assert b["batch"] == 1 and b["status"] == "proposed"
    assert write_batch(tmp_path, c, {"proposal_key": "k1"})["batch"] == 1  # idempotent
    assert write_batch(tmp_path, c, {"proposal_key": "k2"})["batch"] == 1  # same cells, still proposed
    assert write_batch(tmp_path, [_c("b", EXPLORE, 0.4, [1])], {"proposal_key": "k2"})["batch"] == 2
    assert approved_batches(tmp_path) == []
    with pytest.raises(BatchError) as e:
        approve_batch(tmp_path, 5)
    assert "no active-learning batch 5" in str(e.value) and "batches: 1, 2" in str(e.value)
    approve_batch(tmp_path, 2, by="me")
    assert [b["batch"] for b in approved_batches(tmp_path)] == [2]
    assert json.loads((tmp_path / "al" / "batch-2.json").read_text())["approved_by"] == "me"
    assert [b["status"] for b in list_batches(tmp_path)] == ["proposed", "approved"]


def test_reject_batch(tmp_path: Path) -> None:
    write_batch(tmp_path, [_c("a", EXPLOIT, 0.5, [0])], {"proposal_key": "k1"})
    write_batch(tmp_path, [_c("b", EXPLORE, 0.4, [1])], {"proposal_key": "k2"})
    b = reject_batch(tmp_path, 1, by="me", reason="too similar")
    assert b["status"] == "rejected" and b["rejected_by"] == "me" and b["rejected_reason"] == "too similar"
    on_disk = json.loads((tmp_path / "al" / "batch-1.json").read_text())
    assert on_disk == b and "rejected" in on_disk and "approved" not in on_disk
    assert reject_batch(tmp_path, 1, by="other") == on_disk  # idempotent: first rejection kept
    approve_batch(tmp_path, 2)
    with pytest.raises(BatchError, match="approved already"):
        reject_batch(tmp_path, 2)
    assert "approved_by" not in read_batch(tmp_path, 2)  # no empty fields written
    assert [b["batch"] for b in approved_batches(tmp_path)] == [2]


def test_cells_to_reach_and_summary() -> None:
    assert cells_to_reach([1, 2, 3], [0.3, 0.2, 0.1], 0.15) == pytest.approx(2.5)
    assert cells_to_reach([1, 2, 3], [0.3, 0.2, 0.1], 0.05) == float("inf")
    curves = []
    for seed in (0, 1):
        curves.append({"strategy": "uncertainty", "seed": seed, "n_cells": [1, 2, 3, 4], "rmse": [0.3, 0.1, 0.1, 0.1]})
        curves.append({"strategy": "random", "seed": seed, "n_cells": [1, 2, 3, 4], "rmse": [0.3, 0.2, 0.15, 0.1]})
    s = summarise_benchmark(curves)
    # random reaches 0.2 at 2 cells, uncertainty at 1.5; 0.15 at 3 vs 1.75
    assert [r["cells_uncertainty"] for r in s["equal_error"]] == pytest.approx([1.5, 1.75])
    assert s["ratio_median"] == pytest.approx(np.median([1.5 / 2, 1.75 / 3]))


@pytest.mark.slow
def test_uncertainty_ranks_unseen_deformation_first(mini_tree: Path) -> None:
    """A model trained on sub-run 0 only: sub-run 0 itself is the least uncertain candidate,
    a 20 % isotropic compression of it the most."""
    from ase.io import read

    from bondml.generate.augment import write_xyz
    from bondml.model.bondmodel import BondModel
    from bondml.store.extract import dataset_from_getl
    from bondml.types import CellId

    ds = dataset_from_getl(mini_tree, cells=[CellId("Zr49Cu49Al2", 21, 0)])
    model = BondModel.fit(ds, max_train_per_type=150, seed=0, min_bonds=10)
    sub = mini_tree / "ML/big-data-full/Zr49Cu49Al2/c/md/lammps/100/21/2000"
    x0 = sub / "0" / "Zr49Cu49Al2.xyz"
    squeezed = write_xyz(parse_augmentation("iso-0.8")(read(x0)), mini_tree / "cand" / "Zr49Cu49Al2.xyz")
    scores = {name: score_cell(model, cell_bonds(p, model.settings))[0]
              for name, p in {"seen": x0, "sub1": sub / "1" / "Zr49Cu49Al2.xyz", "iso0.8": squeezed}.items()}
    assert scores["seen"] < scores["sub1"] < scores["iso0.8"], scores

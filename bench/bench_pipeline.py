"""Pipeline caching: time of a first run vs an unchanged re-run (target: re-run < 5 % of the first).

    .venv/bin/python bench/bench_pipeline.py [--config configs/demo.toml] [--out DIR] [--keep]

Default config: the tiny test pipeline (run 21, 6 training cells, no MD/xTB; ~15 s). With
``--config configs/demo.toml`` it measures the README demo (minutes). Prints both wall times
(seconds, in-process, after imports) and their ratio; also times a one-setting change.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "tests" / "data" / "pipeline_tiny.toml"))
    ap.add_argument("--out", default="")
    ap.add_argument("--keep", action="store_true", help="keep the output folder")
    a = ap.parse_args()

    from bondml.pipeline import load_config, run_pipeline

    cfg = load_config(a.config)
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    quiet = lambda m: None  # noqa: E731
    t0 = time.perf_counter()
    first = run_pipeline(cfg, out, log=quiet)
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = run_pipeline(cfg, out, log=quiet)
    t_again = time.perf_counter() - t0
    seeds = (*cfg.validation.learning_curve_seeds, 99)
    cfg2 = replace(cfg, validation=replace(cfg.validation, learning_curve_seeds=seeds))
    t0 = time.perf_counter()
    changed = run_pipeline(cfg2, out, log=quiet)
    t_changed = time.perf_counter() - t0
    ran = lambda r: sorted(n for n, s in r["stages"].items() if s.ran)  # noqa: E731
    print(f"config: {a.config}")
    print(f"first run            {t_first:8.2f} s   stages run: {', '.join(ran(first))}")
    print(f"unchanged re-run     {t_again:8.2f} s   stages run: {', '.join(ran(again)) or 'none'}")
    print(f"learning-curve seeds {t_changed:8.2f} s   stages run: {', '.join(ran(changed))}")
    print(f"re-run / first run = {t_again / t_first:.4f}  (target < 0.05)")
    if not a.keep and not a.out:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()

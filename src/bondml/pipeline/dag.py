"""A small DAG runner with content-hash caching, atomic stage outputs and resume.

A :class:`Stage` is a plain function ``fn(ctx) -> dict`` with explicit inputs (other stages),
the config sections it reads, and the code it runs. Its cache key is

    sha256(stage name, its config sections, code fingerprint, input keys + output hashes, extra)

The code fingerprint is computed, not listed: the source of every bondml module reachable from the
stage's functions through static imports (:mod:`.fingerprint`), so editing a constant, the bond
finder or the kernel re-runs exactly the stages that can execute it. Its outputs live in
``<out>/stages/<stage>/<key>/`` with ``manifest.json`` (config, code version, inputs, per-file
SHA-256, seconds). A stage runs in a temporary folder renamed into place when complete, so a
killed run leaves no half result: the next run resumes at the first stage without a complete
folder. Nothing changed -> nothing runs; one changed setting re-runs only the stages whose key it
enters, and those downstream of them.

Files whose name contains ``.volatile.`` (timings, tracking run ids) are kept but left out of
the output hash, so that equal inputs give equal output hashes.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BondmlError, ConfigError
from ..util import atomic_write_json, code_version, file_lock, lock_wait_seconds, sha256_file, sha256_json
from .fingerprint import code_fingerprint, entries_of

MANIFEST = "manifest.json"
VOLATILE = ".volatile."


@dataclass(frozen=True)
class Stage:
    """One pipeline stage: ``fn(ctx)`` writes its outputs under ``ctx.dir`` and returns a JSON summary.

    ``inputs``: names of stages it reads; ``sections``: config sections in its key; ``code``:
    entry points (``bondml.model`` or ``bondml.pipeline.stages:train_stage``) whose import
    closure makes its code fingerprint, by default the bondml functions ``fn``, ``extra`` and
    ``valid`` themselves (functions outside bondml, e.g. in tests, give none); ``extra``: a
    function of the context returning more key material (e.g. checksums of input files).
    ``enabled``: predicate on the config; a disabled stage is skipped with an empty result.
    ``valid``: extra check of a cached result (e.g. the store version it names still exists).
    """

    name: str
    fn: Callable[[StageContext], dict[str, Any]]
    inputs: tuple[str, ...] = ()
    sections: tuple[str, ...] = ()
    code: tuple[str, ...] = ()
    extra: Callable[[StageContext], Any] | None = None
    enabled: Callable[[Any], bool] | None = None
    valid: Callable[[StageResult], bool] | None = None


@dataclass
class StageResult:
    """A completed (or skipped) stage: its key, folder, summary and whether it ran now."""

    name: str
    key: str
    dir: Path | None
    summary: dict[str, Any]
    output_hash: str
    ran: bool
    seconds: float = 0.0
    skipped: bool = False

    def path(self, *parts: str) -> Path:
        """A file of this stage's output folder."""
        if self.dir is None:
            raise BondmlError(f"stage {self.name!r} was skipped (disabled in the config); it has no {'/'.join(parts)}")
        return self.dir.joinpath(*parts)


@dataclass
class StageContext:
    """What a stage function sees: its output folder, the config, its inputs' results,
    the pipeline output root, a task runner (parsl) and a log function."""

    stage: str
    dir: Path
    config: Any
    inputs: dict[str, StageResult]
    out: Path
    runner: Any = None
    log: Callable[[str], None] = print
    key: str = ""


def stage_entries(stage: Stage) -> tuple[str, ...]:
    """The code entry points of ``stage``: its ``code``, or its own bondml functions."""
    return tuple(stage.code) or entries_of(stage.fn, stage.extra, stage.valid)


def stage_code(stage: Stage) -> str:
    """Code fingerprint of ``stage`` ("" when it has no bondml code)."""
    entries = stage_entries(stage)
    return code_fingerprint(entries) if entries else ""


def hash_outputs(folder: Path) -> tuple[str, dict[str, str]]:
    """(combined hash, {relative path: sha256}) of a stage folder, manifest and volatile files excluded."""
    files = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != MANIFEST and VOLATILE not in p.name:
            files[p.relative_to(folder).as_posix()] = sha256_file(p)
    return sha256_json(files), files


def toposort(stages: Iterable[Stage]) -> list[Stage]:
    """Stages in dependency order; ConfigError on an unknown input or a cycle."""
    by = {s.name: s for s in stages}
    order: list[Stage] = []
    state: dict[str, int] = {}

    def visit(n: str, path: tuple[str, ...]) -> None:
        if n not in by:
            raise ConfigError(f"stage {path[-1]!r} needs unknown stage {n!r}")
        if state.get(n) == 1:
            raise ConfigError(f"stage cycle: {' -> '.join((*path, n))}")
        if state.get(n) == 2:
            return
        state[n] = 1
        for i in by[n].inputs:
            visit(i, (*path, n))
        state[n] = 2
        order.append(by[n])

    for s in by.values():
        visit(s.name, (s.name,))
    return order


def needed(stages: list[Stage], targets: Iterable[str] | None) -> list[Stage]:
    """The stages ``targets`` depend on (all when ``targets`` is None), in order."""
    order = toposort(stages)
    if targets is None:
        return order
    by = {s.name: s for s in order}
    want: set[str] = set()

    def add(n: str) -> None:
        if n not in by:
            raise ConfigError(f"unknown stage {n!r}; stages: {', '.join(by)}")
        if n not in want:
            want.add(n)
            for i in by[n].inputs:
                add(i)

    for t in targets:
        add(t)
    return [s for s in order if s.name in want]


def stage_key(stage: Stage, ctx: StageContext, code: str | None = None) -> str:
    """Cache key of ``stage`` given its context (inputs already resolved) and code fingerprint
    (computed now when not given)."""
    material = {
        "stage": stage.name,
        "config": {s: ctx.config.section(s) for s in stage.sections},
        "code": stage_code(stage) if code is None else code,
        "inputs": {n: [r.key, r.output_hash] for n, r in sorted(ctx.inputs.items())},
        "extra": stage.extra(ctx) if stage.extra else None,
    }
    return sha256_json(material)[:20]


def _clean_partial(stage_dir: Path) -> None:
    """Remove temporary folders of interrupted attempts (their results were never published)."""
    if stage_dir.is_dir():
        for p in stage_dir.glob(".tmp-*"):
            shutil.rmtree(p, ignore_errors=True)


def run_stage(stage: Stage, ctx_base: StageContext, force: bool = False, code: str | None = None) -> StageResult:
    """Run one stage unless a complete output for its key exists (``code``: its fingerprint)."""
    stage_root = ctx_base.out / "stages" / stage.name
    code = stage_code(stage) if code is None else code
    key = stage_key(stage, ctx_base, code)
    final = stage_root / key
    if not force and (final / MANIFEST).is_file():
        man = json.loads((final / MANIFEST).read_text())
        cached = StageResult(stage.name, key, final, man.get("summary", {}), man["output_hash"], ran=False)
        if stage.valid is None or stage.valid(cached):
            return cached
    _clean_partial(stage_root)
    # a deterministic name: tools that record their output path (LAMMPS, inference manifests)
    # then write the same bytes on every run; the output-folder lock keeps runs apart
    tmp = stage_root / f".tmp-{key}"
    tmp.mkdir(parents=True)
    ctx_base.dir = tmp
    ctx_base.key = key
    t0 = time.perf_counter()
    try:
        summary = stage.fn(ctx_base) or {}
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    seconds = time.perf_counter() - t0
    out_hash, files = hash_outputs(tmp)
    atomic_write_json(tmp / MANIFEST, {
        "stage": stage.name, "key": key, "config": {s: ctx_base.config.section(s) for s in stage.sections},
        "code": {"version": code_version(), "entries": list(stage_entries(stage)), "fingerprint": code},
        "inputs": {n: {"key": r.key, "output_hash": r.output_hash} for n, r in ctx_base.inputs.items()},
        "extra": stage.extra(ctx_base) if stage.extra else None,
        "summary": summary, "files": files, "output_hash": out_hash, "seconds": seconds,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
    if final.exists():  # a previous incomplete publish (no manifest): replace it
        shutil.rmtree(final)
    tmp.rename(final)
    return StageResult(stage.name, key, final, summary, out_hash, ran=True, seconds=seconds)


def out_lock(out: Path) -> contextlib.AbstractContextManager[None]:
    """Exclusive use of an output folder by one run: ``fcntl.flock`` on ``<out>/.lock`` (released by
    the kernel when the holder exits or is killed). Refused at once when busy, unless
    ``BONDML_LOCK_WAIT`` (seconds) says to wait."""
    return file_lock(out / ".lock", lambda: BondmlError(
        f"{out}: another bondml run is using this output folder; wait for it to finish or use another --out"),
        wait=lock_wait_seconds(0.0))


def run_dag(stages: list[Stage], config: Any, out: str | Path, targets: Iterable[str] | None = None,
            force: Iterable[str] = (), runner: Any = None,
            log: Callable[[str], None] = print,
            on_stage: Callable[[StageResult], None] | None = None) -> dict[str, StageResult]:
    """Run the stages needed for ``targets`` (all by default) in order, with caching.

    ``force`` names stages to re-run even when cached. Returns every stage's result.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with out_lock(out):
        return _run_all(stages, config, out, targets, set(force), runner, log, on_stage)


def _run_all(stages: list[Stage], config: Any, out: Path, targets: Iterable[str] | None, force: set[str],
             runner: Any, log: Callable[[str], None], on_stage: Callable[[StageResult], None] | None
             ) -> dict[str, StageResult]:
    results: dict[str, StageResult] = {}
    todo = needed(stages, targets)
    # one snapshot of the code for the whole run, taken before any stage starts
    code = {st.name: stage_code(st) for st in todo}
    for st in todo:
        inputs = {n: results[n] for n in st.inputs}
        if st.enabled is not None and not st.enabled(config):
            res = StageResult(st.name, "disabled", None, {"disabled": True}, "", ran=False, skipped=True)
        else:
            ctx = StageContext(st.name, out, config, inputs, out, runner, log)
            res = run_stage(st, ctx, force=st.name in force, code=code[st.name])
        results[st.name] = res
        if on_stage:
            on_stage(res)
    return results

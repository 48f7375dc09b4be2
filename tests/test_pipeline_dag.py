"""DAG runner: content-hash caching, selective re-runs, atomic outputs, resume after a failure."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from bondml.errors import ConfigError
from bondml.pipeline.dag import MANIFEST, Stage, hash_outputs, run_dag, toposort


@dataclass(frozen=True)
class _A:
    x: int = 1


@dataclass(frozen=True)
class _B:
    y: int = 2


@dataclass(frozen=True)
class _Cfg:
    a: _A = field(default_factory=_A)
    b: _B = field(default_factory=_B)

    def section(self, name: str) -> dict:
        from dataclasses import asdict

        return asdict(getattr(self, name))


def _stages(calls: list[str], fail_in: str | None = None) -> list[Stage]:
    def first(ctx):
        calls.append("first")
        (ctx.dir / "v.json").write_text(json.dumps(ctx.config.a.x * 10))
        return {"v": ctx.config.a.x * 10}

    def second(ctx):
        calls.append("second")
        v = json.loads(ctx.inputs["first"].path("v.json").read_text())
        (ctx.dir / "w.json").write_text(json.dumps(v + ctx.config.b.y))
        (ctx.dir / "t.volatile.json").write_text(json.dumps({"time": len(calls)}))
        if fail_in == "second":
            raise RuntimeError("killed")
        return {"w": v + ctx.config.b.y}

    def other(ctx):
        calls.append("other")
        (ctx.dir / "o.txt").write_text(str(ctx.config.b.y))
        return {}

    return [Stage("first", first, (), ("a",)), Stage("second", second, ("first",), ("b",)),
            Stage("other", other, (), ("b",))]


def test_unchanged_rerun_does_nothing(tmp_path: Path) -> None:
    calls: list[str] = []
    r1 = run_dag(_stages(calls), _Cfg(), tmp_path, log=lambda m: None)
    assert sorted(calls) == ["first", "other", "second"]
    assert all(r.ran for r in r1.values())
    calls.clear()
    r2 = run_dag(_stages(calls), _Cfg(), tmp_path, log=lambda m: None)
    assert calls == []
    assert {n: r.key for n, r in r1.items()} == {n: r.key for n, r in r2.items()}
    assert r2["second"].summary == {"w": 12}
    man = json.loads((r2["second"].dir / MANIFEST).read_text())
    assert man["config"] == {"b": {"y": 2}} and man["inputs"]["first"]["key"] == r1["first"].key
    assert "t.volatile.json" not in man["files"] and "w.json" in man["files"]


def test_changing_one_setting_reruns_only_dependents(tmp_path: Path) -> None:
    calls: list[str] = []
    run_dag(_stages(calls), _Cfg(), tmp_path, log=lambda m: None)
    calls.clear()
    run_dag(_stages(calls), _Cfg(a=_A(3)), tmp_path, log=lambda m: None)
    assert sorted(calls) == ["first", "second"]  # "other" does not read section a
    calls.clear()
    r = run_dag(_stages(calls), _Cfg(a=_A(3), b=_B(5)), tmp_path, log=lambda m: None)
    assert sorted(calls) == ["other", "second"]
    assert r["second"].summary == {"w": 35}
    calls.clear()
    run_dag(_stages(calls), _Cfg(), tmp_path, log=lambda m: None)  # back to the first settings: all cached
    assert calls == []


def test_failed_stage_leaves_nothing_and_resumes(tmp_path: Path) -> None:
    calls: list[str] = []
    with pytest.raises(RuntimeError):
        run_dag(_stages(calls, fail_in="second"), _Cfg(), tmp_path, log=lambda m: None)
    second = tmp_path / "stages" / "second"
    assert not [p for p in second.iterdir() if not p.name.startswith(".tmp-")]  # nothing published
    assert not list(second.glob(".tmp-*"))  # the partial folder was removed
    calls.clear()
    r = run_dag(_stages(calls), _Cfg(), tmp_path, log=lambda m: None)
    assert "first" not in calls and "second" in calls  # first was complete and is reused
    assert r["second"].summary == {"w": 12}


def test_stale_partial_folder_is_cleaned(tmp_path: Path) -> None:
    calls: list[str] = []
    stale = tmp_path / "stages" / "second" / ".tmp-deadbeef-0000"
    stale.mkdir(parents=True)
    (stale / "w.json").write_text("999")
    r = run_dag(_stages(calls), _Cfg(), tmp_path, log=lambda m: None)
    assert not stale.exists() and r["second"].summary == {"w": 12}


def test_output_hash_ignores_volatile_files(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("1")
    h1, _ = hash_outputs(tmp_path)
    (tmp_path / "x.volatile.json").write_text("2")
    assert hash_outputs(tmp_path)[0] == h1
    (tmp_path / "a.json").write_text("3")
    assert hash_outputs(tmp_path)[0] != h1


def test_targets_and_cycles(tmp_path: Path) -> None:
    calls: list[str] = []
    run_dag(_stages(calls), _Cfg(), tmp_path, targets=["first"], log=lambda m: None)
    assert calls == ["first"]
    s = [Stage("a", lambda c: {}, ("b",)), Stage("b", lambda c: {}, ("a",))]
    with pytest.raises(ConfigError, match="cycle"):
        toposort(s)
    with pytest.raises(ConfigError, match="unknown stage"):
        toposort([Stage("a", lambda c: {}, ("zz",))])
    with pytest.raises(ConfigError, match="unknown stage"):
        run_dag(_stages(calls), _Cfg(), tmp_path, targets=["nope"], log=lambda m: None)


def test_code_change_invalidates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bondml.pipeline import dag

    calls: list[str] = []
    st = [replace(s, code=("bondml.types",)) for s in _stages(calls)]
    r1 = run_dag(st, _Cfg(), tmp_path, log=lambda m: None)
    monkeypatch.setattr(dag, "code_fingerprint", lambda mods: "another version")
    calls.clear()
    r2 = run_dag(st, _Cfg(), tmp_path, log=lambda m: None)
    assert sorted(calls) == ["first", "other", "second"] and r2["first"].key != r1["first"].key


def test_output_folder_lock(tmp_path: Path) -> None:
    import fcntl
    import os

    from bondml.errors import BondmlError

    fd = os.open(tmp_path / ".lock", os.O_RDWR | os.O_CREAT)  # another run holds the folder
    fcntl.flock(fd, fcntl.LOCK_EX)
    with pytest.raises(BondmlError, match="another bondml run"):
        run_dag(_stages([]), _Cfg(), tmp_path, log=lambda m: None)
    os.close(fd)  # the holder exits (or is killed): the kernel releases its lock
    (tmp_path / ".lock").write_text("999999999")  # whatever a crashed old version left there
    run_dag(_stages([]), _Cfg(), tmp_path, log=lambda m: None)

"""feature_store.experiments: deterministic assignment and configs in the store."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import redis

from domain import experiments as assignment
from domain.experiments import Arm, Experiment, ExperimentError, parse_arms
from feature_store import experiments, keys

NOW = 1_790_000_000.0


def make(name: str = "exp1", start: float = NOW - 60, end: float = NOW + 3600, **kw) -> Experiment:
    arms = kw.pop("arms", parse_arms("control:0.45,treatment:0.45,holdout:0.1:holdout"))
    return Experiment(name, kw.pop("salt", "salt-1"), arms, start, end, **kw)


def test_the_bucket_is_pinned_so_every_process_and_machine_agrees() -> None:
    assert [assignment.bucket("salt-1", u) for u in ("u1", "u2", "user_000042")] == [
        2551,
        4709,
        6864,
    ]
    code = "from domain.experiments import bucket; print(bucket('salt-1', 'u1'))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(other.stdout) == 2551


def test_the_salt_reshuffles_users() -> None:
    users = [f"u{i}" for i in range(2000)]
    a, b = assignment.buckets("a", users), assignment.buckets("b", users)
    assert np.corrcoef(a, b)[0, 1] < 0.1


def test_vectorised_assignment_equals_one_by_one() -> None:
    exp = make()
    users = [f"user_{i:06d}" for i in range(3000)]
    assert [exp.arms[i].name for i in exp.arm_indexes(users)] == [exp.arm_of(u).name for u in users]


def test_traffic_follows_the_shares() -> None:
    exp = make()
    counts = np.bincount(exp.arm_indexes(f"u{i}" for i in range(200_000)), minlength=3)
    assert np.allclose(counts / counts.sum(), [0.45, 0.45, 0.1], atol=0.005)


def test_the_control_arm_is_the_one_named_control_else_the_first() -> None:
    assert make().control.name == "control"
    assert make(arms=parse_arms("a:0.5,b:0.5")).control.name == "a"


def test_configs_round_trip_through_json() -> None:
    exp = make(description="feed cap test", arms=(Arm("a", 0.5), Arm("b", 0.5, "rules", 2)))
    assert Experiment.from_json(exp.to_json()) == exp
    assert exp.to_dict()["start"] == "2026-09-21T14:12:20Z"


@pytest.mark.parametrize(
    ("arms", "message"),
    [
        ("a:0.5,b:0.4", "shares must add up to 1"),
        ("a:0.5,a:0.5", "arm names repeat"),
        ("a:0.5,b:0.5:magic", "policy must be one of"),
        ("a:1.5", "share must be in (0, 1]"),
        ("a:x", "share and cap must be numbers"),
        ("a", "expected name:share"),
        ("a:0.5,b{x}:0.5", "may only hold"),
    ],
)
def test_bad_arms_are_refused_with_a_reason(arms: str, message: str) -> None:
    with pytest.raises(ExperimentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make(arms=parse_arms(arms))


def test_bad_names_and_windows_are_refused() -> None:
    with pytest.raises(ExperimentError, match="experiment name may only contain"):
        make(name="exp 1")
    with pytest.raises(ExperimentError, match="start must be before end"):
        make(start=NOW, end=NOW)
    with pytest.raises(ExperimentError, match="bad experiment config: KeyError"):
        Experiment.from_dict({"name": "x"})


def test_only_the_experiment_whose_window_holds_now_runs() -> None:
    a, b = make("a", NOW - 100, NOW), make("b", NOW, NOW + 100)
    assert assignment.running([a, b], NOW - 1) is a
    assert assignment.running([a, b], NOW) is b
    assert assignment.running([a, b], NOW + 100) is None


def test_the_store_keeps_all_configs_in_one_hash(client: redis.Redis) -> None:
    assert keys.EXPERIMENTS == b"dbk:experiments"
    exp = make()
    experiments.save(client, exp)
    assert client.hget(b"dbk:experiments", b"exp1") == exp.to_json().encode()
    assert experiments.load(client, "exp1") == exp
    assert experiments.load_all(client) == {"exp1": exp}


def test_overlapping_experiments_are_refused(client: redis.Redis) -> None:
    experiments.save(client, make("a", NOW, NOW + 100))
    with pytest.raises(ExperimentError, match="b overlaps a"):
        experiments.save(client, make("b", NOW + 50, NOW + 200))
    experiments.save(client, make("b", NOW + 100, NOW + 200))  # back to back is fine
    experiments.save(client, make("a", NOW, NOW + 90))  # replacing itself is fine


def test_stop_ends_an_experiment_now_and_keeps_its_config(client: redis.Redis) -> None:
    experiments.save(client, make("a", NOW - 100, NOW + 100))
    stopped = experiments.stop(client, "a", now=NOW)
    assert stopped.end == NOW and experiments.load(client, "a").end == NOW
    assert not stopped.running(NOW)
    with pytest.raises(ExperimentError, match="no experiment named 'zzz'"):
        experiments.load(client, "zzz")
    assert experiments.delete(client, "a") and not experiments.load_all(client)


def test_assignment_costs_microseconds() -> None:
    exp = make()
    started = time.perf_counter()
    for i in range(10_000):
        exp.arm_of(f"u{i}")
    assert (time.perf_counter() - started) / 10_000 < 50e-6

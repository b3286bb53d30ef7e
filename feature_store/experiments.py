"""Experiment configs in the store: one hash, name -> config JSON (sync for the CLI and the
offline side; the service reads with load_all_async)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.experiments import Experiment, ExperimentError, iso, overlapping
from feature_store import keys


def save(client: Any, experiment: Experiment) -> None:
    """Create or replace an experiment; refuses one whose time window overlaps another's."""
    clash = overlapping(experiment, load_all(client).values())
    if clash is not None:
        raise ExperimentError(
            f"{experiment.name} overlaps {clash.name} ({iso(clash.start)} .. {iso(clash.end)}); "
            "only one experiment runs at a time: stop it or pick another window"
        )
    client.hset(keys.EXPERIMENTS, experiment.name, experiment.to_json())


def load(client: Any, name: str) -> Experiment:
    raw = client.hget(keys.EXPERIMENTS, keys.check_id(name, "experiment name"))
    if raw is None:
        raise ExperimentError(f"no experiment named {name!r}")
    return Experiment.from_json(raw)


def load_all(client: Any) -> dict[str, Experiment]:
    return _decode(client.hgetall(keys.EXPERIMENTS))


async def load_all_async(client: Any) -> dict[str, Experiment]:
    """``load_all`` over an asyncio client: one round trip."""
    return _decode(await client.hgetall(keys.EXPERIMENTS))


def _decode(raw: Mapping[bytes, bytes]) -> dict[str, Experiment]:
    return {k.decode(): Experiment.from_json(v) for k, v in sorted(raw.items())}


def stop(client: Any, name: str, now: float) -> Experiment:
    """End an experiment now (its config stays, so reports can still be made)."""
    exp = load(client, name)
    if exp.end > now:
        end = max(now, exp.start + 1)
        exp = Experiment(exp.name, exp.salt, exp.arms, exp.start, end, exp.description)
        client.hset(keys.EXPERIMENTS, exp.name, exp.to_json())
    return exp


def delete(client: Any, name: str) -> bool:
    return bool(client.hdel(keys.EXPERIMENTS, keys.check_id(name, "experiment name")))

"""The assignment rule as docs/experiments.md states it, checked against the service.

The test reads the page: the rule's numbers, the worked example, the table of more users and
the Python snippet. It implements the rule from those lines alone (hashlib, no project code),
then compares that with the snippet, with the analysts' ``offline.report.assignment`` and with
the arms a real service reports over gRPC for thousands of users. Edit the page's rule, its
example or the code, and one of these disagrees.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pandas as pd
import pytest
import redis

from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from domain.experiments import Experiment, ExperimentError, parse_arms
from domain.ids import InvalidId
from feature_store import experiments
from feature_store.connection import RedisSettings
from offline.report.assignment import assign, assign_series
from offline.report.reach import reach_report
from offline.synth.experiment import PlantedExperiment
from offline.synth.world import synthesize
from tests.fixtures.servers import ServiceThread, wait_for_health
from tests.fixtures.service import SERVING, snapshot

PAGE = Path(__file__).resolve().parents[1] / "docs" / "experiments.md"
# The rule's wording the implementation below follows, line by line; a change on the page
# stops the test here, so the page cannot say one thing while the test checks another.
WORDING = {
    "hash": "blake2b keyed",
    "message": "utf-8 user_id",
    "key": "utf-8 salt first 64 bytes",
    "bucket": "integer mod buckets",
    "bounds": "cumulative round(share * buckets), last = buckets",
    "arm": "first arm with bound > bucket",
}


def section(title: str) -> str:
    """The text of the page's ``### title`` section."""
    text = PAGE.read_text(encoding="utf-8")
    start = text.index(f"### {title}\n")
    end = text.find("\n#", start + 4)
    return text[start : end if end > 0 else len(text)]


def fenced(title: str, lang: str) -> str:
    """The first ```lang block of a section."""
    found = re.search(rf"```{lang}\n(.*?)```", section(title), re.S)
    assert found, f"no ```{lang} block under '### {title}' in {PAGE}"
    return found.group(1)


def fields(title: str) -> dict[str, str]:
    """A section's ```text block of ``name  value`` lines."""
    lines = fenced(title, "text").strip().splitlines()
    return dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in lines)


RULE = fields("The rule in numbers")
EXAMPLE = fields("Worked example")


def parsed_arms(spec: str) -> list[tuple[str, float]]:
    """``name:share,...`` as (name, share) pairs, in order."""
    return [(name, float(share)) for name, share, *_ in (p.split(":") for p in spec.split(","))]


def documented_bounds(arms: list[tuple[str, float]]) -> list[int]:
    """The bounds as the page's ``bounds`` line says."""
    n = int(RULE["buckets"])
    bounds = list(np.cumsum([round(share * n) for _, share in arms]))
    return [*map(int, bounds[:-1]), n]


def documented_steps(user_id: str, salt: str, arms: list[tuple[str, float]]) -> dict[str, str]:
    """Every step of the page's rule, from the page's numbers only, as the example lists it."""
    assert {k: RULE[k] for k in WORDING} == WORDING, "the rule's wording changed: re-read it"
    message, key = user_id.encode("utf-8"), salt.encode("utf-8")[:64]
    digest = hashlib.blake2b(message, digest_size=int(RULE["digest_size"]), key=key).digest()
    integer = int.from_bytes(digest, RULE["byte_order"])  # type: ignore[arg-type]
    bucket = integer % int(RULE["buckets"])
    bounds = documented_bounds(arms)
    arm = next(name for (name, _), bound in zip(arms, bounds, strict=True) if bound > bucket)
    return {"message_hex": message.hex(), "key_hex": key.hex(), "digest_hex": digest.hex(),
            "integer": str(integer), "bucket": str(bucket),
            "bounds": ",".join(map(str, bounds)), "arm": arm}  # fmt: skip


def documented_arm(user_id: str, salt: str, arms: list[tuple[str, float]]) -> str:
    return documented_steps(user_id, salt, arms)["arm"]


def snippet() -> Callable[[str, str, list[tuple[str, float]]], str]:
    """The page's Python snippet, run as written."""
    scope: dict[str, object] = {}
    exec(compile(fenced("The rule in Python (standard library only)", "python"), str(PAGE), "exec"),
         scope)  # fmt: skip
    return scope["arm_of"]  # type: ignore[return-value]


def more_users() -> list[list[str]]:
    """The rows of the page's table of more users: user_id, digest_hex, bucket, arm."""
    text = PAGE.read_text(encoding="utf-8")
    table = text[text.index("| user_id | digest_hex |") :].split("\n\n", 1)[0]
    return [[c.strip() for c in row.strip("|").split("|")] for row in table.splitlines()[2:]]


ARMS = parsed_arms(EXAMPLE["arms"])
SALT = EXAMPLE["salt"]
USERS = [f"user_{i:06d}" for i in range(2500)] + [r[0] for r in more_users()] + [EXAMPLE["user_id"]]


def test_the_rule_from_the_page_reproduces_every_step_of_the_worked_example() -> None:
    steps = documented_steps(EXAMPLE["user_id"], SALT, ARMS)
    assert steps == {k: EXAMPLE[k] for k in steps}
    assert int(EXAMPLE["bucket"]) == int(EXAMPLE["integer"]) % 10_000  # the page is consistent
    # The example tells the wrong variants apart: the digest read little-endian, or a 64-byte
    # digest cut to 8, lands in another arm.
    little = int.from_bytes(bytes.fromhex(EXAMPLE["digest_hex"]), "little") % 10_000
    long = hashlib.blake2b(EXAMPLE["user_id"].encode(), key=SALT.encode()).digest()[:8]
    for wrong in (little, int.from_bytes(long, "big") % 10_000):
        arm = next(n for (n, _), b in zip(ARMS, documented_bounds(ARMS), strict=True) if b > wrong)
        assert arm != EXAMPLE["arm"]


def test_the_table_the_snippet_and_the_public_function_agree_with_the_rule() -> None:
    rows = more_users()
    assert len(rows) >= 5
    for user, digest_hex, bucket, arm in rows:
        steps = documented_steps(user, SALT, ARMS)
        assert (steps["digest_hex"], steps["bucket"], steps["arm"]) == (digest_hex, bucket, arm)
    arm_of = snippet()
    spec = EXAMPLE["arms"]
    for arms in (
        ARMS,
        parsed_arms("b:0.3,a:0.3,c:0.1,d:0.3"),
        parsed_arms("x:0.33333,y:0.33333,z:0.33334"),
    ):
        want = [documented_arm(u, SALT, arms) for u in USERS]
        assert [arm_of(u, SALT, arms) for u in USERS] == want
        assert [assign(u, SALT, arms) for u in USERS[:300]] == want[:300]
        got = assign_series(pd.Series(USERS, index=np.arange(len(USERS)) * 2), SALT, dict(arms))
        assert got.tolist() == want and list(got.index) == list(np.arange(len(USERS)) * 2)
        assert list(got.cat.categories) == [name for name, _ in arms]
    assert assign(EXAMPLE["user_id"], SALT, spec) == EXAMPLE["arm"]
    assert len({documented_arm(u, "another-salt", ARMS) == documented_arm(u, SALT, ARMS)
                for u in USERS}) == 2  # fmt: skip


def test_the_public_function_refuses_what_the_service_refuses() -> None:
    with pytest.raises(InvalidId):
        assign("u 1", SALT, ARMS)
    with pytest.raises(InvalidId, match="1 user id.*'dbk:{x}'.*index 1"):
        assign_series(pd.Series(["u1", "dbk:{x}", "u2"]), SALT, ARMS)
    with pytest.raises(InvalidId):
        assign_series(pd.Series(["u1", None]), SALT, ARMS)
    with pytest.raises(ExperimentError, match="add up to 1"):
        assign("u1", SALT, "a:0.5,b:0.6")
    with pytest.raises(ExperimentError, match="salt"):
        assign("u1", "s" * 65, ARMS)


@pytest.fixture
def stub(client: redis.Redis, settings: RedisSettings) -> Iterator[pb_grpc.DebunkServiceStub]:
    """A real service on loopback over a one-user snapshot (arms do not need exposures)."""
    snapshot(client, "v1", [("u1", "r1", "click", 2)])
    svc = ServiceThread(settings).start()
    try:
        with grpc.insecure_channel(svc.target) as ch:
            assert wait_for_health(ch, SERVING) == SERVING
            yield pb_grpc.DebunkServiceStub(ch)
    finally:
        svc.stop()


def labelled(
    stub: pb_grpc.DebunkServiceStub, user: str, timeout: float = 10
) -> pb.RankFeedResponse:
    """RankFeed for ``user``, polled until the server has loaded the experiment config."""
    deadline = time.monotonic() + timeout
    while True:
        reply = stub.RankFeed(pb.RankFeedRequest(user_id=user, limit=1), timeout=5)
        if reply.experiment or time.monotonic() > deadline:
            return reply


@pytest.mark.parametrize("spec", [EXAMPLE["arms"], "b:0.3,a:0.3,c:0.1:holdout,d:0.3:model"])
def test_the_service_reports_the_arm_the_page_gives(
    client: redis.Redis, stub: pb_grpc.DebunkServiceStub, spec: str
) -> None:
    now = time.time()
    experiments.save(client, Experiment("docs-rule", SALT, parse_arms(spec), now - 60, now + 3600))
    arms = parsed_arms(spec)
    first = labelled(stub, EXAMPLE["user_id"])
    assert (first.experiment, first.arm) == (
        "docs-rule",
        documented_arm(EXAMPLE["user_id"], SALT, arms),
    )
    served: list[str] = []
    for k in range(0, len(USERS), 1000):
        batch = stub.RankFeedBatch(
            pb.RankFeedBatchRequest(user_ids=USERS[k : k + 1000], limit=1), timeout=10
        )
        assert [f.user_id for f in batch.feeds] == USERS[k : k + 1000]
        served += [f.arm for f in batch.feeds]
    want = [documented_arm(u, SALT, arms) for u in USERS]
    assert served == want
    assert assign_series(pd.Series(USERS), SALT, spec).tolist() == served
    assert set(served) == {name for name, _ in arms}  # every arm is reached, so order matters
    one_by_one = [
        stub.RankFeed(pb.RankFeedRequest(user_id=u, limit=1), timeout=5).arm for u in USERS[-8:]
    ]
    assert one_by_one == want[-8:]


def test_assign_series_gives_the_reports_arms_for_its_exposed_pairs(tmp_path: Path) -> None:
    planted = PlantedExperiment("rule-ab", "a:0.3,b:0.5,c:0.2:holdout", salt=SALT)
    synthesize(tmp_path, users=1500, days=2, seed=4, experiment=planted)
    r = reach_report(tmp_path, tmp_path / "experiment.json", "2026-10-01", "2026-10-02", n_boot=5)
    users = r.outcomes.pairs.column("user_id").to_pandas()
    arms = assign_series(users, r.experiment.salt, r.experiment.arms)
    assert arms.tolist() == [documented_arm(u, SALT, parsed_arms(planted.arms)) for u in users]
    counted = r.arms.set_index("arm")["exposed_pairs"].to_dict()
    assert arms.value_counts().to_dict() == counted and min(counted.values()) > 0

"""Issue 17's service targets on real data: CED through the real nightly job and the real gRPC
service.

``bench/ced_world.py`` writes CED as the input contracts into a temporary folder; the real
nightly job (``offline.nightly.job.run_nightly``, rules only) runs against an embedded
redis-server; ``debunk serve`` answers on loopback; every number below comes from gRPC answers:

- CommentTop(item = a rumor post): the card's rumor is the post's own rumor, or one of its claim
  cluster (``ranking/clusters.py``, the job's own clusters); split by hand-tagged posts and posts
  left to the matcher;
- RankFeedBatch(limit 3) for a hashed sample of the users who engaged with a rumor post: a card
  is right when its rumor's cluster is one the user engaged with; precision@3 = right cards /
  cards (users with a card), recall@3 = right clusters / min(3, clusters the user engaged with);
- RankFeedBatch for a hashed sample of the users who engaged only with non-rumor posts: the
  share that gets any card (and, exactly, from the job's exposure state, how many of all of
  them would).

``--credited-media`` writes the posts that end in a source credit as ``media`` authors, whose
matches the nightly routes to review (a stand-in for the author types CED lacks).

Run: ``python -m bench.eval_service`` (``--data`` for another CED folder; without one it prints
the reason and exits 0). Prints the table with the targets and the failures with ids and texts,
and writes ``bench/out/eval_service.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import grpc
import pyarrow.compute as pc
import pyarrow.parquet as pq
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.ced_world import CedWorld, build, engagements, stable_hash
from debunk.v1 import debunk_pb2 as pb
from debunk.v1 import debunk_pb2_grpc as pb_grpc
from domain.ids import InvalidId, check_id
from feature_store.connection import RedisSettings
from feature_store.embedded import EmbeddedRedis, free_port
from offline.io.catalog import load_rumors
from offline.nightly.job import run_nightly
from ranking.clusters import assign_clusters

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "ced"
OUT = Path(__file__).parent / "out" / "eval_service.json"
RUN_DATE = date(2026, 11, 30)
TARGETS = {
    "comment_same_claim": 0.98,
    "feed_precision3": 0.9,
    "feed_recall3": 0.98,
    "background_with_card": 0.0,
}
BATCH = 500
EXAMPLES = 12


def short(text: str, n: int = 48) -> str:
    """The first ``n`` characters of ``text`` on one line."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= n else flat[: n - 1] + "…"


def hashed_sample(ids: Iterable[str], n: int, salt: str) -> list[str]:
    """The ``n`` ids with the smallest salted hash (a deterministic sample)."""
    return sorted(ids, key=lambda i: (stable_hash(salt + i), i))[:n]


def valid_user(uid: str) -> bool:
    """Whether ``u<uid>`` is a usable id (the job rejects the others)."""
    try:
        check_id("u" + uid)
    except InvalidId:
        return False
    return True


def user_claims(
    world: CedWorld, clusters: dict[str, str], ced: Path, limit: int | None
) -> tuple[dict[str, set[str]], list[str], dict[str, set[str]]]:
    """(user -> the claim clusters of the rumor posts they engaged with, users who engaged only
    with non-rumor posts, user -> the posts they engaged with), over the engagements the logs
    hold with a time."""
    table = engagements(ced, limit)
    table = table.filter(pc.is_valid(table["ts"]))
    exposed: dict[str, set[str]] = {}
    posts_of: dict[str, set[str]] = {}
    everyone: set[str] = set()
    for post, uid in zip(table["post_id"].to_pylist(), table["uid"].to_pylist(), strict=True):
        if not valid_user(uid):
            continue
        user = "u" + uid
        everyone.add(user)
        posts_of.setdefault(user, set()).add(post)
        rumor = world.rumor_of_post.get(post)
        if rumor is not None:
            exposed.setdefault(user, set()).add(clusters[rumor])
    return exposed, sorted(everyone - set(exposed)), posts_of


def wait_serving(target: str, proc: subprocess.Popen, timeout: float = 300.0) -> None:
    """Poll health until SERVING (the snapshot and its matcher index are loaded)."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"debunk serve exited with {proc.returncode}")
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise TimeoutError("debunk serve did not become SERVING")


def comment_top(stub: pb_grpc.DebunkServiceStub, world: CedWorld, clusters: dict[str, str]) -> dict:
    """CommentTop on every rumor post: own rumor, same claim, none, by tag source."""
    rows = []
    for post in sorted(world.rumor_of_post):
        reply = stub.CommentTop(pb.CommentTopRequest(item_id=f"p:{post}"), timeout=10)
        own = world.rumor_of_post[post]
        got = reply.card.rumor_id if reply.HasField("card") else ""
        rows.append(
            {
                "post": post,
                "hand": post in world.hand_tagged,
                "got": got,
                "own": got == own,
                "same": bool(got) and clusters.get(got) == clusters[own],
            }
        )
    out = {}
    for name, part in (
        ("all", rows),
        ("hand", [r for r in rows if r["hand"]]),
        ("matched", [r for r in rows if not r["hand"]]),
    ):
        n = max(len(part), 1)
        out[name] = {
            "posts": len(part),
            "own": round(sum(r["own"] for r in part) / n, 4),
            "same_claim": round(sum(r["same"] for r in part) / n, 4),
            "no_card": round(sum(not r["got"] for r in part) / n, 4),
        }
    out["failures"] = [r for r in rows if not r["same"]]
    return out


def feeds(stub: pb_grpc.DebunkServiceStub, users: list[str]) -> dict[str, list[str]]:
    """user -> the rumor ids of their RankFeed cards (limit 3), in order, over RankFeedBatch."""
    out: dict[str, list[str]] = {}
    for i in range(0, len(users), BATCH):
        reply = stub.RankFeedBatch(
            pb.RankFeedBatchRequest(user_ids=users[i : i + BATCH], limit=3), timeout=60
        )
        if reply.degraded:
            raise RuntimeError("RankFeedBatch answered degraded")
        for feed in reply.feeds:
            out[feed.user_id] = [c.rumor_id for c in feed.cards]
    return out


def feed_quality(
    cards: dict[str, list[str]], exposed: dict[str, set[str]], clusters: dict[str, str]
) -> dict:
    """precision@3 and recall@3 at claim level over the sampled exposed users."""
    precisions, recalls, wrong = [], [], []
    for user, claims in exposed.items():
        got = cards.get(user, [])
        right = [r for r in got if clusters.get(r, r) in claims]
        if got:
            precisions.append(len(right) / len(got))
        recalls.append(len({clusters.get(r, r) for r in right}) / min(3, len(claims)))
        wrong += [(user, r) for r in got if clusters.get(r, r) not in claims]
    return {
        "users": len(exposed),
        "with_card": len(precisions),
        "precision3": round(sum(precisions) / max(len(precisions), 1), 4),
        "recall3": round(sum(recalls) / max(len(recalls), 1), 4),
        "wrong_cards": wrong,
    }


def serve(redis_url: str) -> tuple[subprocess.Popen, str]:
    """``debunk serve`` on a free loopback port with a cap no evaluation reaches."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "--log-level",
            "WARNING",
            "serve",
            "--port",
            str(port),
            "--feed-daily-cap",
            "1000000",
        ],
        env={**os.environ, "REDIS_URL": redis_url},
        cwd=ROOT,
    )
    return proc, f"127.0.0.1:{port}"


def item_tags(state: Path, data: Path) -> dict[str, list[tuple[str, str, float]]]:
    """item -> its (rumor, source, score) tags before precedence: hand tags and the night's."""
    out: dict[str, list[tuple[str, str, float]]] = {}
    for path in (data / "tagged_items.parquet", state / "match" / "matched_tags.parquet"):
        for row in pq.read_table(path).to_pylist():
            out.setdefault(row["item_id"], []).append(
                (row["rumor_id"], row["source"], round(row["score"], 4))
            )
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line: the CED folder, sample sizes, the hand-tagged share."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--users", type=int, default=3000, help="sampled users of each kind")
    parser.add_argument("--hand-share", type=float, default=0.5)
    parser.add_argument(
        "--engagements",
        type=int,
        default=None,
        help="a hashed sample of this many engagements (default: all)",
    )
    parser.add_argument("--work", type=Path, default=None, help="keep the files here")
    parser.add_argument(
        "--credited-media",
        action="store_true",
        help="posts ending in a source credit are by media authors (their matches: review)",
    )
    return parser.parse_args(argv)


def through_service(
    work: Path, world: CedWorld, clusters: dict[str, str], exposed: dict[str, set[str]],
    background: list[str], n_users: int,
) -> dict:  # fmt: skip
    """Run the nightly job into an embedded redis-server, start ``debunk serve``, and ask it:
    CommentTop on the rumor posts, RankFeedBatch for both user samples."""
    t0 = time.perf_counter()
    with EmbeddedRedis(work / "redis") as server:
        night = run_nightly(
            work / "data", RUN_DATE, work / "state", RedisSettings(url=server.url), train=False
        )
        night_s = time.perf_counter() - t0
        proc, target = serve(server.local_url)
        try:
            wait_serving(target, proc)
            with grpc.insecure_channel(target) as ch:
                stub = pb_grpc.DebunkServiceStub(ch)
                comments = comment_top(stub, world, clusters)
                users = hashed_sample(exposed, n_users, "exposed:")
                feed = feed_quality(feeds(stub, users), {u: exposed[u] for u in users}, clusters)
                quiet = hashed_sample(background, n_users, "background:")
                quiet_cards = feeds(stub, quiet)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    return {"night": night, "night_s": night_s, "comments": comments, "feed": feed,
            "quiet": quiet, "quiet_cards": quiet_cards}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not all((args.data / f).exists() for f in ("posts.parquet", "engagements.parquet")):
        print(f"{args.data}: CED posts/engagements not found: nothing to evaluate (skipped)")
        return 0
    if args.work is not None:
        return evaluate(args, argv, args.work)
    with tempfile.TemporaryDirectory(prefix="eval-service-") as work:  # CED copies go with it
        return evaluate(args, argv, Path(work))


def evaluate(args: argparse.Namespace, argv: list[str] | None, work: Path) -> int:
    """Build the inputs in ``work``, run the night and the service, print and save the result."""
    t0 = time.perf_counter()
    world = build(args.data, work / "data", RUN_DATE, hand_share=args.hand_share,
                  max_engagements=args.engagements,
                  credited_media=args.credited_media)  # fmt: skip
    _, clusters = assign_clusters(load_rumors(work / "data" / "rumors.jsonl"))
    exposed, background, posts_of = user_claims(world, clusters, args.data, args.engagements)
    built_s = time.perf_counter() - t0
    got = through_service(work, world, clusters, exposed, background, args.users)
    state = pq.read_table(work / "state" / "current" / "exposures.parquet", columns=["user_id"])
    state_users = set(state["user_id"].to_pylist())
    carded = {u: c for u, c in got["quiet_cards"].items() if c}
    comments, feed, night = got["comments"], got["feed"], got["night"]
    result = {
        "command": " ".join(["python -m bench.eval_service", *(argv or sys.argv[1:])]),
        "engagements": world.exposures,
        "rumor_posts": len(world.rumor_of_post),
        "hand_tagged": len(world.hand_tagged),
        "clusters": len(set(clusters.values())),
        "media_posts": {
            "rumor": sum(p in world.rumor_of_post for p in world.media_posts),
            "rumor_left_to_matcher": sum(
                p in world.rumor_of_post and p not in world.hand_tagged for p in world.media_posts
            ),
            "non_rumor": sum(p not in world.rumor_of_post for p in world.media_posts),
        },
        "match": night.get("match", {}),
        "tag_precedence": night.get("tag_precedence", {}),
        "comment_top": {k: v for k, v in comments.items() if k != "failures"},
        "feed": {k: v for k, v in feed.items() if k != "wrong_cards"},
        "background": {
            "sampled": len(got["quiet"]),
            "with_card": round(len(carded) / max(len(got["quiet"]), 1), 4),
            "all_users": len(background),
            "all_in_state": sum(u in state_users for u in background),
        },
        "seconds": {
            "inputs": round(built_s, 1),
            "nightly": round(got["night_s"], 1),
            "total": round(time.perf_counter() - t0, 1),
        },  # fmt: skip
    }
    tags = item_tags(work / "state", work / "data")
    report(result, comments["failures"], feed["wrong_cards"], carded, world, posts_of, tags)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def claim_text(world: CedWorld, rumor_id: str) -> str:
    """The claim of ``rumor_id`` (its post's text), shortened."""
    return short(world.texts.get(rumor_id.removeprefix("r:"), ""))


def report(
    result: dict,
    failures: list,
    wrong: list,
    carded: dict,
    world: CedWorld,
    posts_of: dict,
    tags: dict,
) -> None:
    """Print the table with the targets beside, then failure examples with ids and texts."""
    c, f, b = result["comment_top"], result["feed"], result["background"]
    print(
        f"CED through the service: {result['rumor_posts']} rumor posts "
        f"({result['hand_tagged']} hand-tagged), {result['clusters']} claim clusters, "
        f"{result['engagements']} engagements; {result['seconds']}"
    )
    routed = result["match"].get("routed_to_review", {})
    print(f"posts by media authors: {result['media_posts']}; matches routed to review: {routed}")
    print(f"{'metric':<44}{'value':>8}{'target':>10}")
    rows = [
        ("CommentTop own rumor (all rumor posts)", c["all"]["own"], ""),
        ("CommentTop same claim (all rumor posts)", c["all"]["same_claim"], ">= 0.98"),
        ("  hand-tagged posts: same claim", c["hand"]["same_claim"], ""),
        ("  posts left to the matcher: same claim", c["matched"]["same_claim"], ""),
        ("  posts left to the matcher: no card", c["matched"]["no_card"], ""),
        (
            f"feed precision@3 ({f['with_card']} of {f['users']} users with a card)",
            f["precision3"],
            ">= 0.9",
        ),
        ("feed recall@3", f["recall3"], ">= 0.98"),
        (f"background users with a card (of {b['sampled']})", b["with_card"], "0"),
        (f"  all background users in the state (of {b['all_users']})", b["all_in_state"], "0"),
    ]
    for name, value, target in rows:
        print(f"{name:<44}{value:>8}{target:>10}")
    print("\nCommentTop misses (post: text -> card rumor: its claim; the post's tags):")
    for r in failures[:EXAMPLES]:
        got = r["got"] or "(no card)"
        print(
            f"  {r['post']}: {short(world.texts[r['post']])} -> {got}: "
            f"{claim_text(world, r['got'])}; tags {tags.get('p:' + r['post'], [])}"
        )
    print("\nFeed cards of a claim the user never engaged with (user, card -> engaged posts):")
    for user, rumor in wrong[:EXAMPLES]:
        via = [
            p
            for p in sorted(posts_of.get(user, ()))
            if any(t[0] == rumor for t in tags.get("p:" + p, []))
        ]
        print(
            f"  {user} {rumor}: {claim_text(world, rumor)}; tagged through {via[:3]} "
            f"{[short(world.texts[p], 32) for p in via[:2]]}"
        )
    print("\nBackground users with a card (user, card -> the non-rumor post tagged with it):")
    for user, cards in list(carded.items())[:EXAMPLES]:
        via = [p for p in sorted(posts_of.get(user, ())) if tags.get("p:" + p)]
        print(
            f"  {user} {cards}: {claim_text(world, cards[0])}; through "
            f"{[(p, short(world.texts[p], 40), tags['p:' + p]) for p in via[:2]]}"
        )


if __name__ == "__main__":
    sys.exit(main())

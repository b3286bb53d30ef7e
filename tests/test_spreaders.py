"""ranking.spreaders: who a rumor's notification goes to, on plain data (no servers)."""

from __future__ import annotations

from domain.delivery import Delivery, notification_id
from domain.models import UserModel
from domain.records import Catalog, Debunk, Rumor
from ranking.policy import FeedRules
from ranking.spreaders import Recipient, SpreadRecord, plan_notifications, spreaders

RUMORS = [
    Rumor("r1", "claim one", "epidemic", 4, "false", "confirmed", cluster="c1"),
    Rumor("r1b", "claim one again", "epidemic", 4, "false", "confirmed", cluster="c1"),
]
DEBUNKS = [
    Debunk("d1m", ("r1",), "media", "https://x/d1m", "p", "media"),
    Debunk("d1", ("r1",), "official", "https://x/d1", "p", "official"),
]
CATALOG = Catalog.build(RUMORS, DEBUNKS)
TARGETED = FeedRules(targeted=True, learned_ranker=True, daily_cap=5)
HOLDOUT = FeedRules(targeted=False, learned_ranker=False, daily_cap=5)
NOW = 1_790_000_000


def who(user: str, *, notified: bool = False, rules: FeedRules = TARGETED, **state) -> Recipient:
    return Recipient(user, notified, Delivery(**state), UserModel(None, ()), rules)


def test_spreaders_are_commenters_and_sharers_once_each_earliest_first() -> None:
    records = [
        SpreadRecord("late", "share", 300),
        SpreadRecord("viewer", "impression", 10),
        SpreadRecord("clicker", "click", 20),
        SpreadRecord("liker", "like", 30),
        SpreadRecord("commenter", "comment", 200),
        SpreadRecord("tie-b", "share", 100),
        SpreadRecord("tie-a", "share", 100),
        SpreadRecord("late", "comment", 50),  # an extra record of the same user: earliest wins
    ]
    assert spreaders(records) == ["late", "tie-a", "tie-b", "commenter"]
    assert spreaders(reversed(records)) == spreaders(records)


def test_each_recipient_gets_the_most_authoritative_debunk_they_have_not_seen() -> None:
    planned, skipped = plan_notifications(
        RUMORS[0], CATALOG, [who("u1"), who("u2", impression={"d1": NOW - 10})],
        cap=2, reason="confirmed", now=NOW,
    )  # fmt: skip
    assert [(n.user_id, n.debunk_id) for n in planned] == [("u1", "d1"), ("u2", "d1m")]
    assert planned[0].notification_id == notification_id("u1", "r1") != planned[1].notification_id
    assert {n.reason for n in planned} == {"confirmed"} and not skipped


def test_skips_are_counted_by_reason() -> None:
    recipients = [
        who("done", notified=True),
        who("holdout", rules=HOLDOUT),
        who("dismissed", dismissed_rumors={"r1": NOW - 5}),
        who("dismissed-claim", dismissed_rumors={"r1b": NOW - 5}),  # a sibling of r1's claim
        who("dismissed-debunks", dismissed_rumors={"d1": NOW - 5}, impression={"d1m": NOW}),
        who("seen-all", impression={"d1": NOW}, click={"d1m": NOW}),
        who("capped", served_today=2),
        who("ok", served_today=1),
    ]
    planned, skipped = plan_notifications(RUMORS[0], CATALOG, recipients, cap=2,
                                          reason="verdict_changed", now=NOW)  # fmt: skip
    assert [n.user_id for n in planned] == ["ok"]
    assert skipped == {"already": 1, "holdout": 1, "dismissed": 3, "seen": 1, "capped": 1}

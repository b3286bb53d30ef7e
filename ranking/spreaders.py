"""Who is notified when a rumor is confirmed or its verdict changes: its spreaders (the users
whose strongest action on it is a comment or a share), once each, earliest first, within the
push cap, honouring dismissals and experiment holdouts, each with the debunk the feed would pick.

Pure rules on plain records: the edges read the exposure state and the delivery state and
write the outbox (offline/live/notify.py, feature_store/outbox.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from domain.delivery import Delivery, Notification, notification_id
from domain.models import UserModel
from domain.records import Catalog, ExposureState, Rumor
from ranking.candidates import Candidate
from ranking.filters import drop_dismissed_rumors
from ranking.models import attach_preferred_debunk
from ranking.policy import FeedRules
from ranking.selectors import attach_most_authoritative_debunk

# The actions that spread a rumor to others: the strongest exposures.
SPREAD_ACTIONS = frozenset({"comment", "share"})


@dataclass(frozen=True, slots=True)
class SpreadRecord:
    """What one user did with the rumor: the strongest action, and when they spread it (the
    first share; for a commenter, the first exposure: the state keeps no comment time)."""

    user_id: str
    strongest_action: str
    ts: int  # unix seconds


@dataclass(frozen=True, slots=True)
class Recipient:
    """One spreader as the store knows them: notified before, delivery state (today's push
    count in ``served_today``), model side, and the rules of their experiment arm."""

    user_id: str
    notified: bool
    delivery: Delivery
    model: UserModel
    rules: FeedRules
    experiment: str = ""
    arm: str = ""


def spreaders(records: Iterable[SpreadRecord]) -> list[str]:
    """The users of ``records`` who commented or shared, once each (their earliest record),
    earliest first, ties by user id: a total order, so every run batches the same way."""
    first: dict[str, int] = {}
    for r in records:
        if r.strongest_action in SPREAD_ACTIONS and r.ts < first.get(r.user_id, r.ts + 1):
            first[r.user_id] = r.ts
    return sorted(first, key=lambda u: (first[u], u))


def _debunk_for(rumor: Rumor, catalog: Catalog, r: Recipient) -> str | None:
    """The debunk the feed would give ``r`` for ``rumor`` (None when every one was seen)."""
    c = Candidate(rumor, ExposureState(rumor.rumor_id, 0, 0, 0, 0, 0))
    if catalog.model is not None and r.rules.learned_ranker:
        attach_preferred_debunk([c], catalog, catalog.model, r.model, r.delivery)
    else:
        attach_most_authoritative_debunk([c], catalog, r.delivery)
    return c.debunk.debunk_id if c.debunk is not None else None


def skip_reason(rumor: Rumor, catalog: Catalog, r: Recipient, cap: int) -> str:
    """Why ``r`` is not notified ("" when they are): already notified, in a holdout arm,
    dismissed the rumor (or its claim), saw every debunk of it, or spent today's push cap."""
    if r.notified:
        return "already"
    if not r.rules.targeted:
        return "holdout"
    if not drop_dismissed_rumors([Candidate(rumor, ExposureState(rumor.rumor_id, 0, 0, 0, 0, 0))],
                                 r.delivery, catalog):  # fmt: skip
        return "dismissed"
    if r.delivery.served_today >= cap:
        return "capped"
    return ""


def plan_notifications(
    rumor: Rumor,
    catalog: Catalog,
    recipients: Iterable[Recipient],
    *,
    cap: int,
    reason: str,
    now: int,
) -> tuple[list[Notification], Counter[str]]:
    """The notifications to append for ``recipients`` (in their order), and how many users
    were skipped for each reason (``skip_reason``, or "seen")."""
    out: list[Notification] = []
    skipped: Counter[str] = Counter()
    for r in recipients:
        why = skip_reason(rumor, catalog, r, cap)
        debunk = None if why else _debunk_for(rumor, catalog, r)
        if not why and (debunk is None or debunk in r.delivery.dismissed_rumors):
            why = "seen" if debunk is None else "dismissed"
        if why:
            skipped[why] += 1
            continue
        assert debunk is not None
        nid = notification_id(r.user_id, rumor.rumor_id)
        out.append(Notification(nid, r.user_id, rumor.rumor_id, debunk, reason, now,
                                r.experiment, r.arm))  # fmt: skip
    return out, skipped

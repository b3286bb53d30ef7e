"""The serving policy: the per-user daily cap and what an experiment arm's feed may get.

The rules live here, on plain data, so the servicer only reads and writes and offline evaluation
can apply the same caps and arm rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the rules read an arm's fields; importing it would pull numpy into the CLI
    from domain.experiments import Arm

# The arm policies (domain.experiments.POLICIES) whose feed has no targeted cards, and whose
# feed is ranked without the learned model.
UNTARGETED_POLICIES = frozenset({"holdout"})
RULES_ONLY_POLICIES = frozenset({"rules"})


@dataclass(frozen=True)
class ServingPolicy:
    """The knobs of the serving policy operators set; these defaults are the only ones (the
    ``debunk serve`` flags read them)."""

    # Feed cards one user may be served per UTC day, unless the user's arm sets its own.
    feed_daily_cap: int = 5
    # Push notifications (the outbox, ranking/spreaders.py) one user may get per UTC day.
    push_daily_cap: int = 2


@dataclass(frozen=True, slots=True)
class FeedRules:
    """What one user's feed may get: targeted cards at all, the learned ranker, how many a day."""

    targeted: bool
    learned_ranker: bool
    daily_cap: int

    def budget(self, limit: int, served_today: int) -> int:
        """Cards this answer may hold: the request's limit within what is left of the day's
        cap (0 for an untargeted feed or a spent cap)."""
        if not self.targeted:
            return 0
        return max(0, min(limit, self.daily_cap - served_today))


def feed_rules(policy: ServingPolicy, arm: Arm | None) -> FeedRules:
    """The rules of a user in ``arm`` (None: no experiment runs). Holdout arms get no targeted
    cards; "rules" arms are ranked by the policy alone; "model" arms (and users outside any
    experiment) get the learned ranker when the snapshot has one; an arm's own cap replaces
    the operators' daily cap."""
    if arm is None:
        return FeedRules(targeted=True, learned_ranker=True, daily_cap=policy.feed_daily_cap)
    cap = policy.feed_daily_cap if arm.feed_daily_cap is None else arm.feed_daily_cap
    return FeedRules(
        targeted=arm.policy not in UNTARGETED_POLICIES,
        learned_ranker=arm.policy not in RULES_ONLY_POLICIES,
        daily_cap=cap,
    )

"""Learned-model steps of the feed: pick the debunk a user will read, blend model and policy,
and add a capped prebunk card. Numpy dot products on snapshot factors; no model library."""

from __future__ import annotations

import math
from collections.abc import Sequence

from domain.delivery import Delivery
from domain.models import FeedModel, UserModel
from domain.records import Catalog, Debunk, ExposureState
from ranking.candidates import Candidate
from ranking.selectors import tag_confidence, within_strength

PREBUNK_TEXT = "prebunk: you may meet this rumor"
MAX_PREBUNK_CARDS = 1  # per answer, always after every exposed card


def sigmoid(x: float) -> float:
    """The logistic function, safe for large |x|."""
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def attach_preferred_debunk(
    candidates: list[Candidate],
    catalog: Catalog,
    model: FeedModel,
    user: UserModel,
    delivery: Delivery | None = None,
) -> None:
    """Give each candidate the unseen debunk of its rumor the user is likeliest to read
    (ties and debunks unknown to the model: authority order); store its affinity. The logits
    come with the exposure when the snapshot precomputed them, else from one matrix product per
    user over every option of the remaining candidates."""
    if delivery is not None and not delivery.saw_any:
        delivery = None  # nothing seen yet: no per-option look-ups
    by_rumor = catalog.debunks_by_rumor
    missing: list[tuple[Candidate, Sequence[Debunk], tuple[bool, ...]]] = []
    rows: list[int] = []
    for c in candidates:
        options = by_rumor.get(c.rumor.rumor_id, ())
        stored = c.exposure.logits
        if stored and len(stored) == len(options) and c.rumor.rumor_id not in catalog.stale_logits:
            _attach(c, options, stored, delivery)  # NaN for a debunk the model does not know
            continue
        option_rows, known = model.option_rows(c.rumor.rumor_id, options)
        missing.append((c, options, known))
        rows += option_rows
    if not missing:
        return
    logits = model.row_logits(rows, model.user_vector(user.factors)) if rows else []
    at = 0
    for c, options, known in missing:
        part = logits[at : at + len(known)]
        at += len(known)
        _attach(c, options, [v if k else math.nan for v, k in zip(part, known, strict=True)],
                delivery)  # fmt: skip


def _attach(
    c: Candidate, options: Sequence[Debunk], logits: Sequence[float], delivery: Delivery | None
) -> None:
    """Give ``c`` its preferred option and that option's affinity."""
    if delivery is None and len(options) == 1:
        best, best_logit = options[0], logits[0]  # the one option (NaN: not known)
    else:
        best, best_logit = preferred_option(options, logits, delivery)
    c.debunk = best
    if best is not None:
        c.features["affinity"] = sigmoid(best_logit) if math.isfinite(best_logit) else 0.0


def preferred_option(
    options: Sequence[Debunk], logits: Sequence[float], delivery: Delivery | None
) -> tuple[Debunk | None, float]:
    """The unseen option with the highest logit (NaN never wins; the first maximum wins ties),
    else the most authoritative unseen one; and its logit (-inf when none had one)."""
    best, best_logit = None, -math.inf
    for d, logit in zip(options, logits, strict=False):
        if delivery is not None and delivery.seen(d.debunk_id):
            continue
        if best is None:
            best = d
        if logit > best_logit:
            best, best_logit = d, logit
    return best, best_logit


def combine_policy_and_affinity(candidates: list[Candidate], weight: float) -> None:
    """Score = tag score x (strength + (1 - w) x the rules' order within a strength (recency
    and priority, ``within_strength``) + w x affinity rank): the rule's exposure strength still
    decides, the model orders cards within one strength (affinity min-max scaled), and a
    matched-only exposure weighs by the matcher's confidence (``tag_confidence``)."""
    if not candidates:
        return
    aff = [c.features.get("affinity", 0.0) for c in candidates]
    low, span = min(aff), max(aff) - min(aff)
    for c, a in zip(candidates, aff, strict=True):
        scaled = (a - low) / span if span > 0 else 1.0
        c.features["affinity_rank"] = scaled
        rules = within_strength(c)
        base = c.features.get("strength", 0.0) + (1 - weight) * rules + weight * scaled
        c.score = tag_confidence(c) * base


def prebunk_candidates(
    exposures: list[ExposureState],
    catalog: Catalog,
    model: FeedModel | None,
    user: UserModel,
    delivery: Delivery | None = None,
) -> list[Candidate]:
    """At most MAX_PREBUNK_CARDS at-risk rumors the user is not logged as exposed to: confirmed,
    not dismissed, with an unseen debunk, and of a claim cluster the user neither saw nor
    dismissed; scored below every exposed card (score < 0)."""
    exposed = {e.rumor_id for e in exposures}
    dismissed = delivery.dismissed_rumors if delivery else set()
    known = catalog.rumors
    claims_met = {known[r].claim_cluster for r in exposed | set(dismissed) if r in known}
    out: list[Candidate] = []
    stored = user.prebunk_logits  # the ranker's option logits, when precomputed
    for i, (rumor_id, risk) in enumerate(user.prebunks):
        rumor = catalog.rumors.get(rumor_id)
        if rumor is None or not rumor.confirmed or rumor_id in exposed or rumor_id in dismissed:
            continue
        if rumor.claim_cluster in claims_met:
            continue
        logits = stored[i] if i < len(stored) else ()
        c = Candidate(rumor, ExposureState(rumor_id, 0, 0, 0, 0, 0, logits), prebunk=True)
        if model is not None:
            attach_preferred_debunk([c], catalog, model, user, delivery)
        else:
            options = catalog.debunks_by_rumor.get(rumor_id, ())
            c.debunk = next((d for d in options if not (delivery and delivery.seen(d.debunk_id))),
                            None)  # fmt: skip
        if c.debunk is None:
            continue
        c.features["risk"] = risk
        c.score = -1.0 + min(max(risk, 0.0), 0.999)  # in [-1, 0): after every exposed card
        out.append(c)
        if len(out) == MAX_PREBUNK_CARDS:
            break
    return out

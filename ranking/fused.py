"""The feed pipeline fused into one pass over a user's exposures: the same answer as
``pipeline.rank_feed`` (the reference; tests compare the two on seeded worlds), without a
Candidate, a feature dict and five scorer loops per exposure. Only the cards that make the
answer become Candidates.

Per catalog, each confirmed rumor's fixed part (its debunk options in authority order, its
priority, its claim cluster, whether the snapshot's stored logits still line up) is looked up
once and kept (``rank_table``); the float arithmetic is the reference's, term for term, so the
scores are the same to the bit."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from domain.delivery import Delivery
from domain.models import FeedModel, UserModel
from domain.records import Catalog, Debunk, ExposureState, Rumor, named_states
from ranking.candidates import Candidate
from ranking.models import prebunk_candidates, preferred_option, sigmoid
from ranking.scorers import PRIORITY_WEIGHT, RECENCY_HALF_LIFE_S, rumor_priority

try:  # built at install (setup.py); without it the Python pass answers alone
    from ranking import _fastrank
except ImportError:  # pragma: no cover - no C compiler at install
    _fastrank = None

# Tables kept for this many catalogs (a snapshot's and its live-layer merges).
MAX_TABLES = 8
_RULES_RECENCY = 1 - PRIORITY_WEIGHT
_new = tuple.__new__


class RumorRow(NamedTuple):
    """What ranking needs of one confirmed rumor, fixed for its catalog (the C pass reads the
    fields by position: keep the order)."""

    rumor: Rumor
    options: Sequence[Debunk]  # its debunks in authority order (the catalog's list), or ()
    priority: float  # scorers.rumor_priority
    cluster: str  # Rumor.claim_cluster
    logits_ok: bool  # the snapshot's stored option logits line up (not in stale_logits)
    rumor_id: str
    severity: int
    revised_at: int
    option_ids: tuple[str, ...]  # the options' debunk ids


class RankTable(dict[str, RumorRow | None]):
    """rumor id -> its RumorRow (None: unknown or not confirmed), filled on first use, so a
    new catalog (a flip, a live change) costs no pass over the whole library."""

    def __init__(self, catalog: Catalog) -> None:
        super().__init__()
        self.catalog = catalog

    def __missing__(self, rumor_id: str) -> RumorRow | None:
        cat = self.catalog
        r = cat.rumors.get(rumor_id)
        row = None
        if r is not None and r.confirmed:
            options = cat.debunks_by_rumor.get(rumor_id, ())
            row = RumorRow(r, options, rumor_priority(r.severity, r.category), r.claim_cluster,
                           rumor_id not in cat.stale_logits, rumor_id, r.severity, r.revised_at,
                           tuple(d.debunk_id for d in options))  # fmt: skip
        self[rumor_id] = row
        return row


_TABLES: dict[int, RankTable] = {}


def rank_table(catalog: Catalog) -> RankTable:
    """The table of ``catalog`` (kept while the catalog object is the one it was built for)."""
    table = _TABLES.get(id(catalog))
    if table is None or table.catalog is not catalog:
        if len(_TABLES) >= MAX_TABLES:
            _TABLES.pop(next(iter(_TABLES)))
        table = _TABLES[id(catalog)] = RankTable(catalog)
    return table


def rank_feed_fused(
    exposures: list[ExposureState],
    catalog: Catalog,
    *,
    now: float,
    limit: int,
    delivery: Delivery | None = None,
    model: UserModel | None = None,
    c_pass: bool = True,
) -> list[Candidate]:
    """``rank_feed``'s answer (same candidates, scores and features), in one pass: the C pass
    when it is built, ``c_pass`` is set and it can answer, else the Python one (which is what
    the C pass is tested against, with ``c_pass=False``). ``exposures`` may be plain tuples
    in ExposureState's field order (``SnapshotRows.get(plain=True)``): the C pass reads them
    by position, and only the selected ones become ExposureStates."""
    if limit <= 0 or (not exposures and (model is None or not model.prebunks)):
        return []
    ranker = catalog.model if model is not None else None
    top = None
    if c_pass and _fastrank is not None and type(exposures) is list:
        top = _c_pass(exposures, catalog, now, limit, delivery, ranker)
    if top is None:
        exposures = named_states(exposures)
        top = _python_pass(exposures, catalog, now, limit, delivery, ranker, model)
    if model is not None and model.prebunks and len(top) < limit:
        top += prebunk_candidates(named_states(exposures), catalog, ranker, model, delivery)
    return top


def _c_pass(
    exposures: list[ExposureState],
    catalog: Catalog,
    now: float,
    limit: int,
    delivery: Delivery | None,
    ranker: FeedModel | None,
) -> list[Candidate] | None:
    """The selected candidates from ``_fastrank.select``, or None when it leaves the user to
    the Python pass (logits to compute)."""
    table = rank_table(catalog)
    if delivery is None:
        impression = click = served = dismissed = claims = None
        repush = False
    else:
        impression, click, served = delivery.impression, delivery.click, delivery.served
        repush = bool(served or impression or click)
        dismissed = delivery.dismissed_rumors or None
        claims = None
        if dismissed:
            known = catalog.rumors
            claims = {known[r].claim_cluster for r in dismissed if r in known}
    weight = ranker.weight if ranker is not None else None
    got = _fastrank.select(exposures, table, now, weight, limit, impression, click, served,
                           repush, dismissed, claims, _RULES_RECENCY, PRIORITY_WEIGHT,
                           RECENCY_HALF_LIFE_S)  # fmt: skip
    if got is None:
        return None
    out = []
    for i, debunk, score, aff, scaled, strength, recency, tag, update, _ in got:
        e = exposures[i]
        if type(e) is not ExposureState:  # a kept plain tuple
            e = _new(ExposureState, e)
        row = table[e.rumor_id]
        out.append(_candidate(row, e, debunk, score, (strength, recency, tag), aff, scaled,
                              update))  # fmt: skip
    return out


def _python_pass(
    exposures: list[ExposureState],
    catalog: Catalog,
    now: float,
    limit: int,
    delivery: Delivery | None,
    ranker: FeedModel | None,
    model: UserModel | None,
) -> list[Candidate]:
    """The exposed candidates selected by the Python pass (prebunks aside)."""
    kept = _kept(exposures, catalog, delivery)
    if ranker is not None and model is not None:
        _pick_by_model(kept, ranker, model, delivery)
    else:
        _pick_by_authority(kept, delivery)
    _repush(kept, delivery)
    kept = [k for k in kept if k[2] is not None]
    return _select(kept, now, ranker.weight if ranker is not None else None, limit)


def _kept(
    exposures: list[ExposureState], catalog: Catalog, delivery: Delivery | None
) -> list[list[Any]]:
    """[row, exposure, debunk, affinity, update] per exposure of a confirmed rumor the user has
    not dismissed (nor any rumor of a dismissed claim), in exposure order."""
    table = rank_table(catalog)
    dismissed = delivery.dismissed_rumors if delivery is not None else None
    if not dismissed:
        return [[row, e, None, None, False] for e in exposures
                if (row := table[e.rumor_id]) is not None]  # fmt: skip
    known = catalog.rumors
    claims = {known[r].claim_cluster for r in dismissed if r in known}
    return [
        [row, e, None, None, False]
        for e in exposures
        if (row := table[e.rumor_id]) is not None
        and e.rumor_id not in dismissed
        and row.cluster not in claims
    ]


def _pick_by_model(
    kept: list[list[Any]],
    ranker: FeedModel,
    user: UserModel,
    delivery: Delivery | None,
) -> None:
    """``models.attach_preferred_debunk`` over the kept rows: the stored logits when they line
    up, else one matrix product for all the rest (in the same order, so the same floats)."""
    pick = delivery if delivery is not None and delivery.saw_any else None
    missing: list[tuple[list[Any], tuple[bool, ...]]] = []
    rows: list[int] = []
    for k in kept:
        row, e = k[0], k[1]
        options, stored = row.options, e.logits
        if stored and len(stored) == len(options) and row.logits_ok:
            if pick is None and len(options) == 1:
                best, logit = options[0], stored[0]
            else:
                best, logit = preferred_option(options, stored, pick)
            if best is not None:
                k[2], k[3] = best, sigmoid(logit) if math.isfinite(logit) else 0.0
            continue
        option_rows, known = ranker.option_rows(row.rumor.rumor_id, options)
        missing.append((k, known))
        rows += option_rows
    if not missing:
        return
    logits = ranker.row_logits(rows, ranker.user_vector(user.factors)) if rows else []
    at = 0
    for k, known in missing:
        part = logits[at : at + len(known)]
        at += len(known)
        values = [v if ok else math.nan for v, ok in zip(part, known, strict=True)]
        options = k[0].options
        if pick is None and len(options) == 1:
            best, logit = options[0], values[0]
        else:
            best, logit = preferred_option(options, values, pick)
        if best is not None:
            k[2], k[3] = best, sigmoid(logit) if math.isfinite(logit) else 0.0


def _pick_by_authority(kept: list[list[Any]], delivery: Delivery | None) -> None:
    """``selectors.attach_most_authoritative_debunk``: the first unseen option."""
    for k in kept:
        options = k[0].options
        if delivery is None:
            k[2] = options[0] if options else None
        else:
            k[2] = next((d for d in options if not delivery.seen(d.debunk_id)), None)


def _repush(kept: list[list[Any]], delivery: Delivery | None) -> None:
    """``filters.repush_revised``: a rumor revised after the user last met one of its debunks
    is marked an update (its most authoritative debunk when every option was seen)."""
    if delivery is None or not (delivery.served or delivery.impression or delivery.click):
        return
    served, impression, click = delivery.served, delivery.impression, delivery.click
    for k in kept:
        row = k[0]
        revised = row.rumor.revised_at
        if not revised:
            continue
        met = max((max(served.get(d.debunk_id, 0), impression.get(d.debunk_id, 0),
                       click.get(d.debunk_id, 0)) for d in row.options), default=0)  # fmt: skip
        if 0 < met < revised:
            k[4] = True
            if k[2] is None:
                k[2] = row.options[0]


def _select(
    kept: list[list[Any]],
    now: float,
    weight: float | None,
    limit: int,
) -> list[Candidate]:
    """Score every kept row as ``pipeline.score_feed_candidates`` does, then
    ``selectors.select_top``: ``feed_order``, one card per claim cluster, at most ``limit``."""
    parts = []
    for k in kept:
        e = k[1]
        recency = 0.5 ** (max(0.0, now - e.last_ts) / RECENCY_HALF_LIFE_S)
        tag = min(max(float(e.tag_score), 0.0), 1.0)
        rules = _RULES_RECENCY * recency + PRIORITY_WEIGHT * k[0].priority
        parts.append((float(e.strongest_action), recency, tag, rules))
    scaled: list[float] = []
    if weight is None:
        scores = [tag * (strength + rules) for strength, _, tag, rules in parts]
    elif parts:
        aff = [0.0 if k[3] is None else k[3] for k in kept]
        low, span = min(aff), max(aff) - min(aff)
        scaled = [(a - low) / span if span > 0 else 1.0 for a in aff]
        scores = [
            tag * (strength + (1 - weight) * rules + weight * s)
            for (strength, _, tag, rules), s in zip(parts, scaled, strict=True)
        ]
    else:
        scores = []
    order = sorted(
        (-s, -k[1].last_ts, -k[0].rumor.severity, k[0].cluster, k[0].rumor.rumor_id, i)
        for i, (s, k) in enumerate(zip(scores, kept, strict=True))
    )
    seen: set[str] = set()
    out: list[Candidate] = []
    for key in order:
        if key[3] in seen:
            continue
        seen.add(key[3])
        i = key[5]
        k = kept[i]
        out.append(_candidate(k[0], k[1], k[2], scores[i], parts[i][:3], k[3],
                              scaled[i] if scaled else None, k[4]))  # fmt: skip
        if len(out) == limit:
            break
    return out


def _candidate(
    row: RumorRow,
    e: ExposureState,
    debunk: Debunk | None,
    score: float,
    part: tuple[float, float, float],
    affinity: float | None,
    scaled: float | None,
    update: bool,
) -> Candidate:
    """The reference pipeline's Candidate for a selected row, features and all (``part``:
    strength, recency, tag score)."""
    strength, recency, tag = part
    features = {"strength": strength, "recency": recency, "priority": row.priority,
                "tag_score": tag}  # fmt: skip
    if affinity is not None:
        features["affinity"] = affinity
    if scaled is not None:
        features["affinity_rank"] = scaled
    return Candidate(row.rumor, e, debunk, score, features, update=update)

"""Scores of (text, rumor) pairs: one BM25-style score in [0, 1] for every use.

For a text T and a library document D (its own grams plus its rumor's keywords and aliases),
with BM25 idf weights (an unseen gram of T weighs as a typical gram, ``Index.unknown_weight``,
not as the rarest one) and sizes in units of ``idf_max`` (the idf of a gram one rumor holds):
- shared      s   = idf(T ∩ D), and bm = Σ idf · BM25 saturation over T ∩ D;
- coverage    c_t = s / idf(T): how much of the text the rumor explains; the rest of a query
  counts against it, so 「宁波 天气」 does not land on a rumor about 宁波;
- containment c_d = idf(wording of T ∩ D) / idf(wording of D), wording being words and
  character pairs: how much of the rumor's wording a text carries (a long post quoting it);
  not characters, so that a long post does not contain a short rumor merely by holding its
  characters (pairs weigh in nothing else);
- unexplained u   = (idf(T) - s) / idf_max: the mass of the text the rumor does not explain;
- score = max(c_t ** sharpness · min(1, s / conf_grams),
              c_d ** sharpness · min(1, w / contain_grams),   w = idf(wording of T ∩ D)
              1 - exp(-max(0, bm · min(1, c_t / mass_coverage) ** mass_focus
                              - unexplained_cost · min(u, unexplained_cap)) / mass_grams)).
  The first answers short queries once a couple of rare grams' worth is shared; the second
  needs more (a two-word claim must not be "contained" in every post); the third is a long
  retelling that shares many rare words and characters, discounted when most of the text is
  about something else, and charged for what the text says that the rumor does not: each
  unexplained unit cancels a unit of evidence, up to about one word's worth (a word with its
  characters), so a search whose intent word the rumor does not explain (「<place> 门票」,
  「<food> 多少钱一斤」) scores below one the rumor explains whole, while a long post's other
  words, already discounted by coverage, cost no more than that. A place the text names that
  the rumor's text never mentions (``matching.places``: 「英国 签证」 against a Thailand-visa
  rumor) can count as one more unmet intent word (``place_weight``; off: measured and not
  adopted, decision 0057). In a navigational text (one holding an intent word), each rare word
  (no rumor holds it, or its idf reaches ``name_floor`` of the rarest) the rumor does not hold
  counts as ``name_weight`` unmet intent words: 「<host> 主持 节目 视频」 names the host whose
  show is wanted, and a rumor about another host's show does not answer it (decision 0058);
  navigational here means holding one of ``matching.navigation``'s words, not any intent word
  (酒店, 更新 are claim words in some rumors: decision 0062). A *bare* navigational search
  (nothing in it but names and navigational words: 「<agency> 官网」, 「<brand> 价格 一箱」) has
  every score times ``bare_scale`` (0: unanswered), but for a rumor whose alias it holds,
  or (decision 0066) one holding its claim predicates: a number of it, or two of its other
  non-name units (``claim_numbers``, ``claim_words``; information-seeking words count as
  navigational ones for this, ``bare_words``; the part-of-speech test is kept for texts typed
  without spaces only, ``bare_pos``); since decision 0069 a count with its measure word (一箱)
  is no such number, one of the two words must be uncommon in the language, and the rumor must
  hold the search's names (``claim_counts``, ``claim_specific``, ``claim_names``).
  Keywords and
  aliases are grams of D like any other: evidence inside the same sums, never a separate path
  to a fixed score.

Candidates come from rare grams' postings (the ``candidates`` best documents of each text by
their partial bm); common grams are then added from the index's bit table for those only.
Equal scores are ordered by the retelling term's evidence before it saturates, then by rumor
id (docs/decisions/0056): the rumor sharing more of a short query answers it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from matching.grams import PAIR_BIT, WORD_BASE
from matching.index import Index
from matching.intent import intent_ids
from matching.navigation import TextFlags
from matching.navigation import word_ids as navigational_ids
from matching.places import text_masks, unmet

# (text, doc) cells one slice of texts may address: a scratch table of int32 positions kept per
# thread (8 MB of address space, touched only where postings land)
SLOT_CELLS = 1 << 21
_scratch = threading.local()


@dataclass(frozen=True)
class ScoreParams:
    """Knobs of the score (see the module docstring); chosen on the tune halves of
    ``make eval-search`` and ``make eval-matching`` (docs/decisions/0010; the unexplained
    charge: 0035)."""

    conf_grams: float = 2.0
    contain_grams: float = 12.0
    mass_grams: float = 2.0
    mass_coverage: float = 0.3
    mass_focus: float = 2.0
    unexplained_cost: float = 1.0
    unexplained_cap: float = 1.5
    intent_cost: float = 4.0
    intent_cap: float = 2.0
    intent_size: float = 8.0
    place_weight: float = 0.0  # measured, not adopted (docs/decisions/0057)
    name_weight: float = 1.5  # the unmet-name charge (docs/decisions/0058)
    name_floor: float = 0.9
    name_gate: str = "navigational"  # which words make a text navigational for it:
    # ``matching.navigation``'s (docs/decisions/0062) or "intent" (every intent word, 0058)
    bare_scale: float = 0.0  # the score of a bare navigational search (no claim predicate,
    # no alias of the rumor in it) is multiplied by this: 0, never answered (decision 0062)
    bare_words: str = "information"  # the words a bare search holds besides its names:
    # ``matching.navigation``'s navigational ones (0062) or "information" (with INFO, 0066)
    bare_pos: str = "untyped"  # which bare searches must also be noun phrases by jieba's tags:
    # "all" (0062), "untyped" (texts typed without spaces, 0066) or "none"
    claim_numbers: bool = True  # a bare search is a claim search for a rumor holding one of
    # its numbers (26万, 十分之一: decision 0066)
    claim_words: int = 2  # ... or holding this many of its other non-name words (0: never)
    claim_counts: bool = False  # a count with its measure word (一箱) is one of its numbers
    # (0066: True; 0069: only a digit, fraction, rank or percentage is)
    claim_rare: int = 0  # a word counts only when at most this many rumors hold it (0: any)
    claim_names: bool = True  # the rumor must also hold every name of the bare search (0069)
    claim_generic: int = 0  # a word counts only when jieba's dictionary count is at most this
    claim_specific: int = 2000  # ... and one word the rumor holds must be at most this (0069;
    # 0: off): a search of common words (旅游 签证, 高考 成绩) names a topic, not a claim
    claim_shared: int = 0  # a short typed search with no word of the class answers a rumor
    # only when it holds one of its numbers or this many of its units (0: off; decision 0072)
    claim_predicate: bool = False  # ... or one shared unit that states something (a verb,
    # an adjective, a figure: not only the subject's names and nouns)
    claim_loose: bool = False  # a unit is shared when the rumor holds one of its words too
    # (0072's and 0075's tests only; the unshared test reads ``unshared_loose``)
    claim_background: float = 0.0  # a short typed search answers a rumor only when a unit it
    # shares is this much rarer in the background of ordinary posts than in the library (its
    # ``matching.background.ratio`` below this; 0: off; needs ``Matcher(background=...)``;
    # decision 0075, measured and not adopted)
    background_prior: float = 0.5  # the posts each rate is smoothed by
    background_numbers: bool = True  # ... or shares one of the search's claim numbers
    claim_unshared: str = "aspect"  # a short typed search does not answer a rumor when a unit
    # it types and the rumor does not hold names an aspect of the subject: "aspect" (a
    # lexicon), "noun" or "names" (jieba's tags); "": off (decision 0078; on since 0079)
    unshared_loose: bool = True  # ... and a unit is held when the rumor holds one of its
    # words too (0078's ``claim_loose=true``, scoped to this test by 0079)
    sharpness: float = 2.0
    candidates: int = 20
    candidate_floor: float = 0.25
    min_score: float = 0.05


@dataclass(frozen=True)
class PairScores:
    """Best document per (text, rumor) pair, sorted by text then descending score (then
    descending evidence, then rumor id)."""

    text: np.ndarray
    rumor: np.ndarray
    doc: np.ndarray
    score: np.ndarray
    evidence: np.ndarray


def _expand(index: Index, gi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For gram indices ``gi``: the position in ``gi`` of each posting, its document and its
    saturation."""
    starts = index.indptr[gi]
    lens = index.indptr[gi + 1] - starts
    offsets = np.cumsum(lens) - lens
    total = int(offsets[-1] + lens[-1]) if len(lens) else 0
    rep = np.repeat(np.arange(len(gi)), lens)
    # one repeat of each list's shift instead of two gathers through ``rep``
    idx = np.arange(total, dtype=np.int64) + np.repeat(starts - offsets, lens)
    return rep, index.postings[idx], index.saturation[idx]


def _best_per_rumor(
    text: np.ndarray,
    rumor: np.ndarray,
    doc: np.ndarray,
    score: np.ndarray,
    rank: np.ndarray,
    evidence: np.ndarray,
) -> PairScores:
    """Keep the best document of each (text, rumor), then sort by text and descending score;
    equal scores by descending ``evidence`` (the retelling term's, unsaturated), then lower
    rumor id (``rank`` being each rumor's place in rumor id order): a total order that does
    not depend on the library's order."""
    key = (text.astype(np.int64) << 32) | rumor  # orders as (text, rumor) does
    order = np.lexsort((-evidence, -score, key))
    key = key[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    best = order[first]
    text, rumor, score, evidence = text[best], rumor[best], score[best], evidence[best]
    order = np.lexsort((rank[rumor], -evidence, -score, text))
    return PairScores(text[order], rumor[order], doc[best[order]], score[order], evidence[order])


def _slot_table(cells: int) -> np.ndarray:
    """This thread's scratch table of at least ``cells`` int32 slots (contents are garbage)."""
    table = getattr(_scratch, "slots", None)
    if table is None or len(table) < cells:
        table = np.empty(cells, dtype=np.int32)
        _scratch.slots = table
    return table


def _intersections(
    text: np.ndarray, doc: np.ndarray, w: np.ndarray, n_texts: int, n_docs: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Summed weight per (text, doc) pair (``_cell_sums`` of one weight)."""
    t, d, sums = _cell_sums(text, doc, (w,), n_texts, n_docs)
    return t, d, sums[0]


def _cell_sums(
    text: np.ndarray,
    doc: np.ndarray,
    weights: tuple[np.ndarray, ...],
    n_texts: int,
    n_docs: int,
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Summed weights per (text, doc) pair, without sorting, in the order of each pair's last
    posting (postings come sorted by text).

    Each posting writes its position into its cell of a slot table reused across calls; a
    posting that reads its own position back is its cell's last one. The sums are then a
    bincount over the distinct cells only, each adding its postings in order, so they equal a
    dense accumulation bit for bit while touching memory in proportion to the postings, not to
    texts x documents."""
    n_docs = max(n_docs, 1)
    step = max(1, min(n_texts, SLOT_CELLS // n_docs))
    slot = _slot_table(step * n_docs)
    bounds = np.searchsorted(text, np.arange(0, n_texts + step, step))
    ts: list[np.ndarray] = []
    ds: list[np.ndarray] = []
    ws: list[list[np.ndarray]] = [[] for _ in weights]
    for i in range(len(bounds) - 1):
        lo, hi = bounds[i], bounds[i + 1]
        if lo == hi:
            continue
        t, d = text[lo:hi], doc[lo:hi]
        cell = (t - i * step) * n_docs + d
        pos = np.arange(hi - lo, dtype=np.int32)
        slot[cell] = pos
        last = slot[cell]
        first = np.flatnonzero(last == pos)  # each cell once, at its last posting
        rank = np.empty(hi - lo, dtype=np.int32)
        rank[first] = np.arange(len(first), dtype=np.int32)
        ts.append(t[first])
        ds.append(d[first])
        ranks = rank[last]  # each posting's cell, once for all the weights
        for out, w in zip(ws, weights, strict=True):
            out.append(np.bincount(ranks, weights=w[lo:hi], minlength=len(first)))
    if not ts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), [np.zeros(0) for _ in weights]
    if len(ts) == 1:
        return ts[0], ds[0], [w[0] for w in ws]
    return np.concatenate(ts), np.concatenate(ds), [np.concatenate(w) for w in ws]


def _top_per_text(
    t: np.ndarray, d: np.ndarray, key: np.ndarray, k: int, floor: float
) -> np.ndarray:
    """Positions of each text's ``k`` best cells by ``key`` (ties: lower ``d`` first), among
    those reaching ``floor`` times the text's best key (``t`` comes sorted)."""
    if len(t) == 0:
        return np.zeros(0, dtype=np.int64)
    first = np.r_[True, t[1:] != t[:-1]]
    best = np.maximum.reduceat(key, np.flatnonzero(first))
    group = np.cumsum(first) - 1  # the text's place among the texts present
    keep = np.flatnonzero(key >= floor * best[group])
    d, key, group = d[keep], key[keep], group[keep]
    # the order of lexsort((d, -key, t)) as three stable sorts, the int ones narrowed so
    # numpy radix-sorts them (this step then takes about 0.6 of the lexsort version's time)
    order = np.argsort(_narrow(d), kind="stable")
    order = order[np.argsort(-key[order], kind="stable")]
    order = order[np.argsort(_narrow(group)[order], kind="stable")]
    g = group[order]
    at = np.r_[True, g[1:] != g[:-1]]
    place = np.arange(len(g)) - np.flatnonzero(at)[np.cumsum(at) - 1]
    return keep[np.sort(order[place < k])]


def _narrow(x: np.ndarray) -> np.ndarray:
    """``x`` (non-negative ints) as uint16 when it fits, which numpy's stable sort radix-sorts
    (the same order as sorting ``x``)."""
    return x.astype(np.uint16) if len(x) and int(x.max()) < 1 << 16 else x


def _common_shared(
    index: Index,
    t: np.ndarray,
    d: np.ndarray,
    owner: np.ndarray,
    rank: np.ndarray,
    weights: tuple[np.ndarray, ...],
    n_texts: int,
) -> list[np.ndarray]:
    """Per candidate cell (text t, document d) and per weight: the total weight of the text's
    common grams (``rank`` columns of the bit table, owned by ``owner``) the document holds."""
    if len(t) == 0 or len(owner) == 0:
        return [np.zeros(len(t)) for _ in weights]
    per_text = np.bincount(owner, minlength=n_texts)
    first = np.cumsum(per_text) - per_text
    reps = per_text[t]
    ends = np.cumsum(reps)
    gram = np.arange(int(ends[-1])) + np.repeat(first[t] - (ends - reps), reps)
    # each common gram's byte column and bit mask once, then one flat gather per (cell, gram)
    column = rank >> 3
    mask = np.uint8(0x80) >> (rank & 7).astype(np.uint8)
    at = np.repeat(d.astype(np.int64) * index.common_bits.shape[1], reps) + column[gram]
    held = np.flatnonzero(index.common_bits.reshape(-1)[at] & mask[gram])
    cell, gram = np.repeat(np.arange(len(t)), reps)[held], gram[held]
    return [np.bincount(cell, weights=w[gram], minlength=len(t)) for w in weights]


@dataclass(frozen=True)
class PairFeatures:
    """The measures of each candidate (text, document) cell the score is made of (see the
    module docstring); sizes in units of ``idf_max``."""

    text: np.ndarray
    doc: np.ndarray
    coverage: np.ndarray  # c_t
    containment: np.ndarray  # c_d
    shared: np.ndarray  # s / idf_max
    wording: np.ndarray  # idf of the shared words and character pairs / idf_max
    bm: np.ndarray  # bm / idf_max
    intent: np.ndarray  # the text's intent words the document does not hold, its places the
    # document never mentions (``place_weight`` each) and, in a navigational text, its rare
    # words the document does not hold (``name_weight`` each): a count


def pair_features(
    index: Index, owner: np.ndarray, grams: np.ndarray, n_texts: int, candidates: int,
    floor: float = 0.0, place_weight: float = 1.0, name_weight: float = 0.0,
    name_floor: float = 0.9, asks: np.ndarray | None = None,
) -> PairFeatures:  # fmt: skip
    """Features of each text's ``candidates`` best documents by their rare grams' bm (among
    those reaching ``floor`` times the best one's). ``asks``, when given, says per text
    whether it is navigational for the unmet-name charge (else: it holds an intent word)."""
    gi = index.positions(grams)
    known = gi >= 0
    gi = np.maximum(gi, 0)
    w_all = np.where(known, index.idf[gi], np.float32(index.unknown_weight)).astype(np.float64)
    wording = grams >= WORD_BASE  # words and character pairs
    w = np.where(grams >= PAIR_BIT, 0.0, w_all)  # pairs weigh in containment only
    text_norm = np.bincount(owner, weights=w, minlength=n_texts)
    ids = intent_ids()  # a sorted handful: a binary search beats np.isin's per-value scan
    intent = (ids[np.minimum(np.searchsorted(ids, grams), len(ids) - 1)] == grams).astype(float)
    text_intent = np.bincount(owner, weights=intent, minlength=n_texts)
    if asks is None:
        asks = text_intent > 0  # a navigational text: its names say what it asks for
    name = name_weight * asks[owner] * _rare_words(grams, known, w_all, name_floor * index.idf_max)
    text_name = np.bincount(owner, weights=name, minlength=n_texts)
    rare = known & (index.common_rank[gi] < 0)
    sel = np.flatnonzero(rare)
    rep, docs, sat = _expand(index, gi[sel])
    ws = w[sel][rep]
    ww = np.where(wording[sel], w_all[sel], 0.0)[rep]
    t, d, (shared, bm, words, held, named) = _cell_sums(
        owner[sel][rep], docs, (ws, ws * sat, ww, intent[sel][rep], name[sel][rep]), n_texts,
        len(index.doc_norm),
    )  # fmt: skip
    top = _top_per_text(t, index.doc_order[d], bm, candidates, floor)
    t, d, shared, bm, words = t[top], d[top], shared[top], bm[top], words[top]
    held, named = held[top], named[top]
    common = np.flatnonzero(known & ~rare)
    c_words = np.where(wording[common], w_all[common], 0.0)
    extra, extra_words, extra_held, extra_named = _common_shared(
        index, t, d, owner[common], index.common_rank[gi[common]],
        (w[common], c_words, intent[common], name[common]), n_texts,
    )  # fmt: skip
    shared = shared + extra
    words = words + extra_words
    places = 0.0
    if place_weight:
        places = place_weight * unmet(text_masks(owner, grams, n_texts)[t], index.doc_places[d])
    return PairFeatures(
        text=t,
        doc=d,
        coverage=shared / np.maximum(text_norm[t], 1e-9),
        containment=np.minimum(1.0, words / np.maximum(index.doc_word_norm[d], 1e-9)),
        shared=shared / index.idf_max,
        wording=words / index.idf_max,
        bm=(bm + extra * index.doc_unit[d]) / index.idf_max,
        intent=np.maximum(text_intent[t] - held - extra_held, 0.0)
        + places
        + np.maximum(text_name[t] - named - extra_named, 0.0),
    )


def _rare_words(
    grams: np.ndarray, known: np.ndarray, weight: np.ndarray, floor: float
) -> np.ndarray:
    """1.0 for each word gram no rumor holds or whose idf reaches ``floor``, else 0.0: the
    names of a query (a person, an agency, a show), the words a document must hold to be what
    the text is about."""
    word = (grams >= WORD_BASE) & (grams < PAIR_BIT)
    return (word & (~known | (weight >= floor))).astype(float)


def unexplained_charge(f: PairFeatures, p: ScoreParams) -> np.ndarray:
    """Evidence each cell loses for the text's mass the rumor does not explain (in units of
    ``idf_max``, capped): an unexplained intent word must not ride on the rest of a query."""
    unexplained = f.shared * (1.0 - f.coverage) / np.maximum(f.coverage, 1e-9)
    return p.unexplained_cost * np.minimum(np.maximum(unexplained, 0.0), p.unexplained_cap)


def intent_charge(f: PairFeatures, p: ScoreParams) -> np.ndarray:
    """Evidence each cell loses for the text's intent words the document does not hold (an
    unmet need: 「<show> 全集 在线」 asks for the show, not for a rumor about it), in full for a
    text up to ``intent_size`` units and by the square of that share above it (in a long post
    such a word is one among many)."""
    mass = f.shared / np.maximum(f.coverage, 1e-9)
    size = np.minimum(1.0, p.intent_size / np.maximum(mass, 1e-9)) ** 2
    return p.intent_cost * np.minimum(f.intent, p.intent_cap) * size


def evidence(f: PairFeatures, p: ScoreParams) -> np.ndarray:
    """The retelling term's evidence of each cell before it saturates (units of ``idf_max``):
    what orders cells of equal score, since many rumors score 1.0 for a text."""
    focus = np.minimum(1.0, f.coverage / p.mass_coverage) ** p.mass_focus
    charge = unexplained_charge(f, p) + intent_charge(f, p)
    return np.maximum(f.bm * focus - charge, 0.0)


def combine(f: PairFeatures, p: ScoreParams) -> np.ndarray:
    """The score of each cell from its features, in [0, 1]."""
    query = f.coverage**p.sharpness * np.minimum(1.0, f.shared / p.conf_grams)
    contained = f.containment**p.sharpness * np.minimum(1.0, f.wording / p.contain_grams)
    mass = 1.0 - np.exp(-evidence(f, p) / p.mass_grams)
    return np.clip(np.maximum(np.maximum(query, contained), mass), 0.0, 1.0)


def navigational_asks(grams: np.ndarray, owner: np.ndarray, n_texts: int, split: np.ndarray
                      ) -> np.ndarray:  # fmt: skip
    """Per text: whether it holds a navigational word (a gram of one, or ``split``: one jieba
    cuts, found in the text by ``matching.navigation.flags``)."""
    ids = navigational_ids()
    held = ids[np.minimum(np.searchsorted(ids, grams), len(ids) - 1)] == grams
    return (np.bincount(owner[held], minlength=n_texts) > 0) | split


def score_pairs(
    index: Index, owner: np.ndarray, grams: np.ndarray, n_texts: int, params: ScoreParams,
    flags: TextFlags | None = None,
) -> PairScores:  # fmt: skip
    """Scores of each text's candidate (text, rumor) pairs, best document per pair."""
    empty = np.zeros(0, np.int64)
    if len(index.vocab) == 0 or len(grams) == 0:
        return PairScores(empty, empty, empty, np.zeros(0, np.float32), np.zeros(0))
    asks = None
    if params.name_gate == "navigational":
        split = flags.split if flags is not None else np.zeros(n_texts, bool)
        asks = navigational_asks(grams, owner, n_texts, split)
    f = pair_features(
        index, owner, grams, n_texts, params.candidates, params.candidate_floor,
        params.place_weight, params.name_weight, params.name_floor, asks,
    )  # fmt: skip
    score = combine(f, params)
    ev = evidence(f, params)  # orders equal scores (``combine`` may be a sweep's variant)
    if params.bare_scale != 1.0 and flags is not None and flags.bare.any():
        score, ev = _bare_scaled(f, score, ev, index, flags, params.bare_scale)
    keep = score >= params.min_score
    rumor = index.doc_rumor[f.doc[keep]].astype(np.int64)
    return _best_per_rumor(
        f.text[keep], rumor, f.doc[keep], score[keep].astype(np.float32), index.rumor_rank,
        ev[keep],
    )  # fmt: skip


def _bare_scaled(
    f: PairFeatures, score: np.ndarray, ev: np.ndarray, index: Index, flags: TextFlags,
    scale: float,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """``score`` and ``ev`` of the cells of bare navigational texts times ``scale``, but for
    the rumors with an alias in the text."""
    hit = flags.bare[f.text]
    if len(flags.exempt):
        key = (f.text.astype(np.int64) << 32) | index.doc_rumor[f.doc]
        hit &= ~np.isin(key, flags.exempt)
    if flags.states is not None and flags.claims:
        for c in np.flatnonzero(hit).tolist():  # a few cells: a bare text's candidates
            claim = flags.claims.get(int(f.text[c]))
            if claim is not None and flags.states(claim, int(index.doc_rumor[f.doc[c]])):
                hit[c] = False
    return np.where(hit, score * scale, score), np.where(hit, ev * scale, ev)

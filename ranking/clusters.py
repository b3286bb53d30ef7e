"""Claim clusters: rumors of the library that state the same claim, found by the nightly job.

A real library holds many posts of one story (27 posts of one claim in one CED set). Ranking
treats a cluster as one claim: a feed shows one card per cluster, and a matcher tag to a
sibling rumor counts as the same claim. Two claims are linked when the Jaccard similarity of
their normalised character 3-gram sets is at least ``CLUSTER_JACCARD``; clusters are the
connected components of the links. A cluster's id is its smallest rumor id, so it depends on
the claims alone: the same library gives the same ids on every run, in any input order.

Pure Python on plain strings: no IO, no matcher internals (the matcher's own normalisation may
change without moving the clusters).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from domain.records import Rumor
from matching import matcher_library

GRAM = 3
# Measured on CED's 1,538 rumor posts (docs/decisions/0010-claim-clusters.md): sampled pairs
# from 0.1 up are posts of one story, but below 0.32 a post quoting two stories bridges their
# clusters (two members sharing < 3% of grams); 0.35 is the lowest round value with none.
CLUSTER_JACCARD = 0.35
# A gram shared by more claims than this proposes no pairs (it is a common phrase, not evidence);
# it still counts in the Jaccard of pairs proposed by rarer grams.
MAX_GRAM_CLAIMS = 200

_NOISE = re.compile(r"\[[^\[\]]{1,8}\]|https?://\S+|@[^\s:：,，]+")


def plain_text(text: str) -> str:
    """``text`` normalised for comparing claims: NFKC, case-folded, emoji codes (``[泪]``),
    links and @mentions removed, only letters and digits kept."""
    plain = _NOISE.sub(" ", unicodedata.normalize("NFKC", text).casefold())
    return "".join(ch for ch in plain if ch.isalnum())


def claim_grams(text: str) -> frozenset[str]:
    """The character 3-grams of ``plain_text(text)``; a text shorter than three such characters
    is one gram of itself."""
    chars = plain_text(text)
    if len(chars) < GRAM:
        return frozenset({chars}) if chars else frozenset()
    return frozenset(chars[i : i + GRAM] for i in range(len(chars) - GRAM + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a ∩ b| / |a ∪ b| (0 for two empty sets)."""
    if not a or not b:
        return 0.0
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared)


def claim_pairs(claims: Mapping[str, str]) -> list[tuple[str, str, float]]:
    """Every pair of rumors (a < b by id) whose claims share a gram held by at most
    MAX_GRAM_CLAIMS claims, with their Jaccard; sorted by (a, b)."""
    grams = {rid: claim_grams(text) for rid, text in claims.items()}
    postings: dict[str, list[str]] = {}
    for rid in sorted(grams):
        for g in grams[rid]:
            postings.setdefault(g, []).append(rid)
    proposed: set[tuple[str, str]] = set()
    for ids in postings.values():
        if 1 < len(ids) <= MAX_GRAM_CLAIMS:
            for i, a in enumerate(ids):
                proposed.update((a, b) for b in ids[i + 1 :])
    return [(a, b, jaccard(grams[a], grams[b])) for a, b in sorted(proposed)]


def cluster_claims(claims: Mapping[str, str], threshold: float = CLUSTER_JACCARD) -> dict[str, str]:
    """rumor id -> cluster id (the smallest rumor id of its connected component of pairs at or
    above ``threshold``); a rumor with no such pair is its own cluster."""
    parent = {rid: rid for rid in claims}

    def root(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b, sim in claim_pairs(claims):
        if sim >= threshold:
            ra, rb = root(a), root(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)  # the root is always the smallest id
    return {rid: root(rid) for rid in sorted(claims)}


@dataclass(frozen=True)
class ClusterSummary:
    """What the run summary reports of the clusters."""

    rumors: int
    clusters: int
    largest: int
    singletons: int
    threshold: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "rumors": self.rumors,
            "clusters": self.clusters,
            "largest": self.largest,
            "singletons": self.singletons,
            "threshold": self.threshold,
        }


def summarize(clusters: Mapping[str, str], threshold: float = CLUSTER_JACCARD) -> ClusterSummary:
    """Counts of a ``cluster_claims`` answer: rumors, clusters, the largest, singletons."""
    sizes: dict[str, int] = {}
    for cid in clusters.values():
        sizes[cid] = sizes.get(cid, 0) + 1
    return ClusterSummary(
        rumors=len(clusters),
        clusters=len(sizes),
        largest=max(sizes.values(), default=0),
        singletons=sum(1 for n in sizes.values() if n == 1),
        threshold=threshold,
    )


def members(clusters: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """cluster id -> its rumor ids, sorted."""
    out: dict[str, list[str]] = {}
    for rid in sorted(clusters):
        out.setdefault(clusters[rid], []).append(rid)
    return {cid: tuple(ids) for cid, ids in out.items()}


def assign_clusters(
    rumors: Iterable[Rumor], threshold: float = CLUSTER_JACCARD
) -> tuple[list[Rumor], dict[str, str]]:
    """The rumors with their ``cluster`` set, and rumor id -> cluster id of the clustered ones.

    The clustered rumors are the matcher library's (``matching.matcher_library``: confirmed,
    with a claim), so a cluster is a set of claims the matcher may tag or pin; any other rumor
    keeps no cluster (it is its own claim)."""
    rumors = list(rumors)
    library = {e.rumor_id: e.claim for e in matcher_library(rumors)}
    clusters = cluster_claims(library, threshold)
    out = [replace(r, cluster=clusters.get(r.rumor_id, "")) for r in rumors]
    return out, clusters

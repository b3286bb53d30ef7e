"""The rumor library: rumors with their claims, their posts (the original and noisy reposts,
about half tagged by hand) and 2-4 debunks each as schema.org ClaimReview, as records for the
files and as arrays for the simulation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from domain.vocab import AUTHORITIES, CATEGORIES, FORMATS, VERDICTS
from offline.synth import texts
from offline.synth.streams import Stream, stream
from offline.synth.timeline import DAY_US, HOUR_US, SECOND_US, iso, to_minute

NEVER = np.iinfo(np.int64).max
CATEGORY_P = {
    "policy": 0.14,
    "emergency": 0.12,
    "disaster": 0.12,
    "epidemic": 0.14,
    "public_safety": 0.16,
    "livelihood": 0.16,
    "economy": 0.10,
    "other": 0.06,
}
SEVERITY_BASE = {"emergency": 4, "disaster": 4, "epidemic": 4, "public_safety": 4, "other": 2}
VERDICT_P = (0.7, 0.2, 0.1)
WITHDRAWN_P = 0.05
OFFICIAL_P = 0.6  # share of rumors with an official debunk
DEBUNK_FORMAT_P = (0.45, 0.25, 0.30)
VIRALITY_SIGMA = 0.9  # lognormal sigma of how far a rumor spreads


class Library:
    """Rumors with their items and debunks, as records for the files and arrays for the sim."""

    def __init__(self, seed: int, rumors: int, start_us: int, days: int) -> None:
        rng = stream(seed, Stream.LIBRARY)
        r_n = rumors
        self.category = rng.choice(len(CATEGORIES), size=r_n, p=[CATEGORY_P[c] for c in CATEGORIES])
        window = max(days * DAY_US - 6 * HOUR_US, HOUR_US)
        self.t0 = to_minute(start_us + (rng.random(r_n) * window).astype(np.int64))
        withdrawn = rng.random(r_n) < WITHDRAWN_P
        if r_n >= 10 and not withdrawn.any():
            withdrawn[int(rng.integers(r_n))] = True
        self.confirmed = ~withdrawn
        virality = rng.lognormal(0.0, VIRALITY_SIGMA, r_n)
        self.virality = virality / virality.mean() if r_n else virality

        self.records: list[dict[str, Any]] = []
        self.claim_reviews: list[dict[str, Any]] = []
        self.item_text: list[str] = []
        self.item_kind: list[str] = []
        item_rumor: list[int] = []
        item_created: list[int] = []
        item_tagged: list[bool] = []
        self.item_base = np.zeros(r_n, dtype=np.int64)
        self.item_count = np.zeros(r_n, dtype=np.int64)
        self.pub = np.full((r_n, len(AUTHORITIES)), NEVER, dtype=np.int64)
        self.debunk = np.full((r_n, len(AUTHORITIES)), -1, dtype=np.int64)
        self.debunk_format = np.zeros((r_n, len(AUTHORITIES)), dtype=np.int8)
        self.debunk_authority = np.zeros((r_n, len(AUTHORITIES)), dtype=np.int8)
        seen: set[str] = set()
        for r in range(r_n):
            rr = stream(seed, Stream.RUMOR, r)
            category = CATEGORIES[self.category[r]]
            claim, keywords, city = self._claim(category, rr, seen)
            variants = texts.known_variants(claim, rr, int(rr.integers(2, 6)))
            t0 = int(self.t0[r])
            texts_r, created, tagged = self._items(claim, variants, city, t0, rr)
            self.item_base[r] = len(item_rumor)
            self.item_count[r] = len(texts_r)
            self.item_text += texts_r
            self.item_kind += ["original"] + ["variant"] * (len(texts_r) - 1)
            item_rumor += [r] * len(texts_r)
            item_created += created
            item_tagged += tagged
            severity = SEVERITY_BASE.get(category, 3) + int(rr.integers(-1, 2))
            confirmed_after = np.clip(rr.lognormal(math.log(10.0), 0.6), 1.0, 72.0) * HOUR_US
            self.records.append(
                {
                    "rumor_id": f"r{r:06d}",
                    "claim": claim,
                    "category": category,
                    "severity": int(min(max(severity, 1), 5)),
                    "keywords": keywords,
                    "verdict": VERDICTS[int(rr.choice(len(VERDICTS), p=VERDICT_P))],
                    "status": "confirmed" if self.confirmed[r] else "withdrawn",
                    "confirmed_at": iso(to_minute(t0 + int(confirmed_after))),
                    "variants": variants,
                }
            )
            self._debunks(r, claim, category, city, t0, rr)
        self.item_rumor = np.array(item_rumor, dtype=np.int32)
        self.item_created = np.array(item_created, dtype=np.int64)
        self.item_tagged = np.array(item_tagged, dtype=np.bool_)

    @staticmethod
    def _claim(
        category: str, rng: np.random.Generator, seen: set[str]
    ) -> tuple[str, list[str], str]:
        """A claim not used by an earlier rumor (redrawn on a collision)."""
        for _ in range(50):
            claim, keywords, city = texts.make_claim(category, rng)
            if claim not in seen:
                break
        else:
            claim += f"（{len(seen)}）"
        seen.add(claim)
        return claim, keywords, city

    @staticmethod
    def _items(
        claim: str, variants: list[str], city: str, t0: int, rng: np.random.Generator
    ) -> tuple[list[str], list[int], list[bool]]:
        """The rumor's posts: the original, then noisy reposts appearing over a day and a half;
        the original and about half of the others are tagged by hand."""
        n = 3 + min(int(rng.poisson(4.0)), 13)
        phrasings = [claim, *variants]
        out = [claim] + [
            texts.noisy_variant(texts.pick(rng, phrasings), rng, city) for _ in range(n - 1)
        ]
        created = [t0] + [
            t0 + int(x)
            for x in np.sort(rng.random(n - 1) * 36 * HOUR_US).astype(np.int64) + 300 * SECOND_US
        ]
        tagged = [True] + [bool(x) for x in rng.random(n - 1) < 0.5]
        if all(tagged):
            tagged[-1] = False
        return out, created, tagged

    def _debunks(
        self, r: int, claim: str, category: str, city: str, t0: int, rng: np.random.Generator
    ) -> None:
        """2-4 ClaimReviews from different authorities, published hours to days after t0."""
        others = [AUTHORITIES[i] for i in rng.permutation(np.arange(1, len(AUTHORITIES)))]
        want = int(rng.integers(2, 5))
        pool = ["official", *others] if rng.random() < OFFICIAL_P else others
        chosen = pool[: min(want, len(pool))]
        first = np.clip(rng.lognormal(math.log(6.0), 0.7), 1.0, 48.0) * HOUR_US
        gaps = np.clip(rng.exponential(10.0, len(chosen)), 0.5, 48.0) * HOUR_US
        gaps[0] = first
        published = to_minute(t0 + np.cumsum(gaps).astype(np.int64))
        short = texts.claim_short(claim)
        for k, authority in enumerate(chosen):
            d = len(self.claim_reviews)
            if authority == "official":
                publisher = texts.official_publisher(category, city, rng)
            else:
                publisher = texts.pick(rng, texts.PUBLISHERS[authority])
            fmt = FORMATS[int(rng.choice(len(FORMATS), p=DEBUNK_FORMAT_P))]
            language = "en" if authority == "media" and rng.random() < 0.05 else "zh"
            self.pub[r, k] = published[k]
            self.debunk[r, k] = d
            self.debunk_format[r, k] = FORMATS.index(fmt)
            self.debunk_authority[r, k] = AUTHORITIES.index(authority)
            self.claim_reviews.append(
                {
                    "@context": "https://schema.org",
                    "@type": "ClaimReview",
                    "identifier": f"d{d:07d}",
                    "url": f"https://debunk.example/d/d{d:07d}",
                    "headline": texts.headline(short, publisher, rng, language),
                    "claimReviewed": claim,
                    "itemReviewed": {"@type": "Claim", "identifier": f"r{r:06d}"},
                    "reviewRating": {
                        "@type": "Rating",
                        "ratingValue": 1,
                        "bestRating": 5,
                        "worstRating": 1,
                        "alternateName": self.records[r]["verdict"],
                    },
                    "author": {
                        "@type": "Organization",
                        "name": publisher,
                        "additionalType": authority,
                    },
                    "additionalType": fmt,
                    "inLanguage": language,
                    "datePublished": iso(int(published[k])),
                }
            )

    @property
    def n(self) -> int:
        """The number of rumors."""
        return len(self.records)

"""Text normalisation for noisy social-media posts: Weibo emoji codes, links, @mentions,
``//@name: ...`` repost chains, full-width forms, punctuation and case.

The result is a list of segments (the commentary, then each quoted link of a repost chain) of
plain lower-case text; punctuation is kept as a separator for the tokenizer, never as content.
"""

from __future__ import annotations

import re
import unicodedata

EMOJI_CODE = re.compile(r"\[[^\[\]\s]{1,10}\]")
URL = re.compile(r"(?:https?://|www\.|\bt\.cn/)[A-Za-z0-9./?=&_%#:+~-]*", re.IGNORECASE)
MENTION = re.compile(r"@[\w\-·]{1,30}")
CHAIN = re.compile(r"//\s*@")
CHAIN_NAME = re.compile(r"^[\w\-·]{1,30}\s*:")
REPLY = re.compile(r"^回复\s*@[\w\-·]{1,30}\s*:")


def fold(text: str) -> str:
    """Full-width to half-width (NFKC) and case-folded."""
    return unicodedata.normalize("NFKC", text).casefold()


def strip_noise(text: str) -> str:
    """``text`` without emoji codes, links and @mentions (each replaced by a space)."""
    text = EMOJI_CODE.sub(" ", text)
    text = URL.sub(" ", text)
    return MENTION.sub(" ", text)


def segments(text: str | None) -> list[str]:
    """The commentary and each quoted text of a repost chain, folded and stripped of noise."""
    if not text:
        return []
    text = REPLY.sub(" ", fold(text))
    parts = CHAIN.split(text)
    out = [parts[0]] + [CHAIN_NAME.sub(" ", p, count=1) for p in parts[1:]]
    return [s for s in (strip_noise(p).strip() for p in out) if s]


def normalize(text: str | None) -> str:
    """One clean string: the segments joined by newlines."""
    return "\n".join(segments(text))

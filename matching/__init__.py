"""The rumor sample-library matcher: a pure core (numpy and plain Python, no IO) used by the
offline tagging job and by online lookups."""

from matching.library import LibraryEntry, Match, matcher_library
from matching.matcher import Matcher, Thresholds
from matching.normalize import normalize, segments
from matching.scoring import ScoreParams

__all__ = [
    "LibraryEntry",
    "Match",
    "Matcher",
    "ScoreParams",
    "Thresholds",
    "matcher_library",
    "normalize",
    "segments",
]

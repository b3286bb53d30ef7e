"""The search re-pick rule of bench.round_thresholds (docs/decisions/0069): pure verdicts; the
scorer settings it compares (0072)."""

import pytest

from bench.round_thresholds import verdict
from bench.search_scoring import score_params
from matching import ScoreParams


def metrics(right: int, answered: int, everyday: int, same_topic: int = 0) -> dict:
    """Round metrics with 28 search rows."""
    return {
        "search": {"rows": 28, "answered": answered, "right": right, "false": answered - right},
        "everyday": {"rows": 81, "answered": everyday, "right": 0, "false": everyday},
        "same_topic": {"rows": 8, "answered": same_topic, "right": 0, "false": same_topic},
    }


def test_fewer_false_answers_win_when_search_targets_hold():
    """Round 10's figures: the current 0.7807 (3 false) beats the lower 0.6729 (6 false)."""
    assert verdict([(0.7807, metrics(25, 26, 3)), (0.6729, metrics(26, 27, 6))]) == 0.7807
    assert verdict([(0.7807, metrics(25, 26, 6)), (0.6729, metrics(26, 27, 3))]) == 0.6729


def test_a_candidate_below_the_search_targets_is_not_adopted():
    """Fewer false answers do not count when recall falls below 0.85 (23 of 28 is 0.82)."""
    assert verdict([(0.7807, metrics(25, 26, 3)), (0.9, metrics(23, 23, 0))]) == 0.7807


def test_a_tie_goes_to_recall_then_to_the_current_value():
    """Equal false answers: the higher search recall, then the value already in use."""
    assert verdict([(0.7807, metrics(25, 26, 3)), (0.6729, metrics(26, 27, 2, 1))]) == 0.6729
    assert verdict([(0.7807, metrics(25, 26, 3)), (0.6729, metrics(25, 26, 3))]) == 0.7807


def test_settings_change_the_scorer_and_a_bad_one_is_refused() -> None:
    got = score_params(["claim_shared=2", "claim_predicate=true", "claim_specific=1000"])
    assert (got.claim_shared, got.claim_predicate, got.claim_specific) == (2, True, 1000)
    assert score_params([]) == ScoreParams()
    assert score_params(["claim_unshared="]).claim_unshared == ""  # 0079: the test off
    for bad in (["claim_shred=2"], ["claim_shared"], ["claim_shared="], ["claim_unshared"]):
        with pytest.raises(SystemExit, match="not a ScoreParams"):
            score_params(bad)

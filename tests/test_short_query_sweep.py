"""The short-text sweep (docs/decisions/0047): every variant scores a text of a query size's
mass or more exactly as main does, changes a lighter one, and the script skips without CED."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

from bench import short_query_sweep as sweep
from matching.scoring import PairFeatures, ScoreParams, combine


def cells(shared: list[float], coverage: list[float], bm: list[float]) -> PairFeatures:
    """Cells decided by the retelling term (containment and the query term kept low)."""
    n = len(shared)
    return PairFeatures(
        text=np.arange(n),
        doc=np.zeros(n, dtype=np.int64),
        coverage=np.array(coverage),
        containment=np.zeros(n),
        shared=np.array(shared),
        wording=np.zeros(n),
        bm=np.array(bm),
        intent=np.zeros(n),
    )


@pytest.mark.parametrize("name", [n for n in sweep.VARIANTS if n != "main"])
def test_a_variant_leaves_long_texts_as_main_and_lowers_a_short_partial_query(name: str) -> None:
    p = ScoreParams()
    # total mass 40 units (a post), then queries of 5.6, 4.4 and 8 units explained at 0.64,
    # 0.55 and 0.3
    f = cells([16.0, 3.6, 2.4, 2.4], [0.4, 0.64, 0.55, 0.3], [18.0, 8.25, 5.0, 6.0])
    main, got = combine(f, p), sweep.VARIANTS[name](f, p)
    assert got[0] == main[0]
    assert np.all(got[1:] <= main[1:])
    assert np.any(got[1:] < main[1:] - 0.01)


def test_the_sweep_restores_mains_combine_after_a_variant() -> None:
    import matching.scoring as scoring

    with sweep.scored_with(sweep.VARIANTS["uncapped M<10"]):
        assert scoring.combine is not combine
    assert scoring.combine is combine


@pytest.mark.parametrize("module", ["short_query_sweep", "intent_sweep", "name_sweep",
                                    "navigation_sweep"])  # fmt: skip
def test_every_sweep_skips_without_ced(
    module: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    main = importlib.import_module(f"bench.{module}").main
    assert main(["--data", str(tmp_path)]) == 0
    assert f"{module.replace('_', '-')}: skipped" in capsys.readouterr().out

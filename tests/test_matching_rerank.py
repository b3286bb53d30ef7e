"""The optional semantic reranker: its interface (with a deterministic test double) and the
loading code of the static-embedding model, on a tiny model this test builds (no download)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from matching import LibraryEntry, Matcher
from matching.rerank import StaticEmbeddings, tokens

LIBRARY = [
    LibraryEntry("a", "腾讯宣布微信将从下月起按条收费"),
    LibraryEntry("b", "微信下月起收费的消息是假的，官方已辟谣说明"),
    LibraryEntry("c", "某银行即将倒闭，储户排队取款"),
]


class Prefers:
    """A test double: similarity 1 for documents naming ``word``, else 0."""

    depth = 5
    weight = 0.5

    def __init__(self, word: str) -> None:
        self.word = word
        self.calls = 0

    def similarity(self, texts: Sequence[str], documents: Sequence[str]) -> np.ndarray:
        self.calls += 1
        assert len(texts) == len(documents)
        return np.array([1.0 if self.word in d else 0.0 for d in documents])


def tiny_model(folder: Path) -> Path:
    """Four dimensions: 鹅厂 and 腾讯 share a direction, banks another."""
    vocab = ["鹅厂", "腾讯", "微信", "收费", "银行", "倒闭"]
    vectors = np.array(
        [
            [1, 0, 0, 0],
            [1, 0, 0, 0],
            [0.5, 0.5, 0, 0],
            [0, 1, 0, 0],
            [0, 0, 1, 0],
            [0, 0, 0.7, 0.7],
        ],
        dtype=np.float32,
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    np.save(folder / "vectors.npy", vectors)
    return folder


def test_without_a_reranker_nothing_changes() -> None:
    plain = Matcher().build(LIBRARY)
    assert plain.reranker is None
    assert plain.match_batch(["微信 收费"], k=2) == Matcher().build(LIBRARY).match_batch(
        ["微信 收费"], k=2
    )


def test_the_reranker_blends_into_the_score_and_reorders() -> None:
    double = Prefers("辟谣")
    plain = Matcher().build(LIBRARY).match("微信 下月 收费", k=2)
    reranked = Matcher(reranker=double).build(LIBRARY).match("微信 下月 收费", k=2)
    assert double.calls == 1
    assert plain[0].rumor_id == "a" and reranked[0].rumor_id == "b"
    by_id = {m.rumor_id: m.score for m in plain}
    assert reranked[0].score == pytest.approx(0.5 * by_id["b"] + 0.5, abs=1e-6)
    assert all(0.0 <= m.score <= 1.0 for m in reranked)


def test_static_embeddings_load_from_a_local_folder(tmp_path: Path) -> None:
    model = StaticEmbeddings.load(tiny_model(tmp_path / "model"), depth=3, weight=0.4)
    assert (model.depth, model.weight, model.vectors.shape) == (3, 0.4, (6, 4))
    sim = model.similarity(["鹅厂 收费", "鹅厂 收费", "天气"], ["腾讯收费", "银行倒闭", "腾讯"])
    assert sim[0] > 0.9 and sim[1] == 0.0 and sim[2] == 0.0
    assert "鹅厂" in tokens("鵝廠 收費")  # folded like the matcher folds
    found = Matcher(reranker=model).build(LIBRARY).match("鹅厂 收费", k=3)
    assert found and found[0].rumor_id == "a"


def test_a_model_whose_files_disagree_is_refused(tmp_path: Path) -> None:
    folder = tiny_model(tmp_path / "model")
    (folder / "vocab.txt").write_text("鹅厂\n腾讯\n", encoding="utf-8")
    with pytest.raises(ValueError, match="2 tokens in vocab.txt"):
        StaticEmbeddings.load(folder)

"""CED (Weibo rumor cascades) as the project's input contracts, for ``bench/eval_service.py``.

Writes, into a folder of its own (nothing of CED is committed):

- ``rumors.jsonl``: one confirmed rumor per CED rumor post (``r:<post_id>``), claim = the post
  text, a category from a fixed keyword table (first hit in ``CATEGORY_WORDS`` order, else
  ``other``) and a severity 1–5 from a hash of the post id; verdict false;
- ``debunks.jsonl``: one debunk per rumor (``d:<post_id>``), its authority and format from a
  hash, a title that names the story without restating it (so no item quotes it);
- ``items.parquet``: every post (``p:<post_id>``, rumor and non-rumor), ``author_type`` ``user``
  (CED says nothing of its authors: the case the authority rule cannot help with); with
  ``credited_media``, ``media`` for a post whose text ends with a parenthesised source credit
  (「…（新华社）」, ``credits_outlet``): a stand-in for the author type CED lacks, to measure
  what routing media authors to review would do (rumor and non-rumor posts carry such credits);
- ``tagged_items.parquet``: hand tags (source manual, score 1) for a share of the rumor posts
  picked by a hash; the rest are left to the nightly matcher; non-rumor posts are never
  hand-tagged;
- ``exposures/dt=…/``: one exposure per engagement (user ``u<uid>`` saw post ``p:<post_id>``):
  a repost (``parent`` set, or no text of its own) is a ``share`` on the ``feed``, a top-level
  engagement with text a ``comment`` on ``comment``. CED's times span 2010–2015; they are
  mapped in order onto the ``days`` days that end on the run date (a linear map, so cascades
  keep their shape). Rows with no time stay null (the job rejects them, as it must).

Every choice is a pure function of the CED rows (no randomness), so the same files come out on
every run.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from domain.vocab import AUTHORITIES

CATEGORY_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("disaster", ("地震", "洪水", "台风", "暴雨", "泥石流", "海啸", "灾区")),
    ("epidemic", ("病毒", "疫苗", "流感", "H7N9", "传染", "疫情", "艾滋", "癌")),
    ("emergency", ("爆炸", "火灾", "起火", "坠楼", "跳楼", "坍塌", "事故", "遇难")),
    ("public_safety", ("拐", "绑架", "抢劫", "杀", "诈骗", "骗子", "迷药", "失踪", "偷")),
    ("economy", ("银行", "股市", "股票", "黄金", "房价", "人民币", "涨价", "工资")),
    ("policy", ("政策", "规定", "新规", "条例", "国务院", "政府", "征收", "税")),
    ("livelihood", ("食品", "奶粉", "地沟油", "大米", "蔬菜", "医院", "学校", "自来水")),
)
FORMATS = ("article", "card", "video")
# A trailing credit: 「（新华社）」, 「(via 某某)」, 「（来源：某报）」, then at most a link.
CREDIT = re.compile(
    r"[（(]\s*(?:来源[:：]?|via|转自|据)?\s*@?[\u4e00-\u9fffA-Za-z0-9·]{2,12}\s*[)）]\s*(?:http\S*)?\s*$"
)


@dataclass(frozen=True)
class CedWorld:
    """What the evaluation needs besides the files: the run date, the rumor post of every
    rumor id, post texts, and which posts are rumors."""

    data: Path
    run_date: date
    rumor_of_post: dict[str, str]  # rumor post id -> rumor id
    texts: dict[str, str]  # post id -> text
    hand_tagged: frozenset[str]  # rumor post ids tagged by hand
    exposures: int
    media_posts: frozenset[str] = frozenset()  # post ids written as by media authors


def stable_hash(text: str) -> int:
    """A hash of ``text`` that is the same in every process (blake2b, 8 bytes)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def category_of(text: str) -> str:
    """The first category of CATEGORY_WORDS whose words the text holds, else ``other``."""
    for category, words in CATEGORY_WORDS:
        if any(w in text for w in words):
            return category
    return "other"


def credits_outlet(text: str | None) -> bool:
    """Whether ``text`` ends with a parenthesised source credit (``CREDIT``)."""
    return bool(text) and CREDIT.search(text) is not None


def is_hand_tagged(post_id: str, share: float) -> bool:
    """Whether a rumor post is among the ``share`` tagged by hand (by a hash of its id)."""
    return stable_hash("hand:" + post_id) % 10_000 < share * 10_000


def rumor_record(post_id: str, text: str, confirmed_at: str) -> dict:
    """The rumors.jsonl record of one CED rumor post."""
    return {
        "rumor_id": f"r:{post_id}",
        "claim": text,
        "category": category_of(text),
        "severity": 1 + stable_hash("severity:" + post_id) % 5,
        "keywords": [],
        "verdict": "false",
        "status": "confirmed",
        "confirmed_at": confirmed_at,
    }


def debunk_record(post_id: str, published_at: str) -> dict:
    """The debunks.jsonl record of one CED rumor post's debunk."""
    h = stable_hash("debunk:" + post_id)
    return {
        "debunk_id": f"d:{post_id}",
        "rumor_ids": [f"r:{post_id}"],
        "title": f"辟谣 {post_id}",
        "url": f"https://debunks.example/ced/{post_id}",
        "publisher": "CED evaluation",
        "authority": AUTHORITIES[h % len(AUTHORITIES)],
        "format": FORMATS[(h >> 8) % len(FORMATS)],
        "language": "zh",
        "published_at": published_at,
    }


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    """``rows`` as JSON Lines (UTF-8, Chinese kept readable)."""
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def build(
    ced: Path,
    out: Path,
    run_date: date,
    *,
    days: int = 28,
    hand_share: float = 0.5,
    max_engagements: int | None = None,
    credited_media: bool = False,
) -> CedWorld:
    """Write CED as input contracts into ``out`` for a night on ``run_date``; with
    ``max_engagements``, only the engagements whose hash of (post, mid) falls in that share;
    with ``credited_media``, posts that credit a source are by ``media`` authors."""
    out.mkdir(parents=True, exist_ok=True)
    posts = pq.read_table(ced / "posts.parquet", columns=["post_id", "label", "text", "ts"])
    ids, labels, texts = (posts[c].to_pylist() for c in ("post_id", "label", "text"))
    end = datetime.combine(run_date + timedelta(days=1), datetime.min.time(), UTC)
    start = end - timedelta(days=days)
    confirmed_at = start.isoformat().replace("+00:00", "Z")
    rumor_posts = [(p, t) for p, lab, t in zip(ids, labels, texts, strict=True) if lab == "rumor"]
    _write_jsonl(out / "rumors.jsonl", [rumor_record(p, t, confirmed_at) for p, t in rumor_posts])
    _write_jsonl(out / "debunks.jsonl", [debunk_record(p, confirmed_at) for p, _ in rumor_posts])
    hand = frozenset(p for p, _ in rumor_posts if is_hand_tagged(p, hand_share))
    authors = ["media" if credited_media and credits_outlet(t) else "user" for t in texts]
    hand_ids = sorted(hand)
    pq.write_table(
        pa.table(
            {
                "item_id": [f"p:{p}" for p in hand_ids],
                "rumor_id": [f"r:{p}" for p in hand_ids],
                "source": ["manual"] * len(hand_ids),
                "score": [1.0] * len(hand_ids),
            }
        ),
        out / "tagged_items.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "item_id": pa.array([f"p:{p}" for p in ids], pa.string()),
                "text": pa.array(texts, pa.string()),
                "created_at": pa.array([start] * len(ids), pa.timestamp("us", tz="UTC")),
                "author_type": pa.array(authors, pa.string()),
            }
        ),
        out / "items.parquet",
    )
    n = _write_exposures(ced, out / "exposures", start, end, max_engagements)
    return CedWorld(
        data=out,
        run_date=run_date,
        rumor_of_post={p: f"r:{p}" for p, _ in rumor_posts},
        texts=dict(zip(ids, texts, strict=True)),
        hand_tagged=hand,
        exposures=n,
        media_posts=frozenset(p for p, a in zip(ids, authors, strict=True) if a == "media"),
    )


def engagements(ced: Path, max_engagements: int | None = None) -> pa.Table:
    """CED's engagements (post_id, uid, mid, parent, text, ts), all or a hashed sample."""
    table = pq.read_table(
        ced / "engagements.parquet", columns=["post_id", "uid", "mid", "parent", "text", "ts"]
    )
    table = table.cast(
        pa.schema([(f.name, pa.string() if f.name != "ts" else f.type) for f in table.schema])
    )
    if max_engagements is None or max_engagements >= table.num_rows:
        return table
    keys = [
        stable_hash(f"{p}/{m}")
        for p, m in zip(table["post_id"].to_pylist(), table["mid"].to_pylist(), strict=True)
    ]
    cut = sorted(keys)[max_engagements - 1]
    return table.filter(pa.array([k <= cut for k in keys]))


def _write_exposures(
    ced: Path, folder: Path, start: datetime, end: datetime, max_engagements: int | None
) -> int:
    """The engagements as exposure logs, one Hive partition per mapped day; the row count."""
    table = engagements(ced, max_engagements)
    ts = table["ts"].cast(pa.int64())
    lo, hi = pc.min_max(ts).values()
    lo, hi = lo.as_py(), hi.as_py()
    span_us = (end - start).total_seconds() * 1e6 - 1
    mapped = pc.add(
        pc.cast(
            pc.floor(
                pc.multiply(
                    pc.divide(pc.cast(pc.subtract(ts, lo), pa.float64()), float(max(hi - lo, 1))),
                    span_us,
                )
            ),
            pa.int64(),
        ),
        int(start.timestamp() * 1e6),
    )
    repost = pc.or_(pc.not_equal(table["parent"], ""), pc.equal(table["text"], ""))
    logs = pa.table(
        {
            "user_id": pc.binary_join_element_wise("u", table["uid"], ""),
            "item_id": pc.binary_join_element_wise("p:", table["post_id"], ""),
            "ts": mapped.cast(pa.timestamp("us", tz="UTC")),
            "surface": pc.if_else(repost, "feed", "comment"),
            "action": pc.if_else(repost, "share", "comment"),
        }
    )
    day = pc.strftime(pc.fill_null(logs["ts"], start), format="%Y-%m-%d")
    for d in sorted(set(day.to_pylist())):
        part = logs.filter(pc.equal(day, d))
        (folder / f"dt={d}").mkdir(parents=True, exist_ok=True)
        pq.write_table(part, folder / f"dt={d}" / "part-0.parquet")
    return logs.num_rows

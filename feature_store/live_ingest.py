"""Writes of live-ingested exposures: per (user, UTC hour) partial aggregates in a hash per
(user, UTC day), merged by one Lua script per batch, and the tagged-items set the ingest
screens with; ``decode_day`` and ``watermark_of`` are how every reader sees them.

``apply_batch`` sends one batch's partials (``domain.exposure_screen``), its rejects and its
counters in one script: each partial is added to what the ``HH|rumor`` field of
``keys.live_day(user, day)`` holds (count sum, first min, last max, strongest action max,
surfaces or, best tag score: a 16th byte when below 1.0), the hash's TTL is set to the lookback
window, rejects go to ``keys.INGEST_REJECTS`` and counters to ``keys.INGEST_COUNTS``. A script
runs whole or not at all, so what makes a retry harmless is written by the same script: a
RecordExposures ``batch_id`` marker (``keys.ingest_batch``), or the XACK of the stream entries
the batch came from. One Redis (not a cluster): the script touches the keys of many users.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import redis

from domain.exposure_days import BUCKET_S, add_state, bucket_of, day_end
from domain.exposure_screen import Screened
from domain.live import decode_layer, item_rumors
from domain.records import ExposureState
from feature_store import keys
from feature_store.codecs import TAG_SCORE_STEPS, decode_item_scores, pack_exposure

DAY_S = 86_400
BATCH_MARKER_TTL_S = DAY_S
REJECTS_MAXLEN = 100_000
_PART = struct.Struct("<BIIIBB")

# A partial is 15 bytes, and a 16th (the tag score, codecs.tag_score_byte) when below 1.0;
# the merge keeps the better score.
# KEYS: the batch's day hashes, then the counters hash, the rejects stream, and the batch
# marker or the source stream. ARGV: mode ('-', 'm': marker, 'x': XACK), ttl, #day keys,
# marker TTL or consumer group, rejects maxlen, #counters, counter pairs, #rejects, 7 fields
# per reject, then per day key: #fields and ("HH|rumor", packed partial) pairs; for 'x', the
# ids.
_APPLY = """
local mode, ttl, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if mode == 'm' then
  if not redis.call('SET', KEYS[n + 3], '1', 'NX', 'EX', ARGV[4]) then return 0 end
end
local a = 7
for i = 1, tonumber(ARGV[6]) do
  redis.call('HINCRBY', KEYS[n + 1], ARGV[a], ARGV[a + 1])
  a = a + 2
end
local r = tonumber(ARGV[a])
a = a + 1
for i = 1, r do
  redis.call('XADD', KEYS[n + 2], 'MAXLEN', '~', ARGV[5], '*', 'source', ARGV[a],
             'reason', ARGV[a + 1], 'user_id', ARGV[a + 2], 'item_id', ARGV[a + 3],
             'ts', ARGV[a + 4], 'surface', ARGV[a + 5], 'action', ARGV[a + 6])
  a = a + 7
end
for i = 1, n do
  local m = tonumber(ARGV[a])
  a = a + 1
  for j = 1, m do
    local f, v = ARGV[a], ARGV[a + 1]
    a = a + 2
    local cur = redis.call('HGET', KEYS[i], f)
    if cur then
      local _, c1, f1, l1, s1, k1 = struct.unpack('<BIIIBB', cur)
      local _, c2, f2, l2, s2, k2 = struct.unpack('<BIIIBB', v)
      local q = math.max(string.byte(cur, 16) or 255, string.byte(v, 16) or 255)
      v = struct.pack('<BIIIBB', 1, c1 + c2, math.min(f1, f2), math.max(l1, l2),
                      math.max(s1, s2), bit.bor(k1, k2))
      if q < 255 then v = v .. string.char(q) end
    end
    redis.call('HSET', KEYS[i], f, v)
  end
  redis.call('EXPIRE', KEYS[i], ttl)
end
if mode == 'x' then
  while a <= #ARGV do
    local last = math.min(a + 499, #ARGV)
    redis.call('XACK', KEYS[n + 3], ARGV[4], unpack(ARGV, a, last))
    a = last + 1
  end
end
return 1
"""


@dataclass
class TaggedItems:
    """The items tagged now (the pinned snapshot's items hash with the live tags applied), the
    scores of their tags (only those below 1.0: a matcher's), the snapshot's watermark, and
    what they were built from (to know when to rebuild)."""

    version: str | None = None
    seq: int = 0
    live_after: int | None = None  # unix s: rows before it are the snapshot's (its logs)
    items: dict[str, tuple[str, ...]] = field(default_factory=dict)
    scores: dict[tuple[str, str], float] = field(default_factory=dict)  # (item, rumor) -> < 1.0
    by_bytes: dict[bytes, tuple[str, ...]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_bytes = {k.encode(): v for k, v in self.items.items()}

    def rumors(self, item_id: str) -> tuple[str, ...]:
        """The rumors ``item_id`` carries now (empty when it is not tagged)."""
        return self.items.get(item_id, ())

    def score(self, item_id: str, rumor_id: str) -> float:
        """The score of the tag of ``rumor_id`` on ``item_id`` (1.0: a hand tag)."""
        return self.scores.get((item_id, rumor_id), 1.0)

    @property
    def score_of(self) -> Callable[[str, str], float] | None:
        """``score`` for the screen, or None when every tag is a hand tag (nothing to look up)."""
        return self.score if self.scores else None


def pointer_commands() -> list[tuple[bytes, ...]]:
    """The round trip that tells whether TaggedItems must be rebuilt: pointer and live seq."""
    return [(b"GET", keys.CURRENT), (b"GET", keys.LIVE_SEQ)]


def stale(tagged: TaggedItems, replies: list[Any]) -> tuple[str | None, int] | None:
    """(version, seq) when the replies of pointer_commands name another snapshot or layer."""
    version = replies[0].decode() if replies[0] else None
    seq = int(replies[1] or 0)
    return None if (version, seq) == (tagged.version, tagged.seq) else (version, seq)


def load_commands(version: str | None) -> list[tuple[bytes, ...]]:
    """The reads build_tagged needs: the snapshot's items, their tag scores and watermark,
    and the live tags."""
    if version is None:
        return [(b"HGETALL", keys.LIVE_TAGS)]
    return [(b"HGETALL", keys.items(version)), (b"HGETALL", keys.item_scores(version)),
            watermark_command(version),
            (b"HGETALL", keys.LIVE_TAGS)]  # fmt: skip


def build_tagged(version: str | None, seq: int, replies: list[Any]) -> TaggedItems:
    """TaggedItems from the replies of load_commands(version)."""
    if version is None:
        snapshot: dict[bytes, bytes] = {}
        raw_scores: dict[bytes, bytes] = {}
        meta: list[Any] = [None, None, None]
        tags = replies[0]
    else:
        snapshot, raw_scores, meta, tags = replies
    items = {k.decode(): tuple(v.decode().split(",")) for k, v in snapshot.items() if v}
    scores = decode_item_scores(raw_scores or {})
    for item, change in decode_layer(seq, {}, {}, tags).tags.items():
        rumors = tuple(item_rumors(list(items.get(item, ())), change))
        for rumor in change.removed | change.added.keys():
            scores.pop((item, rumor), None)
        for rumor, (source, score) in change.added.items():
            live = tag_score(source, score)
            if live < 1.0:
                scores[(item, rumor)] = live
        if rumors:
            items[item] = rumors
        else:
            items.pop(item, None)
    scores = {k: v for k, v in scores.items() if k[1] in items.get(k[0], ())}
    return TaggedItems(version, seq, watermark_of(meta), items, scores)


def tag_score(source: str, score: float | None) -> float:
    """A tag's score as the nightly join weighs it (``prepare_tags``): 1.0 for a hand tag or
    no score, else the score clipped to [0, 1]."""
    if source != "matched" or score is None or math.isnan(score):
        return 1.0
    return min(max(float(score), 0.0), 1.0)


def watermark_command(version: str) -> tuple[bytes, ...]:
    """The read of a snapshot's watermark fields (for watermark_of)."""
    return (b"HMGET", keys.meta(version), b"live_after", b"covers_through", b"run_date")


def watermark_of(raw: list | None) -> int | None:
    """A snapshot's watermark (unix s) from the reply of watermark_command: its meta
    ``live_after``, else the midnight after ``covers_through`` or ``run_date`` (a snapshot
    written before watermarks covered whole days); None when it has none or they are bad."""
    after, *days = raw or [None, None, None]
    if after:
        try:
            return int(after) - int(after) % BUCKET_S
        except ValueError:
            pass
    day = next((d for d in days if d), None)
    if not day:
        return None
    try:
        return day_end(date.fromisoformat(day.decode() if isinstance(day, bytes) else day))
    except ValueError:
        return None


def script_args(
    screened: Screened,
    *,
    source: str,
    ttl_s: int,
    batch_id: str | None = None,
    stream: tuple[bytes, str, list[bytes]] | None = None,
) -> tuple[list[bytes], list[Any]]:
    """KEYS and ARGV of the apply script for one screened batch; ``batch_id`` marks it applied,
    ``stream`` = (stream key, group, entry ids) acknowledges its entries in the same script."""
    day_keys = [keys.live_day(user, day) for user, day in screened.parts]
    tail = stream[0] if stream else keys.INGEST_COUNTS
    if batch_id:
        tail = keys.ingest_batch(batch_id)
    mode = "m" if batch_id else ("x" if stream else "-")
    fourth = BATCH_MARKER_TTL_S if batch_id else (stream[1] if stream else "")
    counts = screened.counts()
    argv: list[Any] = [mode, ttl_s, len(day_keys), fourth, REJECTS_MAXLEN, len(counts)]
    for name, n in counts.items():
        argv += [name, n]
    argv.append(len(screened.rejects))
    for reason, row in screened.rejects:
        argv += [source, reason, *("" if v is None else str(v) for v in row)]
    for rumors in screened.parts.values():
        argv.append(len(rumors))
        for rumor, s in rumors.items():
            argv += [rumor, _pack(s)]
    if stream:
        argv += stream[2]
    return [*day_keys, keys.INGEST_COUNTS, keys.INGEST_REJECTS, tail], argv


def _pack(s: ExposureState) -> bytes:
    """A partial aggregate in the codec-1 exposure layout (15 bytes; 16 with a tag score below
    1.0)."""
    return pack_exposure(s.exposures, s.first_ts, s.last_ts, s.strongest_action, s.surface_mask,
                         tag_score=s.tag_score)  # fmt: skip


APPLY_SCRIPT = _APPLY


def decode_day(raw: dict[bytes, bytes] | None, from_hour: int = 0) -> dict[str, ExposureState]:
    """A live day hash as HGETALL returns it: rumor_id -> the sum of its buckets from
    ``from_hour`` on (the watermark's hour on its day, else 0); a missing key may come back as
    None through a cluster pipeline."""
    out: dict[str, ExposureState] = {}
    if not raw:
        return out
    for k, v in raw.items():
        hour, rumor = bucket_of(k.decode())
        if hour < from_hour:
            continue
        score = _TAG_SCORES[v[15]] if len(v) > 15 else 1.0  # no 16th byte: a hand tag's 1.0
        part = _make((rumor, *_unpack(v)[1:], (), score))
        seen = out.get(rumor)
        out[rumor] = part if seen is None else add_state(seen, part)
    return out


def day_rumors(fields: list[bytes] | None, from_hour: int = 0) -> set[str]:
    """The rumor ids of a live day hash's fields (HKEYS) with a bucket from ``from_hour`` on."""
    out: set[str] = set()
    for f in fields or ():
        hour, rumor = bucket_of(f.decode())
        if hour >= from_hour:
            out.add(rumor)
    return out


_unpack, _make = _PART.unpack_from, ExposureState._make
_TAG_SCORES = tuple(q / TAG_SCORE_STEPS for q in range(TAG_SCORE_STEPS + 1))


def load_tagged(
    client: redis.Redis, tagged: TaggedItems, pointer: list[Any] | None = None
) -> TaggedItems:
    """``tagged``, or a rebuilt set when the pointer or live seq moved (sync clients);
    ``pointer``: the replies of pointer_commands when the caller read them already."""
    moved = stale(tagged, _run(client, pointer_commands()) if pointer is None else pointer)
    if moved is None:
        return tagged
    return build_tagged(*moved, _run(client, load_commands(moved[0])))


def apply_batch(client: redis.Redis, screened: Screened, **kwargs: Any) -> bool:
    """Run the apply script for one screened batch (script_args' keywords); False when its
    batch_id was applied before (nothing written)."""
    keys_, argv = script_args(screened, **kwargs)
    return bool(client.register_script(APPLY_SCRIPT)(keys=keys_, args=argv))


def _run(client: redis.Redis, commands: list[tuple[bytes, ...]]) -> list[Any]:
    """Replies of ``commands`` in one pipelined round trip."""
    pipe = client.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    return pipe.execute()

"""The trim of live buckets a new snapshot covers: after a nightly's flip, the live day hashes
lose what lies before the snapshot's watermark, so covered days neither linger in memory nor get
read and decoded by every feed read until their TTL.

SCAN walks the live day keys in batches; one Lua script per batch checks that the pointer still
names the snapshot (a newer flip or a rollback leaves the trim to whoever set it), then deletes
the hashes of days wholly before the watermark and HDELs the buckets before its hour from the
watermark's day. A script runs whole, so an ingest script adding to a bucket at or after the
watermark at the same time is never lost: nothing at or after it is touched. A covered bucket
an ingest with an older watermark adds after the trim is not read (readers skip it) and goes
with its TTL or the next trim. One Redis (not a cluster): the script reads the pointer and
many users' keys, as the ingest script does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from domain.exposure_days import BUCKET_S
from feature_store import keys

SCAN_COUNT = 250

# KEYS: the pointer, then live day keys. ARGV: the version, the watermark's day (YYYYMMDD), its
# hour. Returns {days deleted, buckets deleted}, or -1 when the pointer names another version.
_TRIM = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local day, hour = ARGV[2], tonumber(ARGV[3])
local days, buckets = 0, 0
for i = 2, #KEYS do
  local d = string.sub(KEYS[i], -8)
  if d < day then
    days = days + redis.call('DEL', KEYS[i])
  elseif d == day and hour > 0 then
    local gone = {}
    for _, f in ipairs(redis.call('HKEYS', KEYS[i])) do
      local h = 0
      if string.sub(f, 3, 3) == '|' then h = tonumber(string.sub(f, 1, 2)) or 0 end
      if h < hour then gone[#gone + 1] = f end
    end
    for a = 1, #gone, 500 do
      buckets = buckets + redis.call('HDEL', KEYS[i], unpack(gone, a, math.min(a + 499, #gone)))
    end
  end
end
return {days, buckets}
"""  # HDEL in chunks of 500: Lua's unpack has a stack limit


@dataclass
class Trimmed:
    """What one trim removed, and whether it stopped because the pointer moved."""

    keys_seen: int = 0
    days_deleted: int = 0
    buckets_deleted: int = 0
    batches: int = 0
    superseded: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The run summary's form."""
        return asdict(self)


def trim_covered(
    client: redis.Redis, version: str, live_after: int, *, count: int = SCAN_COUNT
) -> Trimmed:
    """Remove the live buckets before ``live_after`` (``version``'s watermark, unix s) while
    the pointer names ``version``; SCAN ``count`` keys at a time, one script per batch."""
    at = datetime.fromtimestamp(live_after - live_after % BUCKET_S, UTC)
    day, hour = at.strftime("%Y%m%d"), at.hour
    script = client.register_script(_TRIM)
    out = Trimmed()
    for batch in _batches(client, count):
        out.keys_seen += len(batch)
        todo = [k for k in batch if _covered(keys.live_day_of(k) or "", day, hour)]
        if not todo:
            continue
        reply = script(keys=[keys.CURRENT, *todo], args=[version, day, hour])
        out.batches += 1
        if reply == -1:
            out.superseded = True
            break
        out.days_deleted += int(reply[0])
        out.buckets_deleted += int(reply[1])
    return out


def _covered(key_day: str, day: str, hour: int) -> bool:
    """Whether a live day key of ``key_day`` may hold buckets before (``day``, ``hour``)."""
    return key_day < day or (hour > 0 and key_day == day)


def _batches(client: redis.Redis, count: int) -> Any:
    """The live day keys, a SCAN reply at a time (only keys live_day_of recognises)."""
    cursor = 0
    while True:
        cursor, found = client.scan(cursor, match=keys.live_day_pattern(), count=count)
        batch = [k for k in found if keys.live_day_of(k) is not None]
        if batch:
            yield batch
        if cursor == 0:
            return

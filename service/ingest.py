"""RecordExposures: live exposures from log shippers, screened and added to the users' live
exposure state (``feature_store.live_ingest``) before the call answers.

The tagged-items set lives in process and is rebuilt when the snapshot pointer or the live
layer's seq moves (one pipelined GET of both per call tells). A batch over the limit or with a
malformed ``batch_id`` is INVALID_ARGUMENT and writes nothing; bad rows are not errors: they go
to the rejects stream with their reason. The answer says what Redis holds: OK once the script
ran, UNAVAILABLE when the store failed (the batch then applied whole or not at all, so a retry
with the same ``batch_id`` never counts twice).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import redis.asyncio

from debunk.v1 import debunk_pb2 as pb
from domain.exposure_days import MAX_LIVE_DAYS
from domain.exposure_screen import RawExposure, Screened, screen
from domain.ids import valid_id
from domain.vocab import ACTIONS, SURFACES
from feature_store import live_ingest
from service.offload import CpuPool
from service.rpc import STORE_ERRORS

MAX_EXPOSURES = 10_000
# Batches from this many rows are screened on the CPU pool's threads, not on the event loop.
OFFLOAD_ROWS = 500
DAY_S = 86_400
_SURFACES = {i + 1: s for i, s in enumerate(SURFACES)}
_ACTIONS = {i + 1: a for i, a in enumerate(ACTIONS)}


class ExposureIntake:
    """Screens and writes RecordExposures batches; holds the tagged-items set."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        cpu: CpuPool | None = None,
        *,
        window_days: int = MAX_LIVE_DAYS,
    ) -> None:
        self.client = client
        self.cpu = cpu or CpuPool()
        self.window_s = window_days * DAY_S
        self.tagged = live_ingest.TaggedItems()
        self.script = client.register_script(live_ingest.APPLY_SCRIPT)
        self._lock = asyncio.Lock()

    async def refresh(self) -> live_ingest.TaggedItems:
        """The tagged-items set, rebuilt first when the pointer or the live seq moved."""
        pipe = self.client.pipeline(transaction=False)
        for command in live_ingest.pointer_commands():
            pipe.execute_command(*command)
        moved = live_ingest.stale(self.tagged, await pipe.execute())
        if moved is None:
            return self.tagged
        async with self._lock:
            if live_ingest.stale(self.tagged, [_b(moved[0]), moved[1]]) is not None:
                pipe = self.client.pipeline(transaction=False)
                for command in live_ingest.load_commands(moved[0]):
                    pipe.execute_command(*command)
                self.tagged = live_ingest.build_tagged(*moved, await pipe.execute())
        return self.tagged

    def _prepare(
        self, request: pb.RecordExposuresRequest, tagged: live_ingest.TaggedItems, now: float
    ) -> tuple[Screened, list[bytes], list[Any]]:
        """Screen the request's rows and build the apply script's keys and arguments."""
        screened = screen(rows(request.events), tagged.rumors, now=now, window_s=self.window_s,
                          live_after=tagged.live_after,
                          score_of=tagged.score_of)  # fmt: skip
        keys, argv = live_ingest.script_args(
            screened, source="rpc", ttl_s=self.window_s, batch_id=request.batch_id or None
        )
        return screened, keys, argv

    async def record(
        self, request: pb.RecordExposuresRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordExposuresResponse:
        """Validate the batch, screen its rows, apply it in one script; answer the counts."""
        if len(request.events) > MAX_EXPOSURES:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"at most {MAX_EXPOSURES} exposures per call, got {len(request.events)}",
            )
        if request.batch_id and not valid_id(request.batch_id):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "batch_id may only contain letters, digits and _ . @ : + / = - (1-128)",
            )
        try:
            tagged = await self.refresh()
            args = (request, tagged, time.time())
            if len(request.events) >= OFFLOAD_ROWS:  # off the loop: RankFeed keeps its turns
                screened, keys, argv = await self.cpu.run(self._prepare, *args)
            else:
                screened, keys, argv = self._prepare(*args)
            applied = await self.script(keys=keys, args=argv)
        except STORE_ERRORS as e:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"not stored: {type(e).__name__}")
        if not applied:
            return pb.RecordExposuresResponse(duplicate=True)
        return pb.RecordExposuresResponse(
            accepted=screened.accepted, stored=screened.stored, untagged=screened.untagged,
            rejected=len(screened.rejects), covered=screened.covered,
        )  # fmt: skip


def rows(events: list[pb.LiveExposure]) -> list[RawExposure]:
    """The request's exposures as raw rows (enum values as names, "" when unknown)."""
    return [
        (
            e.user_id,
            e.item_id,
            e.ts.seconds + e.ts.nanos / 1e9 if e.HasField("ts") else None,
            _SURFACES.get(e.surface, ""),
            _ACTIONS.get(e.action, ""),
        )
        for e in events
    ]


def _b(version: str | None) -> bytes | None:
    """A version as the pointer's reply would carry it."""
    return None if version is None else version.encode()

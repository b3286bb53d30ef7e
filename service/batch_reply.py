"""RankFeedBatch's answer kept as its parts and written straight to wire bytes (decision 0077).

A batch of 1,000 users on a platform's mix is mostly users with nothing to show: building a
``UserFeed`` message for each (its user id, its labels), merging each member's cards into it
(upb parses them) and serializing the whole response again cost more server CPU than the
members' reads. ``BatchReply`` keeps the user ids, each member's cards as the bytes
``service.cards.feed_cards_wire`` wrote, and the experiment and arms; the server serializes it
with ``feeds_wire`` (C, ``service._cardwire``) in one pass. What a client parses is exactly the
``RankFeedBatchResponse`` the message-built answer held (tests/test_batch_reply.py compares
them over real gRPC). ``add_to_server`` registers the servicer with that serializer for
RankFeedBatch; every other method keeps the generated one.
"""

from __future__ import annotations

import operator
from collections import Counter as Tally
from typing import Any

import grpc

from debunk.v1 import debunk_pb2_grpc as pb_grpc
from domain.experiments import Arm, Experiment
from service.cards import feeds_wire, label_wire

BATCH_METHOD = "RankFeedBatch"


class BatchReply:
    """A RankFeedBatchResponse being filled in: ``snapshot_version`` and ``degraded`` as the
    message's fields, one entry of ``cards`` per user (its cards' wire bytes, or None), and the
    labels every user's feed carries. ``SerializeToString`` gives the message's wire bytes."""

    __slots__ = ("snapshot_version", "degraded", "user_ids", "cards", "experiment", "arms")

    def __init__(self, snapshot_version: str = "", degraded: bool = False) -> None:
        self.snapshot_version = snapshot_version
        self.degraded = degraded
        self.user_ids: list[str] = []
        self.cards: list[bytes | None] = []
        self.experiment: Experiment | None = None
        self.arms: list[Arm | None] = []

    def open(
        self, user_ids: list[str], experiment: Experiment | None, arms: list[Arm | None]
    ) -> None:
        """One feed per user of ``user_ids``, in order, labelled with ``experiment`` and each
        user's arm (none without an experiment), no cards yet."""
        self.user_ids = user_ids
        self.cards = [None] * len(user_ids)
        self.experiment, self.arms = experiment, arms

    def SerializeToString(self) -> bytes:  # the name grpc's serializer calls
        """The wire bytes of the RankFeedBatchResponse this answer stands for (fields in number
        order, as upb writes them)."""
        exp = self.experiment
        tails = None
        if exp is not None:
            name = exp.name
            tail = {a: None if a is None else label_wire(name, a.name) for a in set(self.arms)}
            tails = [tail[a] for a in self.arms]
        return feeds_wire(self.user_ids, self.cards, tails, self.snapshot_version, self.degraded)

    def arm_counts(self) -> dict[tuple[str, str], int]:
        """How many feeds carry each (experiment, arm) label."""
        exp = self.experiment
        if exp is None or not exp.name:
            return {}
        counts = Tally(self.arms)
        return {(exp.name, a.name): n for a, n in counts.items() if a is not None and a.name}


class _Registered:
    """Stands in for the server while the generated code registers the servicer, keeping the
    method handlers it names."""

    def __init__(self) -> None:
        self.service = ""
        self.handlers: dict[str, grpc.RpcMethodHandler] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass  # rebuilt from the handlers below

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        self.service, self.handlers = service, dict(handlers)


def add_to_server(servicer: pb_grpc.DebunkServiceServicer, server: grpc.aio.Server) -> None:
    """``add_DebunkServiceServicer_to_server``, with RankFeedBatch's answer serialized by its
    own ``SerializeToString`` (a ``BatchReply``'s, or a message's)."""
    found = _Registered()
    pb_grpc.add_DebunkServiceServicer_to_server(servicer, found)
    handlers = found.handlers
    handlers[BATCH_METHOD] = handlers[BATCH_METHOD]._replace(
        response_serializer=operator.methodcaller("SerializeToString")
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(found.service, handlers),)
    )
    server.add_registered_method_handlers(found.service, handlers)

"""Request validation: every bad request gets INVALID_ARGUMENT with a message that says why."""

from __future__ import annotations

from typing import NamedTuple

from debunk.v1 import debunk_pb2 as pb
from domain.delivery import DeliveryEvent
from domain.ids import InvalidId, all_valid_ids, check_id
from domain.records import Catalog
from domain.vocab import DEBUNK_EVENTS, SURFACES

MAX_FEED_LIMIT = 50
# proto enum value -> vocabulary word (the enums follow the vocabulary, after UNSPECIFIED = 0)
_SURFACES = {i + 1: s for i, s in enumerate(SURFACES)}
_EVENTS = {i + 1: e for i, e in enumerate(DEBUNK_EVENTS)}


class BadRequest(ValueError):
    """A request the service refuses; the message goes back to the caller as-is."""


def user_id(value: str, field: str = "user_id") -> str:
    """A user id safe to use in a store key."""
    try:
        return check_id(value, field)
    except InvalidId as e:
        raise BadRequest(str(e)) from None


def feed_limit(value: int) -> int:
    """How many cards a feed asks for: 1..50."""
    if not 1 <= value <= MAX_FEED_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_FEED_LIMIT}, got {value}")
    return value


MAX_BATCH_USERS = 1000
MAX_EVENTS = 1000
# Events may be stamped by callers whose clocks run a little ahead; more than this is refused.
MAX_CLOCK_SKEW_S = 300


def some_id(value: str, field: str) -> str:
    """An id (item, debunk, rumor, group...) safe to use in a store key."""
    return user_id(value, field)


def batch_user_ids(values: list[str]) -> list[str]:
    """1..1000 valid user ids, in request order: checked in one pass over the ids joined by a
    newline (outside the id alphabet), and one id at a time only to name the first bad one."""
    if not 1 <= len(values) <= MAX_BATCH_USERS:
        raise BadRequest(f"user_ids must hold 1 to {MAX_BATCH_USERS} ids, got {len(values)}")
    if all_valid_ids(values):
        return values
    for i, value in enumerate(values):
        user_id(value, f"user_ids[{i}]")
    return values  # unreachable: all_valid_ids and check_id agree (tests/test_validation.py)


def events(
    values: list[pb.DebunkEvent], catalog: Catalog | None, *, now: float
) -> list[DeliveryEvent]:
    """Validated events; the rumor comes from the catalog when the caller left it out."""
    if not 1 <= len(values) <= MAX_EVENTS:
        raise BadRequest(f"events must hold 1 to {MAX_EVENTS} events, got {len(values)}")
    out = []
    for i, e in enumerate(values):
        where = f"events[{i}]"
        if e.surface == pb.SURFACE_UNSPECIFIED or e.surface not in _SURFACES:
            raise BadRequest(f"{where}.surface must be set")
        if e.event == pb.EVENT_TYPE_UNSPECIFIED or e.event not in _EVENTS:
            raise BadRequest(f"{where}.event must be set")
        ts = e.ts.seconds if e.HasField("ts") else int(now)
        if ts <= 0 or ts > now + MAX_CLOCK_SKEW_S:
            raise BadRequest(f"{where}.ts must not be in the future")
        rumor = e.rumor_id
        if not rumor and catalog is not None and e.debunk_id in catalog.debunks:
            rumor = catalog.debunks[e.debunk_id].rumor_ids[0]
        try:
            out.append(
                DeliveryEvent(
                    user_id=e.user_id,
                    debunk_id=e.debunk_id,
                    rumor_id=rumor,
                    surface=_SURFACES[e.surface],
                    event=_EVENTS[e.event],
                    ts=ts,
                    experiment=e.experiment,
                    arm=e.arm,
                    event_id=e.event_id,
                    update=e.update,
                )
            )
        except InvalidId as err:
            raise BadRequest(f"{where}: {err}") from None
    return _first_of_each_id(out)


def _first_of_each_id(events: list[DeliveryEvent]) -> list[DeliveryEvent]:
    """The events with an id once each (the first); events without one all stay."""
    seen: set[str] = set()
    out = []
    for e in events:
        if e.event_id:
            if e.event_id in seen:
                continue
            seen.add(e.event_id)
        out.append(e)
    return out


MAX_QUERY_CHARS = 256
MAX_PINNED = 10
MAX_MESSAGES = 100
MAX_MEMBERS = 1000
MAX_MESSAGE_CHARS = 4000


def query(value: str) -> str:
    """A search query: 1..256 characters once trimmed."""
    text = value.strip()
    if not text:
        raise BadRequest("query must not be empty")
    if len(text) > MAX_QUERY_CHARS:
        raise BadRequest(f"query is longer than {MAX_QUERY_CHARS} characters")
    return text


def pinned_limit(value: int) -> int:
    """How many pinned cards: 0 means 3; at most 10."""
    if value == 0:
        return 3
    if not 1 <= value <= MAX_PINNED:
        raise BadRequest(f"limit must be between 1 and {MAX_PINNED}, got {value}")
    return value


def group(request: pb.GroupWarningsRequest) -> tuple[list[pb.GroupMessage], list[str]]:
    """Messages (1..100, ids unique, text <= 4000 chars) and members (<= 1000) of a group call."""
    some_id(request.group_id, "group_id")
    messages = list(request.messages)
    if not 1 <= len(messages) <= MAX_MESSAGES:
        raise BadRequest(f"messages must hold 1 to {MAX_MESSAGES}, got {len(messages)}")
    seen: set[str] = set()
    for i, m in enumerate(messages):
        some_id(m.message_id, f"messages[{i}].message_id")
        if m.message_id in seen:
            raise BadRequest(f"messages[{i}].message_id repeats {m.message_id!r}")
        seen.add(m.message_id)
        if m.item_id:
            some_id(m.item_id, f"messages[{i}].item_id")
        if m.sender_id:
            some_id(m.sender_id, f"messages[{i}].sender_id")
        if len(m.text) > MAX_MESSAGE_CHARS:
            raise BadRequest(f"messages[{i}].text is longer than {MAX_MESSAGE_CHARS} characters")
        if not m.text and not m.item_id:
            raise BadRequest(f"messages[{i}] needs text or item_id")
    members = list(request.member_ids)
    if len(members) > MAX_MEMBERS:
        raise BadRequest(f"member_ids must hold at most {MAX_MEMBERS}, got {len(members)}")
    for i, member in enumerate(members):
        user_id(member, f"member_ids[{i}]")
    return messages, members


# What each snapshot RPC asks for, validated (the rpc decorator's ``parse`` step).


class FeedRequest(NamedTuple):
    user_id: str
    limit: int


class BatchRequest(NamedTuple):
    user_ids: list[str]
    limit: int


class CommentRequest(NamedTuple):
    item_id: str
    user_id: str  # "" for an anonymous viewer


class SearchRequest(NamedTuple):
    query: str
    user_id: str  # "" for an anonymous searcher
    limit: int


class GroupRequest(NamedTuple):
    messages: list[pb.GroupMessage]
    members: list[str]


def _viewer(value: str) -> str:
    """An optional viewer: "" or a valid user id."""
    return user_id(value) if value else ""


def feed_request(request: pb.RankFeedRequest) -> FeedRequest:
    return FeedRequest(user_id(request.user_id), feed_limit(request.limit))


def batch_request(request: pb.RankFeedBatchRequest) -> BatchRequest:
    return BatchRequest(batch_user_ids(list(request.user_ids)), feed_limit(request.limit))


def comment_request(request: pb.CommentTopRequest) -> CommentRequest:
    return CommentRequest(some_id(request.item_id, "item_id"), _viewer(request.user_id))


def search_request(request: pb.SearchTopRequest) -> SearchRequest:
    return SearchRequest(
        query(request.query), _viewer(request.user_id), pinned_limit(request.limit)
    )


def group_request(request: pb.GroupWarningsRequest) -> GroupRequest:
    return GroupRequest(*group(request))

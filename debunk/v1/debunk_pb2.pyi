import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Surface(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SURFACE_UNSPECIFIED: _ClassVar[Surface]
    SURFACE_FEED: _ClassVar[Surface]
    SURFACE_SEARCH: _ClassVar[Surface]
    SURFACE_COMMENT: _ClassVar[Surface]
    SURFACE_GROUP: _ClassVar[Surface]
    SURFACE_PUSH: _ClassVar[Surface]
    SURFACE_OTHER: _ClassVar[Surface]

class Action(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTION_UNSPECIFIED: _ClassVar[Action]
    ACTION_IMPRESSION: _ClassVar[Action]
    ACTION_CLICK: _ClassVar[Action]
    ACTION_LIKE: _ClassVar[Action]
    ACTION_COMMENT: _ClassVar[Action]
    ACTION_SHARE: _ClassVar[Action]

class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_TYPE_UNSPECIFIED: _ClassVar[EventType]
    EVENT_TYPE_SERVED: _ClassVar[EventType]
    EVENT_TYPE_IMPRESSION: _ClassVar[EventType]
    EVENT_TYPE_CLICK: _ClassVar[EventType]
    EVENT_TYPE_DISMISS: _ClassVar[EventType]
    EVENT_TYPE_SHARE: _ClassVar[EventType]
SURFACE_UNSPECIFIED: Surface
SURFACE_FEED: Surface
SURFACE_SEARCH: Surface
SURFACE_COMMENT: Surface
SURFACE_GROUP: Surface
SURFACE_PUSH: Surface
SURFACE_OTHER: Surface
ACTION_UNSPECIFIED: Action
ACTION_IMPRESSION: Action
ACTION_CLICK: Action
ACTION_LIKE: Action
ACTION_COMMENT: Action
ACTION_SHARE: Action
EVENT_TYPE_UNSPECIFIED: EventType
EVENT_TYPE_SERVED: EventType
EVENT_TYPE_IMPRESSION: EventType
EVENT_TYPE_CLICK: EventType
EVENT_TYPE_DISMISS: EventType
EVENT_TYPE_SHARE: EventType

class Reason(_message.Message):
    __slots__ = ("action", "exposures", "first_exposed_at", "last_exposed_at", "surfaces", "text", "prebunk", "model_affinity", "updated")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    EXPOSURES_FIELD_NUMBER: _ClassVar[int]
    FIRST_EXPOSED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_EXPOSED_AT_FIELD_NUMBER: _ClassVar[int]
    SURFACES_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PREBUNK_FIELD_NUMBER: _ClassVar[int]
    MODEL_AFFINITY_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    action: Action
    exposures: int
    first_exposed_at: _timestamp_pb2.Timestamp
    last_exposed_at: _timestamp_pb2.Timestamp
    surfaces: _containers.RepeatedScalarFieldContainer[Surface]
    text: str
    prebunk: bool
    model_affinity: float
    updated: bool
    def __init__(self, action: _Optional[_Union[Action, str]] = ..., exposures: _Optional[int] = ..., first_exposed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_exposed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., surfaces: _Optional[_Iterable[_Union[Surface, str]]] = ..., text: _Optional[str] = ..., prebunk: _Optional[bool] = ..., model_affinity: _Optional[float] = ..., updated: _Optional[bool] = ...) -> None: ...

class DebunkCard(_message.Message):
    __slots__ = ("debunk_id", "rumor_id", "title", "url", "publisher", "score", "authority", "format", "language", "claim", "verdict", "reason", "update")
    DEBUNK_ID_FIELD_NUMBER: _ClassVar[int]
    RUMOR_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    AUTHORITY_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    CLAIM_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    debunk_id: str
    rumor_id: str
    title: str
    url: str
    publisher: str
    score: float
    authority: str
    format: str
    language: str
    claim: str
    verdict: str
    reason: Reason
    update: bool
    def __init__(self, debunk_id: _Optional[str] = ..., rumor_id: _Optional[str] = ..., title: _Optional[str] = ..., url: _Optional[str] = ..., publisher: _Optional[str] = ..., score: _Optional[float] = ..., authority: _Optional[str] = ..., format: _Optional[str] = ..., language: _Optional[str] = ..., claim: _Optional[str] = ..., verdict: _Optional[str] = ..., reason: _Optional[_Union[Reason, _Mapping]] = ..., update: _Optional[bool] = ...) -> None: ...

class RankFeedRequest(_message.Message):
    __slots__ = ("user_id", "limit")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    limit: int
    def __init__(self, user_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class RankFeedResponse(_message.Message):
    __slots__ = ("cards", "snapshot_version", "degraded", "experiment", "arm")
    CARDS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    cards: _containers.RepeatedCompositeFieldContainer[DebunkCard]
    snapshot_version: str
    degraded: bool
    experiment: str
    arm: str
    def __init__(self, cards: _Optional[_Iterable[_Union[DebunkCard, _Mapping]]] = ..., snapshot_version: _Optional[str] = ..., degraded: _Optional[bool] = ..., experiment: _Optional[str] = ..., arm: _Optional[str] = ...) -> None: ...

class RankFeedBatchRequest(_message.Message):
    __slots__ = ("user_ids", "limit")
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    limit: int
    def __init__(self, user_ids: _Optional[_Iterable[str]] = ..., limit: _Optional[int] = ...) -> None: ...

class UserFeed(_message.Message):
    __slots__ = ("user_id", "cards", "experiment", "arm")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CARDS_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    cards: _containers.RepeatedCompositeFieldContainer[DebunkCard]
    experiment: str
    arm: str
    def __init__(self, user_id: _Optional[str] = ..., cards: _Optional[_Iterable[_Union[DebunkCard, _Mapping]]] = ..., experiment: _Optional[str] = ..., arm: _Optional[str] = ...) -> None: ...

class RankFeedBatchResponse(_message.Message):
    __slots__ = ("feeds", "snapshot_version", "degraded")
    FEEDS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    feeds: _containers.RepeatedCompositeFieldContainer[UserFeed]
    snapshot_version: str
    degraded: bool
    def __init__(self, feeds: _Optional[_Iterable[_Union[UserFeed, _Mapping]]] = ..., snapshot_version: _Optional[str] = ..., degraded: _Optional[bool] = ...) -> None: ...

class SearchTopRequest(_message.Message):
    __slots__ = ("query", "user_id", "limit")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    query: str
    user_id: str
    limit: int
    def __init__(self, query: _Optional[str] = ..., user_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class SearchTopResponse(_message.Message):
    __slots__ = ("cards", "snapshot_version", "degraded", "experiment", "arm")
    CARDS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    cards: _containers.RepeatedCompositeFieldContainer[DebunkCard]
    snapshot_version: str
    degraded: bool
    experiment: str
    arm: str
    def __init__(self, cards: _Optional[_Iterable[_Union[DebunkCard, _Mapping]]] = ..., snapshot_version: _Optional[str] = ..., degraded: _Optional[bool] = ..., experiment: _Optional[str] = ..., arm: _Optional[str] = ...) -> None: ...

class CommentTopRequest(_message.Message):
    __slots__ = ("item_id", "user_id")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    user_id: str
    def __init__(self, item_id: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class CommentTopResponse(_message.Message):
    __slots__ = ("card", "snapshot_version", "degraded", "experiment", "arm")
    CARD_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    card: DebunkCard
    snapshot_version: str
    degraded: bool
    experiment: str
    arm: str
    def __init__(self, card: _Optional[_Union[DebunkCard, _Mapping]] = ..., snapshot_version: _Optional[str] = ..., degraded: _Optional[bool] = ..., experiment: _Optional[str] = ..., arm: _Optional[str] = ...) -> None: ...

class GroupMessage(_message.Message):
    __slots__ = ("message_id", "text", "item_id", "sender_id")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_ID_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    text: str
    item_id: str
    sender_id: str
    def __init__(self, message_id: _Optional[str] = ..., text: _Optional[str] = ..., item_id: _Optional[str] = ..., sender_id: _Optional[str] = ...) -> None: ...

class GroupWarningsRequest(_message.Message):
    __slots__ = ("group_id", "messages", "member_ids")
    GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    MEMBER_IDS_FIELD_NUMBER: _ClassVar[int]
    group_id: str
    messages: _containers.RepeatedCompositeFieldContainer[GroupMessage]
    member_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, group_id: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[GroupMessage, _Mapping]]] = ..., member_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GroupWarning(_message.Message):
    __slots__ = ("message_id", "card", "exposed_member_ids", "matched_by", "match_score")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    EXPOSED_MEMBER_IDS_FIELD_NUMBER: _ClassVar[int]
    MATCHED_BY_FIELD_NUMBER: _ClassVar[int]
    MATCH_SCORE_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    card: DebunkCard
    exposed_member_ids: _containers.RepeatedScalarFieldContainer[str]
    matched_by: str
    match_score: float
    def __init__(self, message_id: _Optional[str] = ..., card: _Optional[_Union[DebunkCard, _Mapping]] = ..., exposed_member_ids: _Optional[_Iterable[str]] = ..., matched_by: _Optional[str] = ..., match_score: _Optional[float] = ...) -> None: ...

class GroupWarningsResponse(_message.Message):
    __slots__ = ("warnings", "snapshot_version", "degraded")
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    warnings: _containers.RepeatedCompositeFieldContainer[GroupWarning]
    snapshot_version: str
    degraded: bool
    def __init__(self, warnings: _Optional[_Iterable[_Union[GroupWarning, _Mapping]]] = ..., snapshot_version: _Optional[str] = ..., degraded: _Optional[bool] = ...) -> None: ...

class DebunkEvent(_message.Message):
    __slots__ = ("user_id", "debunk_id", "surface", "event", "ts", "rumor_id", "experiment", "arm", "event_id", "update")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DEBUNK_ID_FIELD_NUMBER: _ClassVar[int]
    SURFACE_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    TS_FIELD_NUMBER: _ClassVar[int]
    RUMOR_ID_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    debunk_id: str
    surface: Surface
    event: EventType
    ts: _timestamp_pb2.Timestamp
    rumor_id: str
    experiment: str
    arm: str
    event_id: str
    update: bool
    def __init__(self, user_id: _Optional[str] = ..., debunk_id: _Optional[str] = ..., surface: _Optional[_Union[Surface, str]] = ..., event: _Optional[_Union[EventType, str]] = ..., ts: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rumor_id: _Optional[str] = ..., experiment: _Optional[str] = ..., arm: _Optional[str] = ..., event_id: _Optional[str] = ..., update: _Optional[bool] = ...) -> None: ...

class RecordEventsRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[DebunkEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[DebunkEvent, _Mapping]]] = ...) -> None: ...

class RecordEventsResponse(_message.Message):
    __slots__ = ("accepted",)
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    def __init__(self, accepted: _Optional[int] = ...) -> None: ...

class LiveExposure(_message.Message):
    __slots__ = ("user_id", "item_id", "ts", "surface", "action")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    TS_FIELD_NUMBER: _ClassVar[int]
    SURFACE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    item_id: str
    ts: _timestamp_pb2.Timestamp
    surface: Surface
    action: Action
    def __init__(self, user_id: _Optional[str] = ..., item_id: _Optional[str] = ..., ts: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., surface: _Optional[_Union[Surface, str]] = ..., action: _Optional[_Union[Action, str]] = ...) -> None: ...

class RecordExposuresRequest(_message.Message):
    __slots__ = ("events", "batch_id")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[LiveExposure]
    batch_id: str
    def __init__(self, events: _Optional[_Iterable[_Union[LiveExposure, _Mapping]]] = ..., batch_id: _Optional[str] = ...) -> None: ...

class RecordExposuresResponse(_message.Message):
    __slots__ = ("accepted", "stored", "untagged", "rejected", "duplicate", "covered")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    UNTAGGED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    COVERED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    stored: int
    untagged: int
    rejected: int
    duplicate: bool
    covered: int
    def __init__(self, accepted: _Optional[int] = ..., stored: _Optional[int] = ..., untagged: _Optional[int] = ..., rejected: _Optional[int] = ..., duplicate: _Optional[bool] = ..., covered: _Optional[int] = ...) -> None: ...

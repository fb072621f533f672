from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PresenceUpdateKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRESENCE_UPDATE_KIND_UNSPECIFIED: _ClassVar[PresenceUpdateKind]
    PRESENCE_UPDATE_KIND_SNAPSHOT: _ClassVar[PresenceUpdateKind]
    PRESENCE_UPDATE_KIND_JOIN: _ClassVar[PresenceUpdateKind]

class LeaveReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LEAVE_REASON_UNSPECIFIED: _ClassVar[LeaveReason]
    LEAVE_REASON_LEFT: _ClassVar[LeaveReason]
    LEAVE_REASON_DISCONNECTED: _ClassVar[LeaveReason]
    LEAVE_REASON_HEARTBEAT_TIMEOUT: _ClassVar[LeaveReason]
    LEAVE_REASON_NODE_LOST: _ClassVar[LeaveReason]
    LEAVE_REASON_REMOVED: _ClassVar[LeaveReason]
PRESENCE_UPDATE_KIND_UNSPECIFIED: PresenceUpdateKind
PRESENCE_UPDATE_KIND_SNAPSHOT: PresenceUpdateKind
PRESENCE_UPDATE_KIND_JOIN: PresenceUpdateKind
LEAVE_REASON_UNSPECIFIED: LeaveReason
LEAVE_REASON_LEFT: LeaveReason
LEAVE_REASON_DISCONNECTED: LeaveReason
LEAVE_REASON_HEARTBEAT_TIMEOUT: LeaveReason
LEAVE_REASON_NODE_LOST: LeaveReason
LEAVE_REASON_REMOVED: LeaveReason

class Member(_message.Message):
    __slots__ = ("user_id", "session_id", "node_id", "joined_at_us", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    JOINED_AT_US_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    session_id: str
    node_id: str
    joined_at_us: int
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, user_id: _Optional[str] = ..., session_id: _Optional[str] = ..., node_id: _Optional[str] = ..., joined_at_us: _Optional[int] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class PresenceUpdate(_message.Message):
    __slots__ = ("room", "members", "kind", "next_page_token")
    ROOM_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    room: str
    members: _containers.RepeatedCompositeFieldContainer[Member]
    kind: PresenceUpdateKind
    next_page_token: str
    def __init__(self, room: _Optional[str] = ..., members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ..., kind: _Optional[_Union[PresenceUpdateKind, str]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PresenceLeave(_message.Message):
    __slots__ = ("room", "user_id", "session_id", "reason")
    ROOM_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    room: str
    user_id: str
    session_id: str
    reason: LeaveReason
    def __init__(self, room: _Optional[str] = ..., user_id: _Optional[str] = ..., session_id: _Optional[str] = ..., reason: _Optional[_Union[LeaveReason, str]] = ...) -> None: ...

class PresenceRequest(_message.Message):
    __slots__ = ("room", "page_size", "page_token")
    ROOM_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    room: str
    page_size: int
    page_token: str
    def __init__(self, room: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

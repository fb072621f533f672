from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_CODE_UNSPECIFIED: _ClassVar[ErrorCode]
    ERROR_CODE_PROTOCOL_ERROR: _ClassVar[ErrorCode]
    ERROR_CODE_TEXT_FRAME: _ClassVar[ErrorCode]
    ERROR_CODE_FRAME_TOO_LARGE: _ClassVar[ErrorCode]
    ERROR_CODE_UNSUPPORTED_VERSION: _ClassVar[ErrorCode]
    ERROR_CODE_INVALID_ROOM: _ClassVar[ErrorCode]
    ERROR_CODE_NOT_IN_ROOM: _ClassVar[ErrorCode]
    ERROR_CODE_ROOM_LIMIT: _ClassVar[ErrorCode]
    ERROR_CODE_PAYLOAD_TOO_LARGE: _ClassVar[ErrorCode]
    ERROR_CODE_RATE_LIMITED: _ClassVar[ErrorCode]
    ERROR_CODE_UNAUTHENTICATED: _ClassVar[ErrorCode]
    ERROR_CODE_TOKEN_EXPIRED: _ClassVar[ErrorCode]
    ERROR_CODE_TOKEN_INVALID: _ClassVar[ErrorCode]
    ERROR_CODE_FORBIDDEN: _ClassVar[ErrorCode]
    ERROR_CODE_POLICY_BLOCKED: _ClassVar[ErrorCode]
    ERROR_CODE_POLICY_TRAP: _ClassVar[ErrorCode]
    ERROR_CODE_POLICY_TIMEOUT: _ClassVar[ErrorCode]
    ERROR_CODE_POLICY_MEMORY: _ClassVar[ErrorCode]
    ERROR_CODE_POLICY_ABI: _ClassVar[ErrorCode]
    ERROR_CODE_POLICY_LOAD: _ClassVar[ErrorCode]
    ERROR_CODE_SLOW_CONSUMER: _ClassVar[ErrorCode]
    ERROR_CODE_SERVER_DRAINING: _ClassVar[ErrorCode]
    ERROR_CODE_DIGEST_MISMATCH: _ClassVar[ErrorCode]
    ERROR_CODE_CATALOG_STALE: _ClassVar[ErrorCode]
    ERROR_CODE_NOT_FOUND: _ClassVar[ErrorCode]
    ERROR_CODE_INTERNAL: _ClassVar[ErrorCode]
    ERROR_CODE_HISTORY_UNAVAILABLE: _ClassVar[ErrorCode]
ERROR_CODE_UNSPECIFIED: ErrorCode
ERROR_CODE_PROTOCOL_ERROR: ErrorCode
ERROR_CODE_TEXT_FRAME: ErrorCode
ERROR_CODE_FRAME_TOO_LARGE: ErrorCode
ERROR_CODE_UNSUPPORTED_VERSION: ErrorCode
ERROR_CODE_INVALID_ROOM: ErrorCode
ERROR_CODE_NOT_IN_ROOM: ErrorCode
ERROR_CODE_ROOM_LIMIT: ErrorCode
ERROR_CODE_PAYLOAD_TOO_LARGE: ErrorCode
ERROR_CODE_RATE_LIMITED: ErrorCode
ERROR_CODE_UNAUTHENTICATED: ErrorCode
ERROR_CODE_TOKEN_EXPIRED: ErrorCode
ERROR_CODE_TOKEN_INVALID: ErrorCode
ERROR_CODE_FORBIDDEN: ErrorCode
ERROR_CODE_POLICY_BLOCKED: ErrorCode
ERROR_CODE_POLICY_TRAP: ErrorCode
ERROR_CODE_POLICY_TIMEOUT: ErrorCode
ERROR_CODE_POLICY_MEMORY: ErrorCode
ERROR_CODE_POLICY_ABI: ErrorCode
ERROR_CODE_POLICY_LOAD: ErrorCode
ERROR_CODE_SLOW_CONSUMER: ErrorCode
ERROR_CODE_SERVER_DRAINING: ErrorCode
ERROR_CODE_DIGEST_MISMATCH: ErrorCode
ERROR_CODE_CATALOG_STALE: ErrorCode
ERROR_CODE_NOT_FOUND: ErrorCode
ERROR_CODE_INTERNAL: ErrorCode
ERROR_CODE_HISTORY_UNAVAILABLE: ErrorCode

class Join(_message.Message):
    __slots__ = ("room", "metadata", "since")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ROOM_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    room: str
    metadata: _containers.ScalarMap[str, str]
    since: Position
    def __init__(self, room: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., since: _Optional[_Union[Position, _Mapping]] = ...) -> None: ...

class Position(_message.Message):
    __slots__ = ("offset", "epoch")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    offset: int
    epoch: str
    def __init__(self, offset: _Optional[int] = ..., epoch: _Optional[str] = ...) -> None: ...

class Leave(_message.Message):
    __slots__ = ("room",)
    ROOM_FIELD_NUMBER: _ClassVar[int]
    room: str
    def __init__(self, room: _Optional[str] = ...) -> None: ...

class Publish(_message.Message):
    __slots__ = ("room", "payload", "content_type")
    ROOM_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    room: str
    payload: bytes
    content_type: str
    def __init__(self, room: _Optional[str] = ..., payload: _Optional[bytes] = ..., content_type: _Optional[str] = ...) -> None: ...

class Message(_message.Message):
    __slots__ = ("room", "payload", "content_type", "offset", "epoch")
    ROOM_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    room: str
    payload: bytes
    content_type: str
    offset: int
    epoch: str
    def __init__(self, room: _Optional[str] = ..., payload: _Optional[bytes] = ..., content_type: _Optional[str] = ..., offset: _Optional[int] = ..., epoch: _Optional[str] = ...) -> None: ...

class Recovery(_message.Message):
    __slots__ = ("room", "recovered", "truncated", "count", "position")
    ROOM_FIELD_NUMBER: _ClassVar[int]
    RECOVERED_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    room: str
    recovered: bool
    truncated: bool
    count: int
    position: Position
    def __init__(self, room: _Optional[str] = ..., recovered: _Optional[bool] = ..., truncated: _Optional[bool] = ..., count: _Optional[int] = ..., position: _Optional[_Union[Position, _Mapping]] = ...) -> None: ...

class HistoryRequest(_message.Message):
    __slots__ = ("room", "last", "since")
    ROOM_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    room: str
    last: int
    since: Position
    def __init__(self, room: _Optional[str] = ..., last: _Optional[int] = ..., since: _Optional[_Union[Position, _Mapping]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Ping(_message.Message):
    __slots__ = ("nonce",)
    NONCE_FIELD_NUMBER: _ClassVar[int]
    nonce: int
    def __init__(self, nonce: _Optional[int] = ...) -> None: ...

class Pong(_message.Message):
    __slots__ = ("nonce",)
    NONCE_FIELD_NUMBER: _ClassVar[int]
    nonce: int
    def __init__(self, nonce: _Optional[int] = ...) -> None: ...

class Refresh(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: str
    def __init__(self, token: _Optional[str] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("acked_message_id",)
    ACKED_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    acked_message_id: str
    def __init__(self, acked_message_id: _Optional[str] = ...) -> None: ...

class Limits(_message.Message):
    __slots__ = ("max_frame_bytes", "max_payload_bytes", "max_rooms", "publish_rate_per_sec", "publish_burst")
    MAX_FRAME_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_PAYLOAD_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_ROOMS_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_RATE_PER_SEC_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_BURST_FIELD_NUMBER: _ClassVar[int]
    max_frame_bytes: int
    max_payload_bytes: int
    max_rooms: int
    publish_rate_per_sec: int
    publish_burst: int
    def __init__(self, max_frame_bytes: _Optional[int] = ..., max_payload_bytes: _Optional[int] = ..., max_rooms: _Optional[int] = ..., publish_rate_per_sec: _Optional[int] = ..., publish_burst: _Optional[int] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("session_id", "server_version", "heartbeat_interval_ms", "limits", "tenant_id", "user_id", "node_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    server_version: str
    heartbeat_interval_ms: int
    limits: Limits
    tenant_id: str
    user_id: str
    node_id: str
    def __init__(self, session_id: _Optional[str] = ..., server_version: _Optional[str] = ..., heartbeat_interval_ms: _Optional[int] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., tenant_id: _Optional[str] = ..., user_id: _Optional[str] = ..., node_id: _Optional[str] = ...) -> None: ...

class Drain(_message.Message):
    __slots__ = ("reason", "reconnect_after_ms")
    REASON_FIELD_NUMBER: _ClassVar[int]
    RECONNECT_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    reason: str
    reconnect_after_ms: int
    def __init__(self, reason: _Optional[str] = ..., reconnect_after_ms: _Optional[int] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message", "correlation_id", "retry_after_ms")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    code: ErrorCode
    message: str
    correlation_id: str
    retry_after_ms: int
    def __init__(self, code: _Optional[_Union[ErrorCode, str]] = ..., message: _Optional[str] = ..., correlation_id: _Optional[str] = ..., retry_after_ms: _Optional[int] = ...) -> None: ...

from arqon.v1 import governance_pb2 as _governance_pb2
from arqon.v1 import presence_pb2 as _presence_pb2
from arqon.v1 import session_pb2 as _session_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Envelope(_message.Message):
    __slots__ = ("header", "join", "leave", "publish", "heartbeat", "ping", "pong", "refresh", "presence_request", "ack", "history_request", "welcome", "message", "presence_update", "presence_leave", "drain", "error", "recovery", "history_page", "batch", "telemetry", "proposal", "alert", "approval", "rejection", "enforce", "catalog_update")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    JOIN_FIELD_NUMBER: _ClassVar[int]
    LEAVE_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    PONG_FIELD_NUMBER: _ClassVar[int]
    REFRESH_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_REQUEST_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    HISTORY_REQUEST_FIELD_NUMBER: _ClassVar[int]
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_UPDATE_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_LEAVE_FIELD_NUMBER: _ClassVar[int]
    DRAIN_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RECOVERY_FIELD_NUMBER: _ClassVar[int]
    HISTORY_PAGE_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    TELEMETRY_FIELD_NUMBER: _ClassVar[int]
    PROPOSAL_FIELD_NUMBER: _ClassVar[int]
    ALERT_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_FIELD_NUMBER: _ClassVar[int]
    REJECTION_FIELD_NUMBER: _ClassVar[int]
    ENFORCE_FIELD_NUMBER: _ClassVar[int]
    CATALOG_UPDATE_FIELD_NUMBER: _ClassVar[int]
    header: Header
    join: _session_pb2.Join
    leave: _session_pb2.Leave
    publish: _session_pb2.Publish
    heartbeat: _session_pb2.Heartbeat
    ping: _session_pb2.Ping
    pong: _session_pb2.Pong
    refresh: _session_pb2.Refresh
    presence_request: _presence_pb2.PresenceRequest
    ack: _session_pb2.Ack
    history_request: _session_pb2.HistoryRequest
    welcome: _session_pb2.Welcome
    message: _session_pb2.Message
    presence_update: _presence_pb2.PresenceUpdate
    presence_leave: _presence_pb2.PresenceLeave
    drain: _session_pb2.Drain
    error: _session_pb2.Error
    recovery: _session_pb2.Recovery
    history_page: HistoryPage
    batch: Batch
    telemetry: _governance_pb2.Telemetry
    proposal: _governance_pb2.Proposal
    alert: _governance_pb2.Alert
    approval: _governance_pb2.Approval
    rejection: _governance_pb2.Rejection
    enforce: _governance_pb2.Enforce
    catalog_update: _governance_pb2.CatalogUpdate
    def __init__(self, header: _Optional[_Union[Header, _Mapping]] = ..., join: _Optional[_Union[_session_pb2.Join, _Mapping]] = ..., leave: _Optional[_Union[_session_pb2.Leave, _Mapping]] = ..., publish: _Optional[_Union[_session_pb2.Publish, _Mapping]] = ..., heartbeat: _Optional[_Union[_session_pb2.Heartbeat, _Mapping]] = ..., ping: _Optional[_Union[_session_pb2.Ping, _Mapping]] = ..., pong: _Optional[_Union[_session_pb2.Pong, _Mapping]] = ..., refresh: _Optional[_Union[_session_pb2.Refresh, _Mapping]] = ..., presence_request: _Optional[_Union[_presence_pb2.PresenceRequest, _Mapping]] = ..., ack: _Optional[_Union[_session_pb2.Ack, _Mapping]] = ..., history_request: _Optional[_Union[_session_pb2.HistoryRequest, _Mapping]] = ..., welcome: _Optional[_Union[_session_pb2.Welcome, _Mapping]] = ..., message: _Optional[_Union[_session_pb2.Message, _Mapping]] = ..., presence_update: _Optional[_Union[_presence_pb2.PresenceUpdate, _Mapping]] = ..., presence_leave: _Optional[_Union[_presence_pb2.PresenceLeave, _Mapping]] = ..., drain: _Optional[_Union[_session_pb2.Drain, _Mapping]] = ..., error: _Optional[_Union[_session_pb2.Error, _Mapping]] = ..., recovery: _Optional[_Union[_session_pb2.Recovery, _Mapping]] = ..., history_page: _Optional[_Union[HistoryPage, _Mapping]] = ..., batch: _Optional[_Union[Batch, _Mapping]] = ..., telemetry: _Optional[_Union[_governance_pb2.Telemetry, _Mapping]] = ..., proposal: _Optional[_Union[_governance_pb2.Proposal, _Mapping]] = ..., alert: _Optional[_Union[_governance_pb2.Alert, _Mapping]] = ..., approval: _Optional[_Union[_governance_pb2.Approval, _Mapping]] = ..., rejection: _Optional[_Union[_governance_pb2.Rejection, _Mapping]] = ..., enforce: _Optional[_Union[_governance_pb2.Enforce, _Mapping]] = ..., catalog_update: _Optional[_Union[_governance_pb2.CatalogUpdate, _Mapping]] = ...) -> None: ...

class Header(_message.Message):
    __slots__ = ("protocol_version", "message_id", "correlation_id", "twist_id", "timestamp_us", "traceparent", "tracestate", "tenant_id", "sender_user_id", "sender_session_id")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    TWIST_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_US_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    TRACESTATE_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_USER_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    message_id: str
    correlation_id: str
    twist_id: str
    timestamp_us: int
    traceparent: str
    tracestate: str
    tenant_id: str
    sender_user_id: str
    sender_session_id: str
    def __init__(self, protocol_version: _Optional[int] = ..., message_id: _Optional[str] = ..., correlation_id: _Optional[str] = ..., twist_id: _Optional[str] = ..., timestamp_us: _Optional[int] = ..., traceparent: _Optional[str] = ..., tracestate: _Optional[str] = ..., tenant_id: _Optional[str] = ..., sender_user_id: _Optional[str] = ..., sender_session_id: _Optional[str] = ...) -> None: ...

class Batch(_message.Message):
    __slots__ = ("envelopes",)
    ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    envelopes: _containers.RepeatedCompositeFieldContainer[Envelope]
    def __init__(self, envelopes: _Optional[_Iterable[_Union[Envelope, _Mapping]]] = ...) -> None: ...

class HistoryPage(_message.Message):
    __slots__ = ("room", "messages", "position", "truncated")
    ROOM_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    room: str
    messages: _containers.RepeatedCompositeFieldContainer[Envelope]
    position: _session_pb2.Position
    truncated: bool
    def __init__(self, room: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[Envelope, _Mapping]]] = ..., position: _Optional[_Union[_session_pb2.Position, _Mapping]] = ..., truncated: _Optional[bool] = ...) -> None: ...

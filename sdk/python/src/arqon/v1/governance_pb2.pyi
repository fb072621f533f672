from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AlertSeverity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_SEVERITY_UNSPECIFIED: _ClassVar[AlertSeverity]
    ALERT_SEVERITY_INFO: _ClassVar[AlertSeverity]
    ALERT_SEVERITY_WARNING: _ClassVar[AlertSeverity]
    ALERT_SEVERITY_ERROR: _ClassVar[AlertSeverity]
    ALERT_SEVERITY_CRITICAL: _ClassVar[AlertSeverity]
ALERT_SEVERITY_UNSPECIFIED: AlertSeverity
ALERT_SEVERITY_INFO: AlertSeverity
ALERT_SEVERITY_WARNING: AlertSeverity
ALERT_SEVERITY_ERROR: AlertSeverity
ALERT_SEVERITY_CRITICAL: AlertSeverity

class Telemetry(_message.Message):
    __slots__ = ("timestamp_us", "node_id", "metrics")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    TIMESTAMP_US_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    timestamp_us: int
    node_id: str
    metrics: _containers.ScalarMap[str, float]
    def __init__(self, timestamp_us: _Optional[int] = ..., node_id: _Optional[str] = ..., metrics: _Optional[_Mapping[str, float]] = ...) -> None: ...

class Proposal(_message.Message):
    __slots__ = ("id", "timestamp_us", "variant_id", "params", "reason", "confidence")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_US_FIELD_NUMBER: _ClassVar[int]
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    id: str
    timestamp_us: int
    variant_id: int
    params: _containers.ScalarMap[str, float]
    reason: str
    confidence: float
    def __init__(self, id: _Optional[str] = ..., timestamp_us: _Optional[int] = ..., variant_id: _Optional[int] = ..., params: _Optional[_Mapping[str, float]] = ..., reason: _Optional[str] = ..., confidence: _Optional[float] = ...) -> None: ...

class Alert(_message.Message):
    __slots__ = ("timestamp_us", "severity", "message", "context")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TIMESTAMP_US_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    timestamp_us: int
    severity: AlertSeverity
    message: str
    context: _containers.ScalarMap[str, str]
    def __init__(self, timestamp_us: _Optional[int] = ..., severity: _Optional[_Union[AlertSeverity, str]] = ..., message: _Optional[str] = ..., context: _Optional[_Mapping[str, str]] = ...) -> None: ...

class RolloutConfig(_message.Message):
    __slots__ = ("initial_percent", "increment_per_minute", "max_percent")
    INITIAL_PERCENT_FIELD_NUMBER: _ClassVar[int]
    INCREMENT_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    MAX_PERCENT_FIELD_NUMBER: _ClassVar[int]
    initial_percent: float
    increment_per_minute: float
    max_percent: float
    def __init__(self, initial_percent: _Optional[float] = ..., increment_per_minute: _Optional[float] = ..., max_percent: _Optional[float] = ...) -> None: ...

class Approval(_message.Message):
    __slots__ = ("proposal_id", "proposal_digest", "rollout")
    PROPOSAL_ID_FIELD_NUMBER: _ClassVar[int]
    PROPOSAL_DIGEST_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    proposal_id: str
    proposal_digest: str
    rollout: RolloutConfig
    def __init__(self, proposal_id: _Optional[str] = ..., proposal_digest: _Optional[str] = ..., rollout: _Optional[_Union[RolloutConfig, _Mapping]] = ...) -> None: ...

class Rejection(_message.Message):
    __slots__ = ("proposal_id", "reason")
    PROPOSAL_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    proposal_id: str
    reason: str
    def __init__(self, proposal_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class SetVariant(_message.Message):
    __slots__ = ("variant_id",)
    VARIANT_ID_FIELD_NUMBER: _ClassVar[int]
    variant_id: int
    def __init__(self, variant_id: _Optional[int] = ...) -> None: ...

class SetParams(_message.Message):
    __slots__ = ("params",)
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    params: _containers.ScalarMap[str, float]
    def __init__(self, params: _Optional[_Mapping[str, float]] = ...) -> None: ...

class EmergencyStop(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PauseAdaptation(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResumeAdaptation(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Enforce(_message.Message):
    __slots__ = ("reason", "set_variant", "set_params", "emergency_stop", "pause_adaptation", "resume_adaptation")
    REASON_FIELD_NUMBER: _ClassVar[int]
    SET_VARIANT_FIELD_NUMBER: _ClassVar[int]
    SET_PARAMS_FIELD_NUMBER: _ClassVar[int]
    EMERGENCY_STOP_FIELD_NUMBER: _ClassVar[int]
    PAUSE_ADAPTATION_FIELD_NUMBER: _ClassVar[int]
    RESUME_ADAPTATION_FIELD_NUMBER: _ClassVar[int]
    reason: str
    set_variant: SetVariant
    set_params: SetParams
    emergency_stop: EmergencyStop
    pause_adaptation: PauseAdaptation
    resume_adaptation: ResumeAdaptation
    def __init__(self, reason: _Optional[str] = ..., set_variant: _Optional[_Union[SetVariant, _Mapping]] = ..., set_params: _Optional[_Union[SetParams, _Mapping]] = ..., emergency_stop: _Optional[_Union[EmergencyStop, _Mapping]] = ..., pause_adaptation: _Optional[_Union[PauseAdaptation, _Mapping]] = ..., resume_adaptation: _Optional[_Union[ResumeAdaptation, _Mapping]] = ...) -> None: ...

class CatalogUpdate(_message.Message):
    __slots__ = ("version", "source_uri")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    version: int
    source_uri: str
    def __init__(self, version: _Optional[int] = ..., source_uri: _Optional[str] = ...) -> None: ...

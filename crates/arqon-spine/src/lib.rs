//! The Spine: tenant-scoped pub/sub over NATS or an embedded in-process bus.

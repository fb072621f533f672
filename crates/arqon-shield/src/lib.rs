//! The Shield: WebSocket edge that authenticates, polices and routes envelopes, driving the Session machine.

//! Test harness: real nats-server processes and clusters, a JWT issuer with JWKS, and a WebSocket test client.

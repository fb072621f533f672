//! Test harness: real nats-server processes and clusters, a delaying TCP proxy, a round-robin TCP load balancer, a JWT issuer with JWKS, and a WebSocket test client.

mod balancer;
mod error;
mod jwt;
mod nats;
mod otlp;
mod ports;
mod proxy;
mod ws;

pub use balancer::Balancer;
pub use error::TestkitError;
pub use jwt::{DEFAULT_SEED, JwtIssuer, unix_now};
pub use nats::{DEFAULT_NATS_SERVER, NatsCluster, NatsOptions, NatsServer};
pub use otlp::{OtlpReceiver, ReceivedSpan};
pub use ports::free_port;
pub use proxy::DelayProxy;
pub use ws::{DEFAULT_RECV_TIMEOUT, Incoming, TokenCarrier, WsClient, WsError};

//! Free TCP ports on the loopback interface for the processes a test starts.

use crate::error::TestkitError;

/// A TCP port on 127.0.0.1 that was free a moment ago: bound to port 0, read, released.
pub fn free_port() -> Result<u16, TestkitError> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

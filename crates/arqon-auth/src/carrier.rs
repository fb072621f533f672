//! Where a token travels on the upgrade request: `Authorization: Bearer` or the WebSocket subprotocol.

use crate::AuthError;

/// The protocol a browser offers, and that the server echoes in `Sec-WebSocket-Protocol`.
pub const SUBPROTOCOL: &str = "arqon.v1";
/// The protocol a client offers to take batch frames (`specs/protocol.md`, "Batch frames"): arqon.v1
/// whose server may send several envelopes in one frame. The server echoes it when it will; it
/// also stands for [`SUBPROTOCOL`] beside a `bearer.` entry.
pub const SUBPROTOCOL_BATCH: &str = arqon_proto::batch::SUBPROTOCOL;
/// The prefix of the subprotocol entry that carries the token: `bearer.<token>`.
pub const SUBPROTOCOL_TOKEN_PREFIX: &str = "bearer.";

/// Which carrier a token came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carrier {
    /// `Authorization: Bearer <token>`.
    AuthorizationHeader,
    /// `Sec-WebSocket-Protocol: arqon.v1, bearer.<token>`; the response must carry `arqon.v1`.
    Subprotocol,
}

/// A token found on a request. `Debug` does not show the token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PresentedToken<'a> {
    /// The token text.
    pub token: &'a str,
    /// Where it was found.
    pub carrier: Carrier,
}

impl std::fmt::Debug for PresentedToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresentedToken")
            .field("token", &"<redacted>")
            .field("carrier", &self.carrier)
            .finish()
    }
}

/// Finds the token on an upgrade request, given the `Authorization` and `Sec-WebSocket-Protocol`
/// header values (`None` when absent). The header wins when both are present.
pub fn extract_token<'a>(
    authorization: Option<&'a str>,
    websocket_protocol: Option<&'a str>,
) -> Result<PresentedToken<'a>, AuthError> {
    if let Some(value) = authorization {
        let value = value.trim();
        let (scheme, token) = value.split_once(' ').ok_or(AuthError::Malformed {
            what: "authorization header is not `Bearer <token>`",
        })?;
        let token = token.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
            return Err(AuthError::Malformed {
                what: "authorization header is not `Bearer <token>`",
            });
        }
        return Ok(PresentedToken {
            token,
            carrier: Carrier::AuthorizationHeader,
        });
    }
    let Some(protocols) = websocket_protocol else {
        return Err(AuthError::Missing);
    };
    let mut offers_arqon = false;
    let mut token = None;
    for entry in protocols.split(',').map(str::trim) {
        if entry == SUBPROTOCOL || entry == SUBPROTOCOL_BATCH {
            offers_arqon = true;
        } else if let Some(rest) = entry.strip_prefix(SUBPROTOCOL_TOKEN_PREFIX) {
            token = Some(rest);
        }
    }
    match token {
        None => Err(AuthError::Missing),
        Some(_) if !offers_arqon => Err(AuthError::Malformed {
            what: "bearer subprotocol offered without arqon.v1",
        }),
        Some("") => Err(AuthError::Malformed {
            what: "empty bearer subprotocol",
        }),
        Some(token) => Ok(PresentedToken {
            token,
            carrier: Carrier::Subprotocol,
        }),
    }
}

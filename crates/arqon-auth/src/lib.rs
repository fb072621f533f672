//! RS256 JWT verification against a JWKS, with time as an input; and dev token minting.

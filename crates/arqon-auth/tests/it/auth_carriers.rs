//! Token carriers: `Authorization: Bearer` and the `Sec-WebSocket-Protocol` browser carrier.

use arqon_auth::{AuthError, Carrier, SUBPROTOCOL, extract_token};

fn check(
    authorization: Option<&str>,
    protocol: Option<&str>,
    expect: Result<(&str, Carrier), &str>,
) {
    let got = extract_token(authorization, protocol)
        .map(|presented| (presented.token, presented.carrier))
        .map_err(|error| error.reason());
    assert_eq!(got, expect, "{authorization:?} {protocol:?}");
}

// AC-AUTH-13
#[test]
fn ac_auth_13_bearer_header_and_subprotocol_carriers() {
    use Carrier::{AuthorizationHeader as Header, Subprotocol as Proto};
    check(
        Some("Bearer abc.def.ghi"),
        None,
        Ok(("abc.def.ghi", Header)),
    );
    check(
        Some("bearer  abc.def.ghi "),
        None,
        Ok(("abc.def.ghi", Header)),
    );
    check(Some("Basic dXNlcjpwdw=="), None, Err("malformed"));
    check(Some("Bearer"), None, Err("malformed"));
    check(Some("Bearer "), None, Err("malformed"));
    check(
        None,
        Some("arqon.v1, bearer.abc.def.ghi"),
        Ok(("abc.def.ghi", Proto)),
    );
    // A browser that takes batch frames offers `arqon.v1.batch` instead (AC-PROTOCOL-19).
    check(
        None,
        Some("arqon.v1.batch, bearer.abc.def.ghi"),
        Ok(("abc.def.ghi", Proto)),
    );
    check(
        None,
        Some("bearer.abc.def.ghi,arqon.v1"),
        Ok(("abc.def.ghi", Proto)),
    );
    check(None, Some("bearer.abc.def.ghi"), Err("malformed"));
    check(None, Some("arqon.v1, bearer."), Err("malformed"));
    check(None, Some("arqon.v1"), Err("missing"));
    check(None, None, Err("missing"));
    // The header wins when both carriers are present.
    check(
        Some("Bearer h.h.h"),
        Some("arqon.v1, bearer.p.p.p"),
        Ok(("h.h.h", Header)),
    );
    assert_eq!(SUBPROTOCOL, "arqon.v1");
}

// AC-AUTH-14
#[test]
fn ac_auth_14_presented_token_debug_is_redacted() {
    let presented = extract_token(Some("Bearer secret-token-text"), None).expect("token");
    assert!(!format!("{presented:?}").contains("secret-token-text"));
    assert_eq!(
        extract_token(None, None).expect_err("missing"),
        AuthError::Missing
    );
}

//! The admin console: static HTML, CSS and JavaScript embedded in the binary and served at `/admin/`.
//!
//! `specs/console.md`. The page holds no data of its own: it asks for an admin token on a login form,
//! keeps it in `sessionStorage`, and reads the node's admin API (`/admin/v1/…`, `Authorization:
//! Bearer`) and its `/healthz`, `/readyz` and `/metrics` with `fetch`, every few seconds. Every
//! response carries [`CSP`]; the assets contain no inline script or style. The admin API does the
//! access checks (token, role, tenant); these files are public, like any login page.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// The Content-Security-Policy of every console response: same-origin scripts, styles and fetches
/// only, no plugins, no framing, no `<base>`.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; \
                       frame-ancestors 'none'; base-uri 'none'";

/// Where the console is mounted.
pub const MOUNT: &str = "/admin";

/// One embedded file: its path under [`MOUNT`], its media type and its bytes.
#[derive(Clone, Copy, Debug)]
pub struct Asset {
    /// The path under the mount (`/` is the page).
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// The file.
    pub body: &'static str,
}

const fn asset(path: &'static str, content_type: &'static str, body: &'static str) -> Asset {
    Asset {
        path,
        content_type,
        body,
    }
}

/// Every file the console serves.
pub const ASSETS: [Asset; 4] = [
    asset(
        "/",
        "text/html; charset=utf-8",
        include_str!("../assets/index.html"),
    ),
    asset(
        "/console.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/console.js"),
    ),
    asset(
        "/console.css",
        "text/css; charset=utf-8",
        include_str!("../assets/console.css"),
    ),
    asset(
        "/favicon.svg",
        "image/svg+xml",
        include_str!("../assets/favicon.svg"),
    ),
];

/// The headers every console response carries.
fn hardened(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-cache"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn serve(asset: Asset) -> Response {
    hardened(([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response())
}

/// The console's routes: `/admin` (a redirect to `/admin/`), the page and its assets. Merge it
/// into a node's router beside the admin API; it needs no state and no token (the API it calls does).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut router = Router::new().route(
        MOUNT,
        get(|| async { hardened(Redirect::permanent("/admin/").into_response()) }),
    );
    for asset in ASSETS {
        router = router.route(
            &format!("{MOUNT}{}", asset.path),
            get(move || async move { serve(asset) }),
        );
    }
    router
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset(path: &str) -> &'static str {
        ASSETS
            .iter()
            .find(|a| a.path == path)
            .map(|a| a.body)
            .unwrap_or_default()
    }

    // AC-CONSOLE-1
    #[test]
    fn the_page_has_no_inline_script_style_or_handler() {
        let html = asset("/").to_ascii_lowercase();
        assert!(!html.is_empty());
        for (at, _) in html.match_indices("<script") {
            let tag = &html[at..at + html[at..].find('>').unwrap_or(0)];
            assert!(tag.contains(" src="), "inline script: {tag}");
        }
        assert!(!html.contains("<style"), "inline <style>");
        assert!(!html.contains(" style="), "inline style attribute");
        assert!(!html.contains("javascript:"), "javascript: URL");
        let handler = html
            .split(|c: char| c.is_whitespace())
            .find(|word| word.starts_with("on") && word.contains('='));
        assert_eq!(handler, None, "inline event handler");
    }

    // AC-CONSOLE-1
    #[test]
    fn the_script_builds_no_markup_from_strings() {
        let js = asset("/console.js");
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!js.contains(sink), "console.js uses {sink}");
        }
        // The token goes in a header, never into a URL.
        assert!(js.contains("Authorization"));
        assert!(!js.contains("?token"));
    }

    #[test]
    fn the_policy_is_the_strict_one() {
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "object-src 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(CSP.contains(directive), "{directive}");
        }
        assert!(!CSP.contains("unsafe"));
    }
}

//! Who may talk to the explorer: the `Host` check (DNS rebinding), the access
//! token (remote mode), the `Origin` check and the CSRF token (writes), and
//! the headers every reply carries (CSP, no sniffing, no framing).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::failure::Failure;

/// The header a write request carries the CSRF token in.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// The cookie the access token lives in after the first page load.
const TOKEN_COOKIE: &str = "resptree_token";

/// The page's Content-Security-Policy: scripts and styles only from the
/// server's own files (no inline script, no `eval`), requests only to itself,
/// nothing framed, no forms posted anywhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The security settings of one server run.
#[derive(Debug)]
pub(crate) struct Security {
    /// `Host` values a loopback server answers to; empty in remote mode (the
    /// token stands in for the check there).
    hosts: Vec<String>,
    access_token: Option<String>,
    csrf_token: String,
}

impl Security {
    /// Fresh tokens for a server bound to `addr`; `remote` asks for an access
    /// token on every request.
    pub(crate) fn new(addr: SocketAddr, remote: bool) -> Self {
        let port = addr.port();
        let hosts = if remote {
            Vec::new()
        } else {
            let mut hosts = vec![
                addr.to_string(),
                format!("127.0.0.1:{port}"),
                format!("localhost:{port}"),
                format!("[::1]:{port}"),
            ];
            hosts.dedup();
            hosts
        };
        Self {
            hosts,
            access_token: remote.then(random_token),
            csrf_token: random_token(),
        }
    }

    pub(crate) fn access_token(&self) -> Option<&str> {
        self.access_token.as_deref()
    }

    pub(crate) fn csrf_token(&self) -> &str {
        &self.csrf_token
    }

    /// Whether `host` (the `Host` header) names this server.
    fn host_allowed(&self, host: Option<&str>) -> bool {
        if self.hosts.is_empty() {
            return true;
        }
        host.is_some_and(|h| self.hosts.iter().any(|ok| ok.eq_ignore_ascii_case(h)))
    }

    /// Checks a request; `Ok(true)` when it carried the token in its query
    /// (the reply then sets the cookie).
    fn check(
        &self,
        method: &Method,
        uri_query: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<bool, Failure> {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        if !self.host_allowed(host) {
            return Err(Failure::new(
                StatusCode::FORBIDDEN,
                "bad_host",
                "the Host header does not name this server (DNS rebinding?)",
            ));
        }
        let mut token_in_query = false;
        if let Some(token) = &self.access_token {
            let presented = bearer(headers)
                .or_else(|| cookie(headers, TOKEN_COOKIE))
                .map(str::to_owned);
            let from_query = uri_query.and_then(|q| query_param(q, "token"));
            let ok = presented.as_deref().is_some_and(|p| same(p, token));
            let ok_query = from_query.as_deref().is_some_and(|p| same(p, token));
            if !ok && !ok_query {
                return Err(Failure::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "this server needs its access token (?token= in the URL it printed)",
                ));
            }
            token_in_query = ok_query && !ok;
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let same_origin = match (origin.to_str().ok(), host) {
                (Some(origin), Some(host)) => {
                    // https: the explorer behind a TLS-terminating proxy.
                    origin.eq_ignore_ascii_case(&format!("http://{host}"))
                        || origin.eq_ignore_ascii_case(&format!("https://{host}"))
                }
                _ => false,
            };
            if !same_origin {
                return Err(Failure::new(
                    StatusCode::FORBIDDEN,
                    "bad_origin",
                    "cross-origin requests are refused",
                ));
            }
        }
        let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            let csrf = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            if !csrf.is_some_and(|c| same(c, &self.csrf_token)) {
                return Err(Failure::new(
                    StatusCode::FORBIDDEN,
                    "csrf",
                    "a write needs this session's CSRF token in the X-CSRF-Token header",
                ));
            }
        }
        Ok(token_in_query)
    }
}

/// The middleware in front of every route.
pub(crate) async fn guard(
    State(security): State<Arc<Security>>,
    req: Request,
    next: Next,
) -> Response {
    let checked = security.check(req.method(), req.uri().query(), req.headers());
    let mut response = match checked {
        Ok(token_in_query) => {
            let mut response = next.run(req).await;
            if token_in_query {
                if let Some(token) = security.access_token() {
                    // HttpOnly: the page's script never needs it; Strict: no
                    // other site's request carries it.
                    let cookie =
                        format!("{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
                    if let Ok(value) = HeaderValue::from_str(&cookie) {
                        response.headers_mut().append(header::SET_COOKIE, value);
                    }
                }
            }
            response
        }
        Err(failure) => failure.into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// 64 hex digits from two v4 UUIDs (244 random bits from the OS).
fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Compares without stopping at the first difference, so the time taken says
/// nothing about how much of a guess was right.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A query parameter's value (tokens are hex, so no percent-decoding needed;
/// anything else simply fails the comparison).
fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn loopback_server_checks_host_origin_and_csrf() {
        let sec = Security::new("127.0.0.1:8123".parse().unwrap(), false);
        let get = |h: &[(&'static str, &str)]| sec.check(&Method::GET, None, &headers(h));
        assert!(get(&[("host", "127.0.0.1:8123")]).is_ok());
        assert!(get(&[("host", "LOCALHOST:8123")]).is_ok());
        assert_eq!(
            get(&[("host", "evil.example:8123")]).unwrap_err().status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(get(&[]).unwrap_err().status(), StatusCode::FORBIDDEN);
        let cross = [
            ("host", "127.0.0.1:8123"),
            ("origin", "http://evil.example"),
        ];
        assert_eq!(get(&cross).unwrap_err().status(), StatusCode::FORBIDDEN);
        let csrf = sec.csrf_token().to_owned();
        let post = |h: &[(&'static str, &str)]| sec.check(&Method::POST, None, &headers(h));
        assert!(post(&[("host", "127.0.0.1:8123")]).is_err());
        assert!(post(&[("host", "127.0.0.1:8123"), ("x-csrf-token", "nope")]).is_err());
        assert!(post(&[("host", "127.0.0.1:8123"), ("x-csrf-token", &csrf)]).is_ok());
    }

    #[test]
    fn remote_server_needs_the_token() {
        let sec = Security::new("0.0.0.0:8123".parse().unwrap(), true);
        let token = sec.access_token().unwrap().to_owned();
        let h = headers(&[("host", "box.lan:8123")]);
        assert_eq!(
            sec.check(&Method::GET, None, &h).unwrap_err().status(),
            StatusCode::UNAUTHORIZED
        );
        let q = format!("token={token}");
        assert!(sec.check(&Method::GET, Some(&q), &h).unwrap());
        let auth = format!("Bearer {token}");
        let h = headers(&[("host", "box.lan:8123"), ("authorization", &auth)]);
        assert!(!sec.check(&Method::GET, None, &h).unwrap());
        let c = format!("a=b; resptree_token={token}");
        let h = headers(&[("host", "box.lan:8123"), ("cookie", &c)]);
        assert!(!sec.check(&Method::GET, None, &h).unwrap());
    }

    #[test]
    fn tokens_are_long_and_differ() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(same(&a, &a.clone()));
        assert!(!same(&a, &b));
        assert!(!same(&a, &a[1..]));
    }
}

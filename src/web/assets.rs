//! The app's files, embedded in the binary (`assets/web/`): hand-written
//! HTML, CSS and JavaScript, no build step, nothing fetched from elsewhere.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::state::WebState;

/// The page body, shared by the server's page and the HTML export.
pub(crate) const BODY: &str = include_str!("../../assets/web/body.html");
/// The app: outline, node view, compare, graph, actions, keys.
pub(crate) const APP_JS: &str = include_str!("../../assets/web/app.js");
/// The safe Markdown renderer (builds DOM nodes; never parses HTML).
pub(crate) const MARKDOWN_JS: &str = include_str!("../../assets/web/markdown.js");
/// The styles.
pub(crate) const APP_CSS: &str = include_str!("../../assets/web/app.css");

/// `GET /`: the page, with this session's CSRF token in a `<meta>` tag (hex
/// digits: nothing to escape). Scripts and styles are separate files, so the
/// Content-Security-Policy needs no `unsafe-inline`.
pub(crate) async fn index(State(state): State<WebState>) -> impl IntoResponse {
    let page = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"resptree-csrf\" content=\"{csrf}\">\n<title>resptree</title>\n\
         <link rel=\"stylesheet\" href=\"/app.css\">\n\
         <script src=\"/markdown.js\" defer></script>\n<script src=\"/app.js\" defer></script>\n\
         </head>\n<body>\n{BODY}</body>\n</html>\n",
        csrf = state.security.csrf_token(),
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page)
}

pub(crate) async fn app_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
}

pub(crate) async fn markdown_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        MARKDOWN_JS,
    )
}

pub(crate) async fn app_css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The export inlines these files into `<script>` and `<style>` elements,
    /// which such a sequence would close early.
    #[test]
    fn assets_can_be_inlined() {
        for script in [APP_JS, MARKDOWN_JS] {
            assert!(!script.to_ascii_lowercase().contains("</script"));
            assert!(!script.contains("<!--"));
        }
        assert!(!APP_CSS.to_ascii_lowercase().contains("</style"));
    }

    /// The hooks the browser tests and docs/web.md name.
    #[test]
    fn body_has_the_documented_hooks() {
        for id in ["outline", "node-view", "search", "compare", "graph", "help"] {
            assert!(BODY.contains(&format!("id=\"{id}\"")), "#{id}");
        }
    }
}

//! `resptree export --format html`: the explorer as one self-contained,
//! read-only file.
//!
//! The styles and scripts are inlined, and the tree is embedded as JSON in a
//! `<script type="application/json">` element with every `<`, `>` and `&`
//! written as a `\u` escape, so no text in the tree can close the element or
//! start markup. A meta Content-Security-Policy forbids every network load.
//! The page reads the JSON with `JSON.parse` and shows it with the same app as
//! `resptree serve` (outline, node view, compare, graph, a client-side search).

use serde_json::json;

use super::assets::{APP_CSS, APP_JS, BODY, MARKDOWN_JS};
use crate::error::Result;
use crate::node::Node;
use crate::tree::ResponseTree;

/// The export's policy: inline scripts and styles (it has no other), nothing
/// from anywhere (`default-src 'none'`: no fetch, no images off the page).
const EXPORT_CSP: &str =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:";

/// The whole tree as one HTML document (every node with its full record, the
/// refs and the annotations).
///
/// # Errors
///
/// Store errors while reading the nodes' bodies, as for
/// [`ResponseTree::get`].
pub fn export_html(tree: &ResponseTree) -> Result<String> {
    let ids = tree.all_ids();
    let nodes = ids
        .iter()
        .map(|id| tree.get(id))
        .collect::<Result<Vec<Node>>>()?;
    let refs: Vec<_> = tree
        .list_refs()
        .into_iter()
        .map(|(name, target)| json!({"name": name, "target": target}))
        .collect();
    // Flattened: `{"node", "kind", …, "at"}`, as `Stamped` writes itself.
    let annotations: Vec<_> = tree
        .annotated(None)?
        .into_iter()
        .map(|(node, stamped)| {
            let mut value = json!(stamped);
            if let Some(map) = value.as_object_mut() {
                map.insert("node".to_owned(), json!(node));
            }
            value
        })
        .collect();
    let data = json!({
        "format": "resptree-html-export",
        "version": 1,
        "nodes": nodes,
        "refs": refs,
        "annotations": annotations,
    });
    // Nodes and refs are JSON values with string keys: writing them cannot
    // fail, so a failure is a bug.
    let data = serde_json::to_string(&data)
        .map_err(|_| crate::Error::Internal("the HTML export's data did not serialize"))?;
    Ok(format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{EXPORT_CSP}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>resptree export</title>\n<style>\n{APP_CSS}</style>\n</head>\n<body>\n{BODY}\
         <script type=\"application/json\" id=\"resptree-data\">{data}</script>\n\
         <script>\n{MARKDOWN_JS}</script>\n<script>\n{APP_JS}</script>\n</body>\n</html>\n",
        data = escape_for_script(&data),
    ))
}

/// JSON made safe inside a `<script>` element: `<`, `>` and `&` (and the two
/// line separators some parsers trip on) as `\u` escapes, which `JSON.parse`
/// reads back as the same characters. Only valid inside JSON strings — where
/// serde_json puts every such character of user text.
fn escape_for_script(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::NodeId;

    #[test]
    fn hostile_text_cannot_leave_the_data_block() {
        let tree = ResponseTree::in_memory();
        let evil = "</script><script>alert(1)</script><!-- & \u{2028}";
        tree.insert(Node::new(NodeId::local(), None).with_output_text(evil))
            .unwrap();
        let html = export_html(&tree).unwrap();
        let start = html.find("id=\"resptree-data\">").unwrap();
        let end = start + html[start..].find("</script>").unwrap();
        let block = &html[start + "id=\"resptree-data\">".len()..end];
        assert!(!block.contains('<') && !block.contains('>') && !block.contains('&'));
        let data: serde_json::Value = serde_json::from_str(block).unwrap();
        assert_eq!(data["nodes"][0]["output_text"], evil);
        assert!(no_remote_loads(&html));
    }

    /// Links in the scripts' comments and strings are fine; loading is not.
    fn no_remote_loads(html: &str) -> bool {
        !html.contains("src=\"http") && !html.contains("href=\"http")
    }
}

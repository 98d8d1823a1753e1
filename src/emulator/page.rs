//! List pages (`input_items`, conversation items): `limit`, `order`, `after`, `before`.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::failure::Failure;

/// Builds one list page from `items` (oldest first) and the query parameters.
///
/// `limit` is 1..=100 (default 20), `order` is `asc` or `desc` (default `desc`, newest
/// first), `after`/`before` are item ids in the chosen order. `decorate` adjusts each
/// item on the way out.
pub(crate) fn page<'a>(
    items: impl IntoIterator<Item = &'a Value>,
    query: &HashMap<String, String>,
    decorate: impl Fn(&Value) -> Value,
) -> Result<Value, Failure> {
    let limit = match query.get("limit") {
        None => 20,
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if (1..=100).contains(&n) => n as usize,
            Ok(n) => return Err(Failure::out_of_range("limit", n, 1, Some(100))),
            Err(_) => {
                return Err(Failure::invalid_value(
                    "limit",
                    format!("Invalid 'limit': expected an integer, but got '{raw}' instead."),
                    "invalid_type",
                ));
            }
        },
    };
    let ascending = match query.get("order").map(String::as_str) {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(other) => {
            return Err(Failure::invalid_value(
                "order",
                format!("Invalid value: '{other}'. Supported values are: 'asc' and 'desc'."),
                "invalid_value",
            ));
        }
    };
    let mut ordered: Vec<&Value> = items.into_iter().collect();
    if !ascending {
        ordered.reverse();
    }
    let position = |param: &str| -> Result<Option<usize>, Failure> {
        let Some(id) = query.get(param) else {
            return Ok(None);
        };
        ordered
            .iter()
            .position(|item| item.get("id").and_then(Value::as_str) == Some(id.as_str()))
            .map(Some)
            .ok_or_else(|| {
                Failure::invalid_value(
                    param,
                    format!("Invalid '{param}': no item with id '{id}' in this list."),
                    "invalid_value",
                )
            })
    };
    let start = position("after")?.map_or(0, |i| i + 1);
    let end = position("before")?.unwrap_or(ordered.len()).max(start);
    let window = &ordered[start..end];
    let data = window
        .iter()
        .take(limit)
        .map(|item| decorate(item))
        .collect();
    Ok(list(data, window.len() > limit))
}

/// A list object over `data`, with `first_id`/`last_id` taken from it.
pub(crate) fn list(data: Vec<Value>, has_more: bool) -> Value {
    let id_of = |item: Option<&Value>| {
        item.and_then(|i| i.get("id"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let (first_id, last_id) = (id_of(data.first()), id_of(data.last()));
    json!({
        "object": "list",
        "first_id": first_id,
        "last_id": last_id,
        "has_more": has_more,
        "data": Value::Array(data),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<Value> {
        (0..n).map(|i| json!({"id": format!("i{i}")})).collect()
    }

    fn ids(page: &Value) -> Vec<&str> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect()
    }

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn default_is_newest_first_twenty() {
        let p = page(&items(25), &q(&[]), Value::clone).unwrap();
        assert_eq!(ids(&p).len(), 20);
        assert_eq!(p["first_id"], "i24");
        assert_eq!(p["last_id"], "i5");
        assert_eq!(p["has_more"], true);
    }

    #[test]
    fn cursors_walk_both_ways() {
        let all = items(5);
        let p = page(
            &all,
            &q(&[("order", "asc"), ("limit", "2"), ("after", "i1")]),
            Value::clone,
        )
        .unwrap();
        assert_eq!(ids(&p), ["i2", "i3"]);
        assert_eq!(p["has_more"], true);
        let p = page(&all, &q(&[("order", "asc"), ("after", "i3")]), Value::clone).unwrap();
        assert_eq!(ids(&p), ["i4"]);
        assert_eq!(p["has_more"], false);
        let p = page(&all, &q(&[("before", "i2")]), Value::clone).unwrap();
        assert_eq!(ids(&p), ["i4", "i3"]);
        let p = page(&[], &q(&[]), Value::clone).unwrap();
        assert_eq!(p["first_id"], Value::Null);
    }

    #[test]
    fn bad_parameters_name_the_param() {
        for (k, v) in [
            ("limit", "0"),
            ("limit", "101"),
            ("limit", "x"),
            ("order", "up"),
            ("after", "nope"),
        ] {
            let err = page(&items(3), &q(&[(k, v)]), Value::clone).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(k));
        }
    }
}

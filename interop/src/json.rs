//! Reading the JSON the daemons print (GoBGP, FRR, ExaBGP, bgpd's control
//! protocol): an absent key or a value of another type reads as empty or
//! `None`, so each parser says itself which absences are errors.

use serde_json::Value;

/// The elements of the array at `key` of `v`; empty when absent or not an
/// array.
pub(crate) fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The strings of the array `v` (other elements skipped); empty when `v` is
/// absent or not an array.
pub fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A number that fits 32 bits (an AS, a MED, a community).
pub(crate) fn as_u32(v: &Value) -> Option<u32> {
    v.as_u64().and_then(|n| u32::try_from(n).ok())
}

/// Every element of `items` as a 32-bit number; the first that is not, as
/// the error (`bad WHAT VALUE`).
pub(crate) fn u32s(items: &[Value], what: &str) -> Result<Vec<u32>, String> {
    items
        .iter()
        .map(|x| as_u32(x).ok_or_else(|| format!("bad {what} {x}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_absent_and_mistyped_values_as_empty() {
        let v = serde_json::json!({"a": [1, "x", 4294967296u64], "s": ["p", 2, "q"], "n": 7});
        assert_eq!(array(&v, "a").len(), 3);
        assert!(array(&v, "missing").is_empty() && array(&v, "n").is_empty());
        assert_eq!(strings(v.get("s")), ["p", "q"]);
        assert!(strings(v.get("n")).is_empty() && strings(None).is_empty());
        assert_eq!(as_u32(&v["n"]), Some(7));
        assert_eq!(as_u32(&v["a"][2]), None);
        assert_eq!(u32s(&array(&v, "a")[..1], "asn"), Ok(vec![1]));
        assert_eq!(
            u32s(array(&v, "a"), "asn"),
            Err("bad asn \"x\"".to_string())
        );
    }
}

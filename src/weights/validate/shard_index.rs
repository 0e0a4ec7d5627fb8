//! `model.safetensors.index.json`: a `weight_map` of tensor -> plain shard file
//! name (no duplicate keys), and agreement with what the shards really hold.

use std::collections::{BTreeMap, BTreeSet};

use super::json::parse_strict;

/// The index's tensor -> shard file map.
pub fn parse(bytes: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let json = parse_strict(bytes)?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or("no `weight_map` object")?;
    let mut out = BTreeMap::new();
    for (tensor, file) in map {
        let file = file
            .as_str()
            .ok_or_else(|| format!("weight_map entry for `{tensor}` is not a file name"))?;
        if file.is_empty() || file.contains(['/', '\\']) || file.starts_with('.') {
            return Err(format!("shard name `{file}` is not a plain file name"));
        }
        out.insert(tensor.clone(), file.to_string());
    }
    if out.is_empty() {
        return Err("`weight_map` is empty".into());
    }
    Ok(out)
}

/// The distinct shard file names of `map`, sorted.
pub fn shard_names(map: &BTreeMap<String, String>) -> Vec<String> {
    map.values()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Checks that every tensor the index names is in the shard it names, and
/// every tensor a shard holds is listed for that shard. `shards` pairs each
/// shard's file name with the tensor names in its header.
pub fn check_agreement(
    map: &BTreeMap<String, String>,
    shards: &[(String, Vec<String>)],
) -> Result<(), String> {
    let mut held: BTreeMap<&str, &str> = BTreeMap::new();
    for (file, names) in shards {
        for n in names {
            held.insert(n, file);
        }
    }
    for (tensor, file) in map {
        match held.get(tensor.as_str()) {
            Some(f) if f == file => {}
            Some(f) => {
                return Err(format!(
                    "weight_map puts `{tensor}` in {file} but it is in {f}"
                ))
            }
            None => {
                return Err(format!(
                    "weight_map puts `{tensor}` in {file} but no shard holds it"
                ))
            }
        }
    }
    if let Some((tensor, file)) = held.iter().find(|(t, _)| !map.contains_key(**t)) {
        return Err(format!(
            "shard {file} holds `{tensor}`, which weight_map does not list"
        ));
    }
    Ok(())
}

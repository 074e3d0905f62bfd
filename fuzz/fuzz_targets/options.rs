//! Option trees as a tampered client could send them → `options::to_json` → typed arguments.
//!
//! Checks: an accepted tree obeys the manifest (checked here independently) and deserializes
//! into its command's arguments; for trees of typed values, an independent reading of the
//! manifest agrees on accept or refuse.
#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sitrep::commands::options::{kind, manifests, to_json};
use sitrep::commands::{CommandInput, InputOption, InputValue};
use sitrep::domain::UserRef;
use sitrep_fuzz::{assert_obeys_manifest, hostile, typed_args};

fn all_manifests() -> &'static [Value] {
    manifests()
}

fn opts(spec: &Value) -> &[Value] {
    spec["options"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn is_sub(spec: &Value) -> bool {
    matches!(
        spec["type"].as_u64(),
        Some(kind::SUB_COMMAND | kind::SUB_COMMAND_GROUP)
    )
}

fn text(u: &mut Unstructured, spec: &Value) -> Result<String> {
    if let Some(c) = spec["choices"].as_array().filter(|c| !c.is_empty()) {
        if u.ratio(3, 4)? {
            let v = &u.choose(c)?["value"];
            return Ok(v.as_str().map_or_else(|| v.to_string(), str::to_string));
        }
    }
    hostile(u)
}

/// A value for option `spec`: usually of its type, sometimes raw text as the console sends,
/// sometimes of another type or a subcommand where a value belongs.
fn value(u: &mut Unstructured, spec: &Value, typed_only: bool) -> Result<InputValue> {
    let ty = spec["type"].as_u64().unwrap_or(kind::STRING);
    let pick = u.int_in_range(0..=9)?;
    if pick == 0 && !typed_only {
        return Ok(InputValue::Raw(text(u, spec)?));
    }
    let ty = if pick == 1 {
        u.int_in_range(1..=11)?
    } else {
        ty
    };
    Ok(match ty {
        kind::STRING => InputValue::String(text(u, spec)?),
        kind::INTEGER => InputValue::Integer(u.arbitrary()?),
        kind::NUMBER => InputValue::Number(u.arbitrary()?),
        kind::BOOLEAN => InputValue::Bool(u.arbitrary()?),
        kind::USER => InputValue::User(UserRef::new(u.arbitrary()?, hostile(u)?)),
        kind::CHANNEL => InputValue::Channel(u.arbitrary()?),
        kind::ROLE | kind::MENTIONABLE => InputValue::Role(u.arbitrary()?),
        _ => InputValue::Sub(Vec::new()),
    })
}

/// Options for the (sub)command `spec`, mostly following the manifest.
fn options(
    u: &mut Unstructured,
    spec: &Value,
    depth: u32,
    typed_only: bool,
) -> Result<Vec<InputOption>> {
    let specs = opts(spec);
    let subs: Vec<&Value> = specs.iter().filter(|s| is_sub(s)).collect();
    if !subs.is_empty() && depth < 3 && u.ratio(9, 10)? {
        let sub = *u.choose(&subs)?;
        let name = if u.ratio(19, 20)? {
            sub["name"].as_str().unwrap_or_default().to_string()
        } else {
            hostile(u)?
        };
        let inner = options(u, sub, depth + 1, typed_only)?;
        let mut out = vec![InputOption {
            name,
            value: InputValue::Sub(inner),
        }];
        if u.ratio(1, 20)? {
            out.push(out[0].clone());
        }
        return Ok(out);
    }
    let mut out = Vec::new();
    for s in specs {
        let wanted = if s["required"] == true { 19 } else { 10 };
        if u.ratio(wanted, 20)? {
            out.push(InputOption {
                name: s["name"].as_str().unwrap_or_default().to_string(),
                value: value(u, s, typed_only)?,
            });
        }
    }
    if u.ratio(1, 10)? && !specs.is_empty() {
        let s = u.choose(specs)?;
        let name = if u.ratio(1, 2)? {
            s["name"].as_str().unwrap_or_default().to_string()
        } else {
            hostile(u)?
        };
        out.push(InputOption {
            name,
            value: value(u, s, typed_only)?,
        });
    }
    Ok(out)
}

/// Whether a tree of typed values (no console text) fits the manifest, read independently of
/// `options.rs`.
fn fits(input: &CommandInput) -> bool {
    let Some(spec) = all_manifests()
        .iter()
        .find(|m| m["name"] == input.name.as_str())
    else {
        return false;
    };
    fits_level(spec, &input.options)
}

fn fits_level(spec: &Value, given: &[InputOption]) -> bool {
    let specs = opts(spec);
    if specs.iter().any(is_sub) {
        let [InputOption {
            name,
            value: InputValue::Sub(inner),
        }] = given
        else {
            return false;
        };
        return match specs.iter().find(|s| s["name"] == name.as_str()) {
            Some(sub) => fits_level(sub, inner),
            None => false,
        };
    }
    let mut seen = Vec::new();
    for o in given {
        let Some(s) = specs.iter().find(|s| s["name"] == o.name.as_str()) else {
            return false;
        };
        if seen.contains(&o.name.as_str()) || !fits_value(s, &o.value) {
            return false;
        }
        seen.push(o.name.as_str());
    }
    specs
        .iter()
        .filter(|s| s["required"] == true)
        .all(|s| seen.contains(&s["name"].as_str().unwrap_or_default()))
}

fn fits_value(s: &Value, v: &InputValue) -> bool {
    let ty = s["type"].as_u64().unwrap_or(kind::STRING);
    let json = match (ty, v) {
        (kind::STRING, InputValue::String(t)) => {
            let n = t.chars().count() as u64;
            if s["max_length"].as_u64().is_some_and(|m| n > m)
                || n < s["min_length"].as_u64().unwrap_or(0)
                || (n == 0 && s["required"] == true)
            {
                return false;
            }
            Value::String(t.clone())
        }
        (kind::INTEGER, InputValue::Integer(n)) => Value::from(*n),
        (kind::NUMBER, InputValue::Number(n)) if n.is_finite() => Value::from(*n),
        (kind::NUMBER, InputValue::Integer(n)) => Value::from(*n as f64),
        (kind::BOOLEAN, InputValue::Bool(b)) => Value::Bool(*b),
        (kind::USER | kind::MENTIONABLE, InputValue::User(_)) => return true,
        (kind::CHANNEL, InputValue::Channel(c)) => Value::from(*c),
        (kind::ROLE | kind::MENTIONABLE, InputValue::Role(r)) => Value::from(*r),
        _ => return false,
    };
    if let Some(n) = json.as_f64().filter(|_| json.is_number()) {
        if s["min_value"].as_f64().is_some_and(|m| n < m)
            || s["max_value"].as_f64().is_some_and(|m| n > m)
        {
            return false;
        }
    }
    match s["choices"].as_array() {
        Some(c) => c.iter().any(|c| c["value"] == json),
        None => true,
    }
}

fn typed_only(options: &[InputOption]) -> bool {
    options.iter().all(|o| match &o.value {
        InputValue::Raw(_) => false,
        InputValue::Sub(inner) => typed_only(inner),
        _ => true,
    })
}

fn run(u: &mut Unstructured) -> Result<()> {
    let ms = all_manifests();
    let typed = u.arbitrary::<bool>()?;
    let (name, options) = if u.ratio(19, 20)? {
        let m = u.choose(ms)?;
        let name = m["name"].as_str().unwrap_or_default().to_string();
        (name, options(u, m, 0, typed)?)
    } else {
        (hostile(u)?, Vec::new())
    };
    let input = CommandInput { name, options };
    let result = to_json(&input);
    if let Ok(json) = &result {
        assert_obeys_manifest(&input.name, &input.path(), json);
        if let Some(Err(e)) = typed_args(&input.name, json.clone()) {
            panic!(
                "/{} accepted {json} but its arguments refuse it: {e}",
                input.path()
            );
        }
    }
    if typed_only(&input.options) {
        assert_eq!(
            fits(&input),
            result.is_ok(),
            "{input:?}: manifest says {}, to_json says {result:?}",
            fits(&input)
        );
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

//! `{{name}}` placeholders in named PromQL templates, filled only with values that cannot escape.

use std::collections::BTreeMap;

use super::MetricsError;

/// Longest parameter value accepted; service names and the like are far shorter.
const MAX_VALUE_LEN: usize = 128;

/// One piece of a template: text kept as written, or a placeholder to fill.
enum Piece<'a> {
    Text(&'a str),
    Param(&'a str),
}

/// Splits a template at its `{{ name }}` placeholders. Braces around anything that is not a plain
/// name stay text, so PromQL's own `{...}` matchers are never mistaken for placeholders.
fn pieces(template: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = template;
    let mut text_start = 0;
    let mut pos = 0;
    while let Some(open) = rest[pos..].find("{{").map(|i| pos + i) {
        let after = open + 2;
        match rest[after..].find("}}") {
            Some(len) if is_name(rest[after..after + len].trim()) => {
                if text_start < open {
                    out.push(Piece::Text(&rest[text_start..open]));
                }
                out.push(Piece::Param(rest[after..after + len].trim()));
                rest = &rest[after + len + 2..];
                text_start = 0;
                pos = 0;
            }
            _ => pos = open + 1,
        }
    }
    if text_start < rest.len() {
        out.push(Piece::Text(&rest[text_start..]));
    }
    out
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The placeholder names a template uses, in order of first use.
pub fn placeholders(template: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for piece in pieces(template) {
        if let Piece::Param(name) = piece {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
    }
    names
}

/// Checks a value before it goes into PromQL. An allow-list rather than escaping: the same value
/// may land in a `=` string, a `=~` regular expression or a bare label name, and only a value
/// made of these characters is inert in all three.
pub fn check_param_value(param: &str, value: &str) -> Result<(), MetricsError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_VALUE_LEN
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
    if ok {
        Ok(())
    } else {
        Err(MetricsError::InvalidParam {
            param: param.to_string(),
            value: value.chars().take(MAX_VALUE_LEN).collect(),
        })
    }
}

/// Fills every placeholder of the named query `query` from `params`. Parameters the template
/// does not use are ignored, so that one set (say, the incident's service) can be passed to
/// every query of a list.
pub fn render_template(
    query: &str,
    template: &str,
    params: &BTreeMap<String, String>,
) -> Result<String, MetricsError> {
    let mut out = String::with_capacity(template.len());
    for piece in pieces(template) {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Param(name) => {
                let value = params.get(name).ok_or_else(|| MetricsError::MissingParam {
                    query: query.to_string(),
                    param: name.to_string(),
                })?;
                check_param_value(name, value)?;
                out.push_str(value);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const ERROR_RATE: &str =
        r#"sum(rate(http_requests_total{service="{{service}}",code=~"5.."}[5m]))"#;

    #[test]
    fn fills_placeholders_and_leaves_matchers_alone() {
        let q = render_template(
            "error_rate",
            ERROR_RATE,
            &params(&[("service", "checkout")]),
        );
        assert_eq!(
            q.unwrap(),
            r#"sum(rate(http_requests_total{service="checkout",code=~"5.."}[5m]))"#
        );
        let spaced = "up{job=\"{{ job }}\", env=\"{{env}}\"} and {{job}}_up";
        let q = render_template("x", spaced, &params(&[("job", "api"), ("env", "prod")]));
        assert_eq!(q.unwrap(), "up{job=\"api\", env=\"prod\"} and api_up");
        assert_eq!(placeholders(spaced), vec!["job", "env"]);
    }

    #[test]
    fn braces_that_are_not_placeholders_stay() {
        let t = r#"label_replace(up, "a", "{{x y}}", "", "") + {{{ v }}}"#;
        assert_eq!(placeholders(t), vec!["v"]);
        let q = render_template("x", t, &params(&[("v", "1")])).unwrap();
        assert_eq!(q, r#"label_replace(up, "a", "{{x y}}", "", "") + {1}"#);
        assert_eq!(placeholders("no params {{"), Vec::<String>::new());
    }

    #[test]
    fn missing_parameter_is_named() {
        let err = render_template("error_rate", ERROR_RATE, &params(&[])).unwrap_err();
        assert!(matches!(&err, MetricsError::MissingParam { param, .. } if param == "service"));
        assert!(err.to_string().contains("service:"), "{err}");
    }

    #[test]
    fn values_that_could_break_out_are_refused() {
        for bad in [
            r#"checkout"}"#,
            "a\\\"",
            "a b",
            "",
            "x|y",
            "checkout\"} or vector(1) or up{a=\"",
            "é",
        ] {
            let err = render_template("error_rate", ERROR_RATE, &params(&[("service", bad)]));
            assert!(
                matches!(err, Err(MetricsError::InvalidParam { .. })),
                "{bad:?} was accepted"
            );
        }
        for good in ["checkout", "api-gw_2", "eu-west-1.prod", "node:9100"] {
            assert!(render_template("e", ERROR_RATE, &params(&[("service", good)])).is_ok());
        }
        let long = "a".repeat(MAX_VALUE_LEN + 1);
        assert!(check_param_value("service", &long).is_err());
    }

    #[test]
    fn unused_parameters_are_ignored() {
        let q = render_template("up", "up", &params(&[("service", "x y")])).unwrap();
        assert_eq!(q, "up");
    }
}

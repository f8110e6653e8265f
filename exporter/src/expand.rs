//! Environment expansion of configuration values: node identity lives where operators keep it
//! (a pod's name from the downward API, a host name from systemd's `Environment=`), not copied
//! into one configuration file per node.
//!
//! The syntax is the shell's, restricted to what cannot surprise: `${VAR}` (an error when VAR is
//! unset or empty), `${VAR:-default}` (the default when VAR is unset or empty; the default is
//! literal text) and `$$` (one `$`). Any other `$` is an error, so `$HOSTNAME` is never exported
//! literally by mistake.

use std::env::VarError;

/// Expand `value`; `lookup` reads one variable (`std::env::var` in the sidecar). The error is a
/// message for the field's `file:line:col: field:` prefix.
pub fn expand(
    value: &str,
    lookup: impl Fn(&str) -> Result<String, VarError>,
) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let Some(body_and_tail) = after.strip_prefix('{') else {
            return Err(format!(
                "`$` starts `${{VAR}}` or `${{VAR:-default}}`; write `$$` for a literal `$` (in {value:?})"
            ));
        };
        let Some(end) = body_and_tail.find('}') else {
            return Err(format!(
                "unterminated `${{` in {value:?}; write `$$` for a literal `$`"
            ));
        };
        let body = &body_and_tail[..end];
        let (name, default) = match body.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (body, None),
        };
        if !is_name(name) {
            return Err(format!(
                "`${{{body}}}`: `{name}` is not an environment variable name (letters, digits and \
                 `_`, not starting with a digit); the forms are `${{VAR}}` and `${{VAR:-default}}`"
            ));
        }
        match (lookup(name), default) {
            (Ok(v), _) if !v.is_empty() => out.push_str(&v),
            (Ok(_) | Err(VarError::NotPresent), Some(d)) => out.push_str(d),
            (Ok(_), None) => return Err(format!("environment variable {name} is empty")),
            (Err(VarError::NotPresent), None) => {
                return Err(format!("environment variable {name} is not set"))
            }
            (Err(VarError::NotUnicode(_)), _) => {
                return Err(format!("environment variable {name} is not valid UTF-8"))
            }
        }
        rest = &body_and_tail[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(vars: &[(&str, &str)], value: &str) -> Result<String, String> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        expand(value, |k| m.get(k).cloned().ok_or(VarError::NotPresent))
    }

    #[test]
    fn variables_defaults_and_escapes() {
        let env = [("NODE_NAME", "dilithion-2"), ("EMPTY", "")];
        assert_eq!(with(&env, "${NODE_NAME}").unwrap(), "dilithion-2");
        assert_eq!(with(&env, "eu-${NODE_NAME}-x").unwrap(), "eu-dilithion-2-x");
        assert_eq!(with(&env, "${REGION:-eu-central}").unwrap(), "eu-central");
        assert_eq!(with(&env, "${EMPTY:-fallback}").unwrap(), "fallback");
        assert_eq!(with(&env, "${NODE_NAME:-fallback}").unwrap(), "dilithion-2");
        assert_eq!(with(&env, "${REGION:-}").unwrap(), "");
        assert_eq!(with(&env, "a$$b").unwrap(), "a$b");
        assert_eq!(with(&env, "$${NODE_NAME}").unwrap(), "${NODE_NAME}");
        assert_eq!(with(&env, "plain").unwrap(), "plain");
        // The default is literal text.
        assert_eq!(with(&env, "${X:-a:-b$}").unwrap(), "a:-b$");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let env = [("EMPTY", "")];
        assert_eq!(
            with(&env, "${NODE_NAME}").unwrap_err(),
            "environment variable NODE_NAME is not set"
        );
        assert_eq!(
            with(&env, "${EMPTY}").unwrap_err(),
            "environment variable EMPTY is empty"
        );
        assert!(with(&env, "$HOSTNAME").unwrap_err().contains("write `$$`"));
        assert!(with(&env, "cost 5$").unwrap_err().contains("write `$$`"));
        assert!(with(&env, "${NODE").unwrap_err().contains("unterminated"));
        assert!(with(&env, "${}")
            .unwrap_err()
            .contains("not an environment variable name"));
        assert!(with(&env, "${1X}").unwrap_err().contains("`1X`"));
        assert!(with(&env, "${X-d}").unwrap_err().contains("`X-d`"));
        assert!(with(&env, "${X:=d}").unwrap_err().contains("`X:=d`"));
    }
}

//! `pg_service.conf` files: `[name]` sections of `keyword=value` lines, as libpq reads them.

/// The `keyword=value` pairs of service `name` in `text`, or `None` if the file lacks it.
/// Errors name the line number; they never echo a value (it may be a password).
pub fn find(text: &str, name: &str) -> Result<Option<Vec<(String, String)>>, String> {
    let mut current: Option<&str> = None;
    let mut found: Option<Vec<(String, String)>> = None;
    for (number, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[') {
            let section = section
                .strip_suffix(']')
                .ok_or(format!("line {}: missing \"]\"", number + 1))?;
            if found.is_some() {
                break;
            }
            current = Some(section.trim());
            if current == Some(name) {
                found = Some(Vec::new());
            }
            continue;
        }
        if current != Some(name) {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or(format!("line {}: syntax error (no \"=\")", number + 1))?;
        if let Some(pairs) = found.as_mut() {
            pairs.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# comment\n[other]\nhost=nope\n\n[mydb]\nhost = db.example\nport=6432\n dbname=app \n[later]\nhost=x\n";

    #[test]
    fn finds_the_named_section_only() {
        let pairs = find(FILE, "mydb").unwrap().unwrap();
        let expected: Vec<(String, String)> =
            [("host", "db.example"), ("port", "6432"), ("dbname", "app")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        assert_eq!(pairs, expected);
        assert_eq!(find(FILE, "missing").unwrap(), None);
    }

    #[test]
    fn reports_syntax_errors_by_line_without_values() {
        let err = find("[s]\npassword secret\n", "s").unwrap_err();
        assert_eq!(err, "line 2: syntax error (no \"=\")");
        assert_eq!(
            find("[s\nhost=x\n", "s").unwrap_err(),
            "line 1: missing \"]\""
        );
    }
}

//! `pg_service.conf` files: `[name]` sections of `keyword=value` lines, as libpq reads them.

/// The `keyword=value` pairs of service `name` in `text`, or `None` if the file lacks it.
/// As libpq's parseServiceFile: lines are trimmed at both ends; a header matches when it
/// starts with `[name]` (whatever follows); only the lines of the wanted section are read,
/// each split at its first `=` with nothing else trimmed, so `host = x` names the keyword
/// "host " and is a syntax error. Errors name the line number, never a value.
pub fn find(text: &str, name: &str) -> Result<Option<Vec<(String, String)>>, String> {
    let mut found: Option<Vec<(String, String)>> = None;
    let mut in_section = false;
    for (number, raw) in (1..).zip(text.lines()) {
        let line = raw.trim_matches(|c: char| c.is_ascii_whitespace());
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            if in_section {
                break;
            }
            in_section = header
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(']'));
            if in_section {
                found = Some(Vec::new());
            }
            continue;
        }
        // libpq looks `ldap...` lines up in LDAP and reads on when that fails; pgwait has no
        // LDAP client, so it reads on as libpq does when the directory cannot be reached.
        if !in_section || line.starts_with("ldap") {
            continue;
        }
        let syntax = || format!("syntax error in line {number}");
        let (key, value) = line.split_once('=').ok_or_else(syntax)?;
        match key {
            "service" | "servicefile" => {
                return Err(format!(
                    "line {number}: a service cannot name another {key} (nested specifications are not supported)"
                ))
            }
            _ if super::keywords::lookup(key).is_none() => return Err(syntax()),
            _ => {}
        }
        if let Some(pairs) = found.as_mut() {
            pairs.push((key.to_string(), value.to_string()));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# comment\n[other]\nhost=nope\nnot a line\n[broken\n\n[mydb] # the app\nhost=db.example\n  port=6432\t\n dbname=app \nport=7000\n[later]\nhost=x\n";

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn finds_the_named_section_only_as_libpq_does() {
        let pairs = find(FILE, "mydb").unwrap().unwrap();
        // Repeated keywords are all returned; the first one wins when applied.
        let want = [
            ("host", "db.example"),
            ("port", "6432"),
            ("dbname", "app"),
            ("port", "7000"),
        ];
        assert_eq!(pairs, owned(&want));
        assert_eq!(find(FILE, "missing").unwrap(), None);
        // Lines of other sections, even broken ones, are not read.
        assert_eq!(
            find(FILE, "later").unwrap().unwrap(),
            owned(&[("host", "x")])
        );
        // A header matches by prefix up to its "]"; "[my]" is not "[mydb]".
        assert_eq!(find("[my]\nhost=a\n", "mydb").unwrap(), None);
    }

    #[test]
    fn reports_syntax_errors_by_line_without_values() {
        let table = [
            ("[s]\npassword secret\n", "syntax error in line 2"),
            ("[s]\nhost = x\n", "syntax error in line 2"),
            ("[s]\nsecret=x\n", "syntax error in line 2"),
        ];
        for (text, want) in table {
            assert_eq!(find(text, "s").unwrap_err(), want, "{text:?}");
        }
        assert!(find("[s]\nservice=t\n", "s")
            .unwrap_err()
            .contains("nested"));
    }
}

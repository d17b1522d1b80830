//! `--tags K,V ...` (CSV pairs) and `--tag K,V` (split on the first comma,
//! then AWS's tag rules), exactly as barman-cloud validates them.

/// Parses one `--tags` item: a CSV row of exactly two fields.
pub fn parse_csv_tag(item: &str) -> Result<(String, String), String> {
    let fields = csv_fields(item).ok_or_else(|| format!("Error parsing tag {item}"))?;
    match <[String; 2]>::try_from(fields) {
        Ok([k, v]) => Ok((k, v)),
        Err(_) => Err(format!("Invalid tag format: {item}")),
    }
}

/// Splits one CSV line (`,` separated, `"` quoting with `""` escapes).
fn csv_fields(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' if quoted => quoted = false,
            '"' if at_start => quoted = true,
            ',' if !quoted => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
                continue;
            }
            c => field.push(c),
        }
        at_start = false;
    }
    if quoted {
        return None;
    }
    fields.push(field);
    Some(fields)
}

fn allowed(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
}

/// Parses and checks one `--tag key,value`.
pub fn check_tag(item: &str) -> Result<(String, String), String> {
    let (key, value) = item
        .split_once(',')
        .ok_or_else(|| "Invalid tag format. Expected 'key,value'.".to_string())?;
    let (key, value) = (key.trim(), value.trim());
    if key.is_empty() || key.chars().count() > 128 {
        return Err("Tag key must be between 1 and 128 characters.".into());
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err("Tag key cannot start with the reserved prefix 'aws:'.".into());
    }
    if !allowed(key) {
        return Err("Tag key contains invalid characters. Allowed are letters, numbers, spaces, and _.:/=+-@".into());
    }
    if value.chars().count() > 256 {
        return Err("Tag value must be 256 characters or less.".into());
    }
    if !allowed(value) {
        return Err("Tag value contains invalid characters. Allowed are letters, numbers, spaces, and _.:/=+-@".into());
    }
    Ok((key.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_tags_allow_quoted_commas() {
        assert_eq!(parse_csv_tag("env,prod"), Ok(("env".into(), "prod".into())));
        assert_eq!(parse_csv_tag("\"a,b\",c"), Ok(("a,b".into(), "c".into())));
        assert!(parse_csv_tag("justone").is_err());
        assert!(parse_csv_tag("a,b,c").is_err());
    }

    #[test]
    fn single_tags_follow_aws_rules() {
        assert_eq!(
            check_tag(" owner , data-team "),
            Ok(("owner".into(), "data-team".into()))
        );
        assert_eq!(
            check_tag("k,a,b").unwrap_err(),
            "Tag value contains invalid characters. Allowed are letters, numbers, spaces, and _.:/=+-@"
        );
        assert!(check_tag("aws:x,y").is_err());
        assert!(check_tag("no-comma").is_err());
        assert!(check_tag(",v").is_err());
        assert!(check_tag("k*,v").is_err());
    }
}

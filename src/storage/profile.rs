//! AWS shared config files (`~/.aws/credentials`, `~/.aws/config`), the part
//! boto3 reads for `--aws-profile` / `AWS_PROFILE` and `object_store` does not:
//! static keys, session token and region of one profile.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What a profile provides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
}

/// Parses INI text into `section -> key -> value` (keys lower-cased,
/// comments and blank lines skipped).
fn parse_ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut sections: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.trim().to_string();
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            sections
                .entry(current.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    sections
}

fn home_file(env_var: &str, default: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env_var) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".aws").join(default))
}

/// Loads profile `name` from the shared files (missing files are fine).
/// Returns `None` when neither file has the profile.
pub fn load(name: &str) -> Option<Profile> {
    let read = |var, default| {
        home_file(var, default)
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| parse_ini(&t))
            .unwrap_or_default()
    };
    let credentials = read("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    let config = read("AWS_CONFIG_FILE", "config");
    from_sections(name, &credentials, &config)
}

fn from_sections(
    name: &str,
    credentials: &HashMap<String, HashMap<String, String>>,
    config: &HashMap<String, HashMap<String, String>>,
) -> Option<Profile> {
    let config_section = if name == "default" {
        config.get("default")
    } else {
        config.get(&format!("profile {name}"))
    };
    let cred_section = credentials.get(name);
    if cred_section.is_none() && config_section.is_none() {
        return None;
    }
    let get = |key: &str| {
        cred_section
            .and_then(|s| s.get(key))
            .or_else(|| config_section.and_then(|s| s.get(key)))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    Some(Profile {
        access_key_id: get("aws_access_key_id"),
        secret_access_key: get("aws_secret_access_key"),
        session_token: get("aws_session_token"),
        region: get("region"),
        endpoint_url: get("endpoint_url"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_credentials_and_config_sections() {
        let creds = parse_ini(
            "[default]\naws_access_key_id = A\naws_secret_access_key=S\n\n[ceph]\naws_access_key_id=CK\naws_secret_access_key = CS\n",
        );
        let config = parse_ini(
            "# c\n[profile ceph]\nregion = af-south-1\nendpoint_url = http://rgw:80\n[default]\nregion=eu-west-1\n",
        );
        let ceph = from_sections("ceph", &creds, &config).unwrap();
        assert_eq!(ceph.access_key_id.as_deref(), Some("CK"));
        assert_eq!(ceph.secret_access_key.as_deref(), Some("CS"));
        assert_eq!(ceph.region.as_deref(), Some("af-south-1"));
        assert_eq!(ceph.endpoint_url.as_deref(), Some("http://rgw:80"));
        let default = from_sections("default", &creds, &config).unwrap();
        assert_eq!(default.region.as_deref(), Some("eu-west-1"));
        assert!(from_sections("nope", &creds, &config).is_none());
    }
}

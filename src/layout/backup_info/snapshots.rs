//! `snapshots_info`: Barman loads it into a provider class
//! (`snapshots_info_from_dict`) and writes `repr(obj.to_dict())`, so what it
//! writes back (and shows) is a canonical dict: `provider`, then
//! `provider_info` with exactly the provider's fields, then `snapshots`, each
//! `{'mount': {'mount_options', 'mount_point'}, 'provider': {...}}`. Missing
//! fields become `None`; unknown ones are dropped.

use crate::layout::pyliteral::PyValue;

/// (provider, `provider_info` fields, per-snapshot `provider` fields), from
/// barman/cloud_providers/{google_cloud_storage,azure_blob_storage,aws_s3}.py.
const PROVIDERS: &[(&str, &[&str], &[&str])] = &[
    (
        "gcp",
        &["project"],
        &["device_name", "snapshot_name", "snapshot_project"],
    ),
    (
        "azure",
        &["subscription_id", "resource_group"],
        &["location", "lun", "snapshot_name"],
    ),
    (
        "aws",
        &["account_id", "region"],
        &[
            "device_name",
            "snapshot_id",
            "snapshot_name",
            "snapshot_lock_mode",
        ],
    ),
];

fn s(text: &str) -> PyValue {
    PyValue::Str(text.to_string())
}

/// `snapshots_info_from_dict(obj).to_dict()`.
pub(super) fn canonical(obj: &PyValue) -> Result<PyValue, String> {
    let PyValue::Dict(_) = obj else {
        return Err("snapshots_info is not a dict".into());
    };
    let provider = obj.get("provider").ok_or("KeyError: 'provider'")?;
    let (name, info_fields, snap_fields) = PROVIDERS
        .iter()
        .find(|(p, _, _)| provider.as_str() == Some(*p))
        .ok_or_else(|| {
            format!(
                "Unsupported snapshot provider in backup info: {}",
                provider.py_str()
            )
        })?;
    let sub = |parent: Option<&PyValue>, field: &str| -> Result<PyValue, String> {
        match parent {
            None => Ok(PyValue::None),
            Some(d @ PyValue::Dict(_)) => Ok(d.get(field).cloned().unwrap_or(PyValue::None)),
            Some(_) => Err("snapshots_info: expected a dict".into()),
        }
    };
    let provider_info = obj.get("provider_info");
    let mut info = Vec::new();
    for f in info_fields.iter() {
        info.push((s(f), sub(provider_info, f)?));
    }
    let snapshots = match obj.get("snapshots") {
        Some(PyValue::List(items) | PyValue::Tuple(items)) => items,
        Some(_) => return Err("snapshots_info: 'snapshots' is not a list".into()),
        None => return Err("KeyError: 'snapshots'".into()),
    };
    let mut out_snaps = Vec::new();
    for snap in snapshots {
        if !matches!(snap, PyValue::Dict(_)) {
            return Err("snapshots_info: a snapshot is not a dict".into());
        }
        let mount = snap.get("mount");
        let mount = PyValue::Dict(vec![
            (s("mount_options"), sub(mount, "mount_options")?),
            (s("mount_point"), sub(mount, "mount_point")?),
        ]);
        let provider = snap.get("provider");
        let mut fields = Vec::new();
        for f in snap_fields.iter() {
            fields.push((s(f), sub(provider, f)?));
        }
        out_snaps.push(PyValue::Dict(vec![
            (s("mount"), mount),
            (s("provider"), PyValue::Dict(fields)),
        ]));
    }
    Ok(PyValue::Dict(vec![
        (s("provider"), s(name)),
        (s("provider_info"), PyValue::Dict(info)),
        (s("snapshots"), PyValue::List(out_snaps)),
    ]))
}

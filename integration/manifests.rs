//! The Kubernetes manifests under `docker/k8s`, checked offline.
//!
//! - The `base/`, `aws/` and `baremetal/` kustomizations are rendered by a small renderer here
//!   (the `kustomize` binary is not available): `resources` (files and directories), `namespace`
//!   and strategic-merge `patches`, the only features the manifests use; any other kustomization
//!   field stops the test rather than being ignored.
//! - Every rendered document, the Flux and example files, pass schema validation: core kinds with
//!   `kubernetes-validate` (PyPI, strict), CloudNativePG, prometheus-operator and Flux kinds
//!   against the CRDs copied in `docker/k8s/crds`, strict (unknown fields are errors), by
//!   `docker/k8s/tools/validate.py` in a virtualenv of this run; and the validator is shown to
//!   reject broken documents.
//! - The rendered overlays say what the reference deployment says: uid/gid 65534, non-root,
//!   read-only root filesystem, all capabilities dropped, seccomp RuntimeDefault; credentials from
//!   the Secret keys `ACCESS_KEY_ID`/`ACCESS_SECRET_KEY` (bare metal) or IRSA (AWS); the daily
//!   `0 0 2 * * *` backup; retention `30d` and `RECOVERY WINDOW OF 30 DAYS`; Ceph RGW with
//!   path-style addressing; sidecar memory limits within 64–512 MiB.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_yaml::{Mapping, Value};

use crate::harness;
use crate::support::run;

const OVERLAYS: [&str; 2] = ["aws", "baremetal"];
const RGW_ENDPOINT: &str = "http://rook-ceph-rgw-ceph-objectstore.rook-ceph.svc.cluster.local:80";
const NAMESPACE: &str = "databases";
/// The kubernetes-validate release the validation runs with, and the Kubernetes version.
const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";
const KUBERNETES_VERSION: &str = "1.33.0";
/// The standalone PostgreSQL's archive_command: run by /bin/sh with the container's environment.
const ARCHIVE_COMMAND: &str =
    r#"walpush $BARNACLE_STORE_OPTIONS "$BARNACLE_DESTINATION_URL" "$BARNACLE_SERVER_NAME" %p"#;

fn k8s_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/k8s")
}

// ---------------------------------------------------------------------------------------------
// YAML access

/// The documents of a YAML file. Documents are split at lines starting with `---` (enough for
/// the files here; serde_yaml parses one document at a time).
fn load_docs(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut docs = Vec::new();
    let mut current = String::new();
    for line in text.lines().chain(std::iter::once("---")) {
        if line.starts_with("---") {
            let value: Value = serde_yaml::from_str(&current)
                .unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()));
            if !value.is_null() {
                docs.push(value);
            }
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    docs
}

/// The value at a dotted path (`spec.template.spec.containers.0.image`), or Null.
fn at<'a>(value: &'a Value, path: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    let mut v = value;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        v = match v {
            Value::Mapping(m) => m.get(part).unwrap_or(&NULL),
            Value::Sequence(s) => part
                .parse::<usize>()
                .ok()
                .and_then(|i| s.get(i))
                .unwrap_or(&NULL),
            _ => &NULL,
        };
    }
    v
}

fn text<'a>(value: &'a Value, path: &str) -> &'a str {
    at(value, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path} is not a string in {}", name_of(value)))
}

fn list<'a>(value: &'a Value, path: &str) -> &'a [Value] {
    at(value, path)
        .as_sequence()
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn strings(value: &Value, path: &str) -> Vec<String> {
    list(value, path)
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => panic!("{path}: {other:?} is not a string in {}", name_of(value)),
        })
        .collect()
}

fn name_of(doc: &Value) -> String {
    format!(
        "{}/{}",
        at(doc, "kind").as_str().unwrap_or("?"),
        at(doc, "metadata.name").as_str().unwrap_or("?")
    )
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    let found: Vec<&Value> = docs
        .iter()
        .filter(|d| {
            at(d, "kind").as_str() == Some(kind) && at(d, "metadata.name").as_str() == Some(name)
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "want exactly one {kind}/{name}, found {}",
        found.len()
    );
    found[0]
}

/// The value of the environment variable `name` of `container`: a literal, or the secret
/// reference `(secret, key)` as `secret:NAME/KEY`.
fn env_var(container: &Value, name: &str) -> Option<String> {
    list(container, "env")
        .iter()
        .find(|e| at(e, "name").as_str() == Some(name))
        .map(|e| match at(e, "value").as_str() {
            Some(v) => v.to_string(),
            None => format!(
                "secret:{}/{}",
                text(e, "valueFrom.secretKeyRef.name"),
                text(e, "valueFrom.secretKeyRef.key")
            ),
        })
}

/// The argument after `flag` in `args`.
fn arg_after<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

// ---------------------------------------------------------------------------------------------
// The renderer: what `kustomize build` does with the fields these manifests use.

/// Renders the kustomization in `dir`.
fn render(dir: &Path) -> Vec<Value> {
    let file = dir.join("kustomization.yaml");
    let docs = load_docs(&file);
    assert_eq!(docs.len(), 1, "{}: one document", file.display());
    let k = &docs[0];
    assert_eq!(
        text(k, "apiVersion"),
        "kustomize.config.k8s.io/v1beta1",
        "{}",
        file.display()
    );
    assert_eq!(text(k, "kind"), "Kustomization", "{}", file.display());
    for key in k.as_mapping().expect("kustomization is a mapping").keys() {
        let key = key.as_str().unwrap_or_default();
        assert!(
            ["apiVersion", "kind", "resources", "patches", "namespace"].contains(&key),
            "{}: the test's renderer does not implement `{key}`: extend it (integration/manifests.rs)",
            file.display()
        );
    }

    let mut out = Vec::new();
    for resource in strings(k, "resources") {
        let path = dir.join(&resource);
        if path.is_dir() {
            out.extend(render(&path));
        } else {
            out.extend(load_docs(&path));
        }
    }
    for patch in list(k, "patches") {
        for key in patch.as_mapping().expect("patch entry").keys() {
            let key = key.as_str().unwrap_or_default();
            assert!(
                ["path", "patch", "target"].contains(&key),
                "{}: patch field `{key}` is not implemented",
                file.display()
            );
        }
        let body: Value = match (at(patch, "path").as_str(), at(patch, "patch").as_str()) {
            (Some(p), None) => {
                let mut d = load_docs(&dir.join(p));
                assert_eq!(d.len(), 1, "{p}: one patch per file");
                d.remove(0)
            }
            (None, Some(inline)) => serde_yaml::from_str(inline).expect("inline patch is YAML"),
            _ => panic!(
                "{}: a patch needs exactly one of path and patch",
                file.display()
            ),
        };
        assert!(
            body.is_mapping(),
            "{}: JSON 6902 patches are not implemented (only strategic merge)",
            file.display()
        );
        let target = at(patch, "target");
        let kind = at(target, "kind")
            .as_str()
            .unwrap_or_else(|| text(&body, "kind"))
            .to_string();
        let name = at(target, "name")
            .as_str()
            .unwrap_or_else(|| text(&body, "metadata.name"))
            .to_string();
        let targets: Vec<&mut Value> = out
            .iter_mut()
            .filter(|d| {
                at(d, "kind").as_str() == Some(&kind)
                    && at(d, "metadata.name").as_str() == Some(&name)
            })
            .collect();
        assert_eq!(
            targets.len(),
            1,
            "{}: the patch for {kind}/{name} must match exactly one resource",
            file.display()
        );
        let doc = targets.into_iter().next().unwrap();
        let builtin = is_builtin(text(doc, "apiVersion"));
        strategic_merge(doc, &body, builtin);
    }
    if let Some(ns) = at(k, "namespace").as_str() {
        for doc in &mut out {
            let meta = doc
                .as_mapping_mut()
                .and_then(|m| m.get_mut("metadata"))
                .and_then(Value::as_mapping_mut)
                .expect("every resource has metadata");
            meta.insert("namespace".into(), ns.into());
        }
    }
    out
}

/// Kubernetes' own API groups (strategic merge with merge keys) as opposed to custom resources
/// (which kustomize patches as JSON merge patches: lists are replaced).
fn is_builtin(api_version: &str) -> bool {
    match api_version.split_once('/') {
        None => true,
        Some((group, _)) => !group.contains('.') || group.ends_with(".k8s.io"),
    }
}

/// A strategic merge patch: maps merge key by key (a null value deletes the key); in built-in
/// kinds, lists of objects that all have a `name` (containers, env, volumes, volumeMounts, ports)
/// merge by name, with `$patch: delete` removing an element; every other list is replaced.
fn strategic_merge(target: &mut Value, patch: &Value, builtin: bool) {
    match (target, patch) {
        (Value::Mapping(t), Value::Mapping(p)) => {
            for (key, value) in p {
                if value.is_null() {
                    t.remove(key);
                } else if let Some(existing) = t.get_mut(key) {
                    strategic_merge(existing, value, builtin);
                } else {
                    t.insert(key.clone(), without_directives(value));
                }
            }
        }
        (Value::Sequence(t), Value::Sequence(p)) if builtin && named(t) && named(p) => {
            for element in p {
                let name = at(element, "name").clone();
                let position = t.iter().position(|e| at(e, "name") == &name);
                let delete = at(element, "$patch").as_str() == Some("delete");
                match (position, delete) {
                    (Some(i), true) => {
                        t.remove(i);
                    }
                    (None, true) => panic!("$patch: delete of {name:?}, which is not there"),
                    (Some(i), false) => strategic_merge(&mut t[i], element, builtin),
                    (None, false) => t.push(without_directives(element)),
                }
            }
        }
        (target, patch) => *target = without_directives(patch),
    }
}

fn named(list: &[Value]) -> bool {
    list.iter().all(|e| at(e, "name").as_str().is_some())
}

fn without_directives(value: &Value) -> Value {
    match value {
        Value::Mapping(m) => Value::Mapping(
            m.iter()
                .filter(|(k, _)| !k.as_str().is_some_and(|k| k.starts_with('$')))
                .map(|(k, v)| (k.clone(), without_directives(v)))
                .collect::<Mapping>(),
        ),
        Value::Sequence(s) => Value::Sequence(s.iter().map(without_directives).collect()),
        other => other.clone(),
    }
}

/// base, aws and baremetal, rendered once per test process.
fn rendered() -> &'static HashMap<&'static str, Vec<Value>> {
    static RENDERED: OnceLock<HashMap<&'static str, Vec<Value>>> = OnceLock::new();
    RENDERED.get_or_init(|| {
        ["base", "aws", "baremetal"]
            .into_iter()
            .map(|name| (name, render(&k8s_dir().join(name))))
            .collect()
    })
}

// ---------------------------------------------------------------------------------------------
// Schema validation

/// A virtualenv with kubernetes-validate (and with it jsonschema and PyYAML), under the run root.
fn validate_venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let started = std::time::Instant::now();
        let dir = harness::root().join("k8s-validate-venv");
        harness::run_ok(
            Command::new("/usr/bin/python3")
                .args(["-m", "venv"])
                .arg(&dir),
        );
        harness::run_ok(Command::new(dir.join("bin/pip")).args([
            "install",
            "-q",
            "--disable-pip-version-check",
            KUBERNETES_VALIDATE,
        ]));
        eprintln!(
            "manifests: {KUBERNETES_VALIDATE} installed in {:.1?}",
            started.elapsed()
        );
        dir
    })
}

/// Runs docker/k8s/tools/validate.py on `files`: (exit code, output).
fn validate(files: &[PathBuf]) -> (i32, String) {
    let ran = run(Command::new(validate_venv().join("bin/python"))
        .arg(k8s_dir().join("tools/validate.py"))
        .arg("--crds")
        .arg(k8s_dir().join("crds"))
        .args(["--kubernetes-version", KUBERNETES_VERSION])
        .args(files));
    (ran.code, format!("{}{}", ran.stdout, ran.stderr))
}

fn write_docs(path: &Path, docs: &[Value]) {
    let text: Vec<String> = docs
        .iter()
        .map(|d| serde_yaml::to_string(d).expect("serialise YAML"))
        .collect();
    fs::write(path, text.join("---\n")).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// The manifests that are not part of a kustomization: Flux objects, examples, Secret shapes.
fn loose_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["flux", "examples", "baremetal", "aws", "base"] {
        let mut entries: Vec<PathBuf> = fs::read_dir(k8s_dir().join(dir))
            .unwrap_or_else(|e| panic!("list docker/k8s/{dir}: {e}"))
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        entries.sort();
        for path in entries {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            // Kustomizations and patches are checked through the rendering.
            if dir == "flux" || dir == "examples" || file.ends_with(".example.yaml") {
                files.push(path);
            }
        }
    }
    files
}

#[test]
fn overlays_render_and_every_manifest_passes_schema_validation() {
    let out = harness::scratch("manifests-rendered");
    let mut files = Vec::new();
    let mut documents = 0;
    for (name, docs) in rendered() {
        assert_eq!(
            docs.len(),
            7,
            "{name}: {:?}",
            docs.iter().map(name_of).collect::<Vec<_>>()
        );
        let path = out.join(format!("{name}.yaml"));
        write_docs(&path, docs);
        files.push(path);
        documents += docs.len();
    }
    for path in loose_files() {
        documents += load_docs(&path).len();
        files.push(path);
    }
    let (code, output) = validate(&files);
    assert_eq!(code, 0, "schema validation failed:\n{output}");
    let ok = output.lines().filter(|l| l.starts_with("OK ")).count();
    assert_eq!(ok, documents, "every document validated once:\n{output}");
    for kind in [
        "Cluster",
        "ScheduledBackup",
        "ServiceMonitor",
        "HelmRelease",
        "Kustomization",
        "Backup",
    ] {
        assert!(
            output.lines().any(|l| l.starts_with("OK ")
                && l.contains(&format!(" {kind}/"))
                && l.ends_with("(CRD)")),
            "no {kind} validated against its CRD:\n{output}"
        );
    }
    for kind in [
        "StatefulSet",
        "Service",
        "CronJob",
        "ServiceAccount",
        "Secret",
    ] {
        assert!(
            output.lines().any(|l| l.starts_with("OK ")
                && l.contains(&format!(" {kind}/"))
                && l.contains("(Kubernetes ")),
            "no {kind} validated by kubernetes-validate:\n{output}"
        );
    }
}

#[test]
fn schema_validation_rejects_what_the_api_server_would() {
    let base = &rendered()["baremetal"];
    let dir = harness::scratch("manifests-broken");
    let mut broken: Vec<(&str, Value)> = Vec::new();

    let mut cluster = find(base, "Cluster", "pg-main").clone();
    let wal = cluster["spec"]["backup"]["barmanObjectStore"]["wal"]
        .as_mapping_mut()
        .unwrap();
    wal.insert("maxParalel".into(), 2.into());
    broken.push(("maxParalel", cluster));

    let mut cluster = find(base, "Cluster", "pg-main").clone();
    cluster["spec"]["backup"]["barmanObjectStore"]["data"]["compression"] = "gz".into();
    broken.push(("'gz' is not one of", cluster));

    let mut sts = find(base, "StatefulSet", "pg-standalone").clone();
    let sc = sts["spec"]["template"]["spec"]["containers"][0]["securityContext"]
        .as_mapping_mut()
        .unwrap();
    sc.insert("readOnlyRootFileSystem".into(), true.into());
    broken.push(("readOnlyRootFileSystem", sts));

    let mut monitor = find(base, "ServiceMonitor", "pg-standalone-barnacle").clone();
    monitor["spec"]["endpoints"][0]["interval"] = 30.into();
    broken.push(("not of type 'string'", monitor));

    let mut unknown = find(base, "Service", "pg-standalone").clone();
    unknown["apiVersion"] = "example.com/v1".into();
    broken.push(("no schema for Service", unknown));

    let mut files = Vec::new();
    for (i, (_, doc)) in broken.iter().enumerate() {
        let path = dir.join(format!("broken-{i}.yaml"));
        write_docs(&path, std::slice::from_ref(doc));
        files.push(path);
    }
    let (code, output) = validate(&files);
    assert_eq!(code, 1, "broken documents passed:\n{output}");
    for (i, (expected, _)) in broken.iter().enumerate() {
        let file = format!("broken-{i}.yaml ");
        assert!(
            output
                .lines()
                .any(|l| l.starts_with("ERROR ") && l.contains(&file) && l.contains(expected)),
            "{expected}: not reported for {file}:\n{output}"
        );
    }
    assert!(!output.lines().any(|l| l.starts_with("OK ")), "{output}");
}

// ---------------------------------------------------------------------------------------------
// What the manifests say

/// Every pod spec of an overlay with where it comes from: (what, pod spec).
fn pod_specs(docs: &[Value]) -> Vec<(String, &Value)> {
    let mut pods = Vec::new();
    for doc in docs {
        match at(doc, "kind").as_str() {
            Some("StatefulSet" | "Deployment" | "DaemonSet") => {
                pods.push((name_of(doc), at(doc, "spec.template.spec")))
            }
            Some("CronJob") => {
                pods.push((name_of(doc), at(doc, "spec.jobTemplate.spec.template.spec")))
            }
            Some("Job") => pods.push((name_of(doc), at(doc, "spec.template.spec"))),
            _ => {}
        }
    }
    pods
}

/// Every container and init container of a pod spec.
fn containers(pod: &Value) -> Vec<&Value> {
    list(pod, "initContainers")
        .iter()
        .chain(list(pod, "containers"))
        .collect()
}

fn assert_restricted(what: &str, sc: &Value) {
    assert_eq!(
        at(sc, "runAsNonRoot"),
        &Value::Bool(true),
        "{what}: runAsNonRoot"
    );
    assert_eq!(
        at(sc, "runAsUser").as_u64(),
        Some(65534),
        "{what}: runAsUser"
    );
    assert_eq!(
        at(sc, "runAsGroup").as_u64(),
        Some(65534),
        "{what}: runAsGroup"
    );
    assert_eq!(
        at(sc, "readOnlyRootFilesystem"),
        &Value::Bool(true),
        "{what}: readOnlyRootFilesystem"
    );
    assert_eq!(
        at(sc, "allowPrivilegeEscalation"),
        &Value::Bool(false),
        "{what}: allowPrivilegeEscalation"
    );
    assert_eq!(
        strings(sc, "capabilities.drop"),
        ["ALL"],
        "{what}: capabilities.drop"
    );
    assert!(
        list(sc, "capabilities.add").is_empty(),
        "{what}: capabilities.add"
    );
    assert_eq!(
        at(sc, "seccompProfile.type").as_str(),
        Some("RuntimeDefault"),
        "{what}: seccomp"
    );
}

fn assert_pod_restricted(what: &str, sc: &Value) {
    assert_eq!(
        at(sc, "runAsNonRoot"),
        &Value::Bool(true),
        "{what}: pod runAsNonRoot"
    );
    assert_eq!(
        at(sc, "runAsUser").as_u64(),
        Some(65534),
        "{what}: pod runAsUser"
    );
    assert_eq!(
        at(sc, "runAsGroup").as_u64(),
        Some(65534),
        "{what}: pod runAsGroup"
    );
    assert_eq!(
        at(sc, "fsGroup").as_u64(),
        Some(65534),
        "{what}: pod fsGroup"
    );
    assert_eq!(
        at(sc, "seccompProfile.type").as_str(),
        Some("RuntimeDefault"),
        "{what}: pod seccomp"
    );
}

/// "64Mi", "1Gi", "512M" in bytes.
fn quantity(q: &str) -> u64 {
    let (number, unit) = q.split_at(q.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(q.len()));
    let n: u64 = number.parse().unwrap_or_else(|_| panic!("quantity {q:?}"));
    n * match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "K" | "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        _ => panic!("quantity unit {unit:?}"),
    }
}

fn barnacle_image() -> String {
    format!(
        "registry.example.com/barnacle:{}",
        env!("CARGO_PKG_VERSION")
    )
}

#[test]
fn security_contexts_follow_the_reference_deployment() {
    for overlay in OVERLAYS {
        let docs = &rendered()[overlay];
        for doc in docs.iter() {
            assert_eq!(
                at(doc, "metadata.namespace").as_str(),
                Some(NAMESPACE),
                "{overlay} {}",
                name_of(doc)
            );
        }
        let pods = pod_specs(docs);
        assert_eq!(
            pods.len(),
            2,
            "{overlay}: the standalone StatefulSet and the retention CronJob"
        );
        for (what, pod) in pods {
            let what = format!("{overlay} {what}");
            assert_pod_restricted(&what, at(pod, "securityContext"));
            assert_eq!(
                at(pod, "serviceAccountName").as_str(),
                Some("barnacle"),
                "{what}"
            );
            assert_eq!(
                at(pod, "automountServiceAccountToken"),
                &Value::Bool(false),
                "{what}"
            );
            for c in containers(pod) {
                let what = format!("{what} container {}", text(c, "name"));
                assert_restricted(&what, at(c, "securityContext"));
                let limit = quantity(text(c, "resources.limits.memory"));
                let request = quantity(text(c, "resources.requests.memory"));
                assert!(request <= limit, "{what}: request above limit");
                if text(c, "image") == barnacle_image() {
                    // The reference deployment's sidecar budget: 64–512 MiB.
                    assert!(
                        (64 << 20..=512 << 20).contains(&limit),
                        "{what}: memory limit {limit}"
                    );
                    assert!(request >= 64 << 20, "{what}: memory request {request}");
                }
                // Only mounted volumes are writable: every writable path is a volume.
                let mounts: Vec<&str> = list(c, "volumeMounts")
                    .iter()
                    .map(|m| text(m, "mountPath"))
                    .collect();
                assert!(
                    mounts.contains(&"/tmp"),
                    "{what}: /tmp is not a volume: {mounts:?}"
                );
            }
        }

        let cluster = find(docs, "Cluster", "pg-main");
        let what = format!("{overlay} Cluster");
        assert_eq!(
            at(cluster, "spec.postgresUID").as_u64(),
            Some(65534),
            "{what}"
        );
        assert_eq!(
            at(cluster, "spec.postgresGID").as_u64(),
            Some(65534),
            "{what}"
        );
        assert_eq!(
            at(cluster, "spec.seccompProfile.type").as_str(),
            Some("RuntimeDefault"),
            "{what}"
        );
        assert_restricted(&what, at(cluster, "spec.securityContext"));
        assert_pod_restricted(&what, at(cluster, "spec.podSecurityContext"));
    }
}

#[test]
fn credentials_come_from_the_secret_keys_on_bare_metal_and_from_irsa_on_aws() {
    // Bare metal: the Secret's keys are ACCESS_KEY_ID and ACCESS_SECRET_KEY, everywhere.
    let docs = &rendered()["baremetal"];
    let store = at(
        find(docs, "Cluster", "pg-main"),
        "spec.backup.barmanObjectStore",
    );
    assert_eq!(
        text(store, "s3Credentials.accessKeyId.key"),
        "ACCESS_KEY_ID"
    );
    assert_eq!(
        text(store, "s3Credentials.secretAccessKey.key"),
        "ACCESS_SECRET_KEY"
    );
    assert_eq!(text(store, "s3Credentials.accessKeyId.name"), "barnacle-s3");
    assert_eq!(
        text(store, "s3Credentials.secretAccessKey.name"),
        "barnacle-s3"
    );
    assert!(at(store, "s3Credentials.inheritFromIAMRole").is_null());
    for (what, pod) in pod_specs(docs) {
        for c in containers(pod) {
            let what = format!("baremetal {what} {}", text(c, "name"));
            assert_eq!(
                env_var(c, "AWS_ACCESS_KEY_ID").as_deref(),
                Some("secret:barnacle-s3/ACCESS_KEY_ID"),
                "{what}"
            );
            assert_eq!(
                env_var(c, "AWS_SECRET_ACCESS_KEY").as_deref(),
                Some("secret:barnacle-s3/ACCESS_SECRET_KEY"),
                "{what}"
            );
            assert!(env_var(c, "AWS_ROLE_ARN").is_none(), "{what}");
        }
    }
    let secret = load_docs(&k8s_dir().join("baremetal/barnacle-s3.secret.example.yaml"));
    let keys: Vec<&str> = at(&secret[0], "stringData")
        .as_mapping()
        .expect("stringData")
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(keys, ["ACCESS_KEY_ID", "ACCESS_SECRET_KEY"]);
    let recovery = load_docs(&k8s_dir().join("examples/pg-main-recovery.yaml"));
    let external = &list(&recovery[0], "spec.externalClusters")[0];
    assert_eq!(
        text(external, "barmanObjectStore.s3Credentials.accessKeyId.key"),
        "ACCESS_KEY_ID"
    );
    assert_eq!(
        text(
            external,
            "barmanObjectStore.s3Credentials.secretAccessKey.key"
        ),
        "ACCESS_SECRET_KEY"
    );

    // AWS: IRSA. The role ARN on the service accounts, web identity in the pods, no keys.
    let docs = &rendered()["aws"];
    let account = find(docs, "ServiceAccount", "barnacle");
    let role = at(account, "metadata.annotations")
        .get("eks.amazonaws.com/role-arn")
        .and_then(Value::as_str)
        .expect("the IRSA annotation on the barnacle ServiceAccount");
    assert!(
        role.starts_with("arn:aws:iam::") && role.contains(":role/"),
        "{role}"
    );
    let cluster = find(docs, "Cluster", "pg-main");
    let annotations = at(cluster, "spec.serviceAccountTemplate.metadata.annotations");
    assert_eq!(
        annotations
            .get("eks.amazonaws.com/role-arn")
            .and_then(Value::as_str),
        Some(role)
    );
    let credentials = at(cluster, "spec.backup.barmanObjectStore.s3Credentials");
    assert_eq!(
        credentials.as_mapping().map(Mapping::len),
        Some(1),
        "only inheritFromIAMRole: {credentials:?}"
    );
    assert_eq!(at(credentials, "inheritFromIAMRole"), &Value::Bool(true));
    for (what, pod) in pod_specs(docs) {
        let tokens: BTreeMap<&str, &Value> = list(pod, "volumes")
            .iter()
            .filter_map(|v| {
                list(v, "projected.sources")
                    .iter()
                    .find(|s| !at(s, "serviceAccountToken").is_null())
                    .map(|s| (text(v, "name"), at(s, "serviceAccountToken")))
            })
            .collect();
        assert_eq!(
            tokens.len(),
            1,
            "aws {what}: one projected service account token: {tokens:?}"
        );
        let (volume, token) = tokens.into_iter().next().unwrap();
        assert_eq!(text(token, "audience"), "sts.amazonaws.com", "aws {what}");
        for c in containers(pod) {
            let what = format!("aws {what} {}", text(c, "name"));
            assert!(
                env_var(c, "AWS_ACCESS_KEY_ID").is_none(),
                "{what}: no keys with IRSA"
            );
            assert!(
                env_var(c, "AWS_SECRET_ACCESS_KEY").is_none(),
                "{what}: no keys with IRSA"
            );
            assert_eq!(env_var(c, "AWS_ROLE_ARN").as_deref(), Some(role), "{what}");
            let token_file =
                env_var(c, "AWS_WEB_IDENTITY_TOKEN_FILE").expect("AWS_WEB_IDENTITY_TOKEN_FILE");
            let mount = list(c, "volumeMounts")
                .iter()
                .find(|m| text(m, "name") == volume)
                .unwrap_or_else(|| panic!("{what}: the token volume is not mounted"));
            assert_eq!(
                token_file,
                format!("{}/{}", text(mount, "mountPath"), text(token, "path")),
                "{what}"
            );
        }
    }

    // Nowhere: a credential as a literal value or on a command line.
    for overlay in OVERLAYS {
        for (what, pod) in pod_specs(&rendered()[overlay]) {
            for c in containers(pod) {
                for e in list(c, "env") {
                    let name = text(e, "name");
                    if name.contains("SECRET")
                        || name.contains("PASSWORD")
                        || name == "AWS_ACCESS_KEY_ID"
                    {
                        assert!(
                            at(e, "value").is_null(),
                            "{overlay} {what}: {name} is a literal"
                        );
                    }
                }
                for arg in strings(c, "args").iter().chain(&strings(c, "command")) {
                    let lower = arg.to_lowercase();
                    assert!(
                        !lower.contains("secret") && !lower.contains("access-key"),
                        "{overlay} {what}: {arg}"
                    );
                }
            }
        }
    }
}

/// CloudNativePG's `ParsePolicy` (barman-cloud pkg/utils/barman.go): "30d" → Barman's policy.
fn cnpg_policy(short: &str) -> String {
    let (n, unit) = short.split_at(short.len() - 1);
    let n: u32 = n.parse().expect("a number of days, weeks or months");
    let unit = match unit {
        "d" => "DAYS",
        "w" => "WEEKS",
        "m" => "MONTHS",
        _ => panic!("not a CNPG retention policy: {short}"),
    };
    format!("RECOVERY WINDOW OF {n} {unit}")
}

#[test]
fn daily_backup_at_two_and_a_thirty_day_recovery_window() {
    for overlay in OVERLAYS {
        let docs = &rendered()[overlay];
        let scheduled = find(docs, "ScheduledBackup", "pg-main-daily");
        assert_eq!(text(scheduled, "spec.schedule"), "0 0 2 * * *", "{overlay}");
        assert_eq!(text(scheduled, "spec.cluster.name"), "pg-main", "{overlay}");
        assert_eq!(
            text(scheduled, "spec.method"),
            "barmanObjectStore",
            "{overlay}"
        );

        let cluster = find(docs, "Cluster", "pg-main");
        let policy = text(cluster, "spec.backup.retentionPolicy");
        assert_eq!(policy, "30d", "{overlay}");
        let store = at(cluster, "spec.backup.barmanObjectStore");
        assert_eq!(text(store, "wal.compression"), "gzip", "{overlay}");
        assert_eq!(at(store, "wal.maxParallel").as_u64(), Some(2), "{overlay}");
        assert_eq!(text(store, "data.compression"), "gzip", "{overlay}");

        // The standalone archive's retention job: daily, the same window, the sidecar's archive.
        let job = find(docs, "CronJob", "barnacle-retention");
        let schedule: Vec<&str> = text(job, "spec.schedule").split_whitespace().collect();
        assert_eq!(schedule.len(), 5, "{overlay}: a Kubernetes cron line");
        assert!(
            schedule[0].parse::<u32>().is_ok() && schedule[1].parse::<u32>().is_ok(),
            "{overlay}: {schedule:?}"
        );
        assert_eq!(schedule[2..], ["*", "*", "*"], "{overlay}: daily");
        assert_eq!(text(job, "spec.timeZone"), "Etc/UTC", "{overlay}");
        assert_eq!(text(job, "spec.concurrencyPolicy"), "Forbid", "{overlay}");
        let pod = at(job, "spec.jobTemplate.spec.template.spec");
        let c = &list(pod, "containers")[0];
        assert_eq!(text(c, "image"), barnacle_image());
        let args = strings(c, "args");
        assert_eq!(args[0], "delete", "{overlay}: barnacle delete");
        assert_eq!(
            arg_after(&args, "-r"),
            Some("RECOVERY WINDOW OF 30 DAYS"),
            "{overlay}"
        );
        assert_eq!(
            cnpg_policy(policy),
            "RECOVERY WINDOW OF 30 DAYS",
            "{overlay}: the same window as CNPG's"
        );
        let sidecar = sidecar(docs);
        assert_eq!(
            args[args.len() - 2..],
            strings(sidecar, "args")[strings(sidecar, "args").len() - 2..]
        );
    }
}

fn sidecar(docs: &[Value]) -> &Value {
    let sts = find(docs, "StatefulSet", "pg-standalone");
    let init = list(sts, "spec.template.spec.initContainers");
    init.iter()
        .find(|c| text(c, "name") == "barnacle")
        .expect("the barnacle sidecar")
}

fn postgres(docs: &[Value]) -> &Value {
    let sts = find(docs, "StatefulSet", "pg-standalone");
    let main = list(sts, "spec.template.spec.containers");
    main.iter()
        .find(|c| text(c, "name") == "postgres")
        .expect("the postgres container")
}

#[test]
fn ceph_rgw_with_path_style_on_bare_metal_and_native_s3_on_aws() {
    let docs = &rendered()["baremetal"];
    let store = at(
        find(docs, "Cluster", "pg-main"),
        "spec.backup.barmanObjectStore",
    );
    assert_eq!(text(store, "endpointURL"), RGW_ENDPOINT);
    assert!(text(store, "destinationPath").starts_with("s3://cnpg-backups/"));
    for path in [
        "wal.archiveAdditionalCommandArgs",
        "wal.restoreAdditionalCommandArgs",
        "data.additionalCommandArgs",
        "data.restoreAdditionalCommandArgs",
    ] {
        assert_eq!(
            strings(store, path),
            ["--addressing-style=path"],
            "baremetal Cluster {path}"
        );
    }
    let job = find(docs, "CronJob", "barnacle-retention");
    let job_args = strings(
        &list(job, "spec.jobTemplate.spec.template.spec.containers")[0],
        "args",
    );
    for (what, args) in [
        ("sidecar", strings(sidecar(docs), "args")),
        ("retention", job_args),
    ] {
        assert_eq!(
            arg_after(&args, "--endpoint-url"),
            Some(RGW_ENDPOINT),
            "baremetal {what}: {args:?}"
        );
        assert_eq!(
            arg_after(&args, "--addressing-style"),
            Some("path"),
            "baremetal {what}: {args:?}"
        );
    }
    let options =
        env_var(postgres(docs), "BARNACLE_STORE_OPTIONS").expect("BARNACLE_STORE_OPTIONS");
    assert_eq!(
        options,
        format!("--endpoint-url {RGW_ENDPOINT} --addressing-style path")
    );
    for (what, pod) in pod_specs(docs) {
        for c in containers(pod) {
            assert_eq!(
                env_var(c, "AWS_EC2_METADATA_DISABLED").as_deref(),
                Some("true"),
                "baremetal {what}"
            );
        }
    }

    let docs = &rendered()["aws"];
    let store = at(
        find(docs, "Cluster", "pg-main"),
        "spec.backup.barmanObjectStore",
    );
    assert!(at(store, "endpointURL").is_null(), "native S3: no endpoint");
    assert!(text(store, "destinationPath").starts_with("s3://"));
    let cluster = find(docs, "Cluster", "pg-main");
    let region = list(cluster, "spec.env")
        .iter()
        .find(|e| text(e, "name") == "AWS_REGION");
    assert_eq!(region.map(|e| text(e, "value")), Some("af-south-1"));
    for (what, pod) in pod_specs(docs) {
        for c in containers(pod) {
            let args = strings(c, "args").join(" ");
            assert!(!args.contains("--endpoint-url"), "aws {what}: {args}");
            assert_eq!(
                env_var(c, "AWS_REGION").as_deref(),
                Some("af-south-1"),
                "aws {what}"
            );
        }
    }
    assert_eq!(
        env_var(postgres(docs), "BARNACLE_STORE_OPTIONS").as_deref(),
        Some("")
    );
}

#[test]
fn standalone_sidecar_archives_where_postgresql_does_and_is_scraped() {
    for overlay in OVERLAYS {
        let docs = &rendered()[overlay];
        let sts = find(docs, "StatefulSet", "pg-standalone");
        let side = sidecar(docs);
        let pg = postgres(docs);
        assert_eq!(text(side, "image"), barnacle_image(), "{overlay}");
        // A native sidecar: started before PostgreSQL, stopped after it.
        assert_eq!(text(side, "restartPolicy"), "Always", "{overlay}");
        let args = strings(side, "args");
        assert_eq!(args[0], "sidecar", "{overlay}: barnacle sidecar");
        let pgdata = env_var(pg, "PGDATA").expect("PGDATA");
        assert_eq!(
            arg_after(&args, "--pgdata"),
            Some(pgdata.as_str()),
            "{overlay}"
        );
        assert_eq!(arg_after(&args, "--max-parallel"), Some("2"), "{overlay}");
        let listen = arg_after(&args, "--listen").expect("--listen");
        let (destination, server) = (&args[args.len() - 2], &args[args.len() - 1]);
        assert!(destination.starts_with("s3://"), "{overlay}: {args:?}");

        // PostgreSQL archives to the same place through walpush, with the values in its env.
        let pg_args = strings(pg, "args");
        let archive_command = pg_args
            .iter()
            .find_map(|a| a.strip_prefix("archive_command="))
            .expect("archive_command");
        assert_eq!(archive_command, ARCHIVE_COMMAND, "{overlay}");
        assert!(
            pg_args.iter().any(|a| a == "archive_mode=on"),
            "{pg_args:?}"
        );
        assert_eq!(
            env_var(pg, "BARNACLE_DESTINATION_URL").as_deref(),
            Some(destination.as_str()),
            "{overlay}"
        );
        assert_eq!(
            env_var(pg, "BARNACLE_SERVER_NAME").as_deref(),
            Some(server.as_str()),
            "{overlay}"
        );
        assert!(env_var(pg, "BARNACLE_STORE_OPTIONS").is_some(), "{overlay}");

        // The daily base backup of the standalone server: the sidecar's schedule, CNPG's cron
        // syntax and time, through the socket directory both containers mount.
        assert_eq!(
            arg_after(&args, "--backup-schedule"),
            Some("0 0 2 * * *"),
            "{overlay}"
        );
        let socket_dir = env_var(side, "PGHOST").expect("PGHOST for backups");
        for c in [side, pg] {
            assert!(
                list(c, "volumeMounts")
                    .iter()
                    .any(|m| text(m, "mountPath") == socket_dir),
                "{overlay}: {socket_dir} is not shared"
            );
        }

        // Both mount the data volume at the same place; the sidecar's port is `metrics`.
        for c in [side, pg] {
            let data = list(c, "volumeMounts")
                .iter()
                .find(|m| text(m, "name") == "data");
            assert!(
                pgdata.starts_with(data.map(|m| text(m, "mountPath")).unwrap_or("-")),
                "{overlay}"
            );
        }
        let port = list(side, "ports")
            .iter()
            .find(|p| text(p, "name") == "metrics")
            .expect("metrics port");
        assert_eq!(
            listen,
            format!("0.0.0.0:{}", at(port, "containerPort").as_u64().unwrap())
        );
        assert_eq!(text(side, "livenessProbe.httpGet.path"), "/healthz");
        assert_eq!(text(side, "livenessProbe.httpGet.port"), "metrics");
        assert!(
            at(side, "readinessProbe").is_null(),
            "{overlay}: a store outage must not unready PostgreSQL"
        );

        let service = find(docs, "Service", "pg-standalone");
        let labels = at(sts, "spec.template.metadata.labels");
        for (k, v) in at(service, "spec.selector").as_mapping().expect("selector") {
            assert_eq!(
                labels.get(k),
                Some(v),
                "{overlay}: the Service selects the pods"
            );
        }
        let service_port = list(service, "spec.ports")
            .iter()
            .find(|p| text(p, "name") == "metrics");
        assert_eq!(
            service_port.map(|p| text(p, "targetPort")),
            Some("metrics"),
            "{overlay}"
        );
        let monitor = find(docs, "ServiceMonitor", "pg-standalone-barnacle");
        for (k, v) in at(monitor, "spec.selector.matchLabels")
            .as_mapping()
            .expect("matchLabels")
        {
            assert_eq!(
                at(service, "metadata.labels").get(k),
                Some(v),
                "{overlay}: the ServiceMonitor selects the Service"
            );
        }
        let endpoint = &list(monitor, "spec.endpoints")[0];
        assert_eq!(text(endpoint, "port"), "metrics");
        assert_eq!(text(endpoint, "path"), "/metrics");
    }
}

#[test]
fn images_flux_and_helm_alternatives_agree_with_the_manifests() {
    let base = &rendered()["base"];
    let cluster = find(base, "Cluster", "pg-main");
    let image = text(cluster, "spec.imageName");
    assert_eq!(image, "registry.example.com/barnacle-cnpg-postgres:15");
    let recipe = fs::read_to_string(k8s_dir().join("../cnpg-postgres/Dockerfile")).unwrap();
    assert!(
        recipe.contains(&barnacle_image()),
        "docker/cnpg-postgres/Dockerfile's default BARNACLE_IMAGE"
    );

    // Flux Kustomizations name overlay directories that exist.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut overlays_seen = Vec::new();
    for file in ["barnacle-aws.yaml", "barnacle-baremetal.yaml"] {
        let doc = &load_docs(&k8s_dir().join("flux").join(file))[0];
        let path = text(doc, "spec.path");
        assert!(
            repo.join(path).join("kustomization.yaml").exists(),
            "{file}: {path}"
        );
        overlays_seen.push(path.rsplit('/').next().unwrap().to_string());
        assert_eq!(at(doc, "spec.prune"), &Value::Bool(true));
    }
    assert_eq!(overlays_seen, OVERLAYS);
    let baremetal_flux = &load_docs(&k8s_dir().join("flux/barnacle-baremetal.yaml"))[0];
    assert_eq!(
        text(baremetal_flux, "spec.decryption.provider"),
        "sops",
        "the Secret is SOPS-encrypted"
    );

    // The HelmRelease gives CNPG's cluster chart the same settings as the bare-metal Cluster.
    let docs = &rendered()["baremetal"];
    let store = at(
        find(docs, "Cluster", "pg-main"),
        "spec.backup.barmanObjectStore",
    );
    let release = &load_docs(&k8s_dir().join("flux/pg-main-helmrelease.yaml"))[0];
    let values = at(release, "spec.values");
    assert_eq!(text(values, "cluster.imageName"), image);
    assert_eq!(at(values, "cluster.postgresUID").as_u64(), Some(65534));
    assert_eq!(
        text(values, "backups.endpointURL"),
        text(store, "endpointURL")
    );
    assert_eq!(
        text(values, "backups.destinationPath"),
        text(store, "destinationPath")
    );
    assert_eq!(
        text(values, "backups.secret.name"),
        text(store, "s3Credentials.accessKeyId.name")
    );
    assert_eq!(text(values, "backups.retentionPolicy"), "30d");
    assert_eq!(text(values, "backups.wal.compression"), "gzip");
    assert_eq!(at(values, "backups.wal.maxParallel").as_u64(), Some(2));
    let scheduled = &list(values, "backups.scheduledBackups")[0];
    assert_eq!(text(scheduled, "schedule"), "0 0 2 * * *");
}

/// Runs barnacle under `name` with `args` and `--help` last: clap stops at `--help`, so exit 0
/// means every option (and its value) before it is one this barnacle accepts.
fn accepted(name: &str, args: &[String]) {
    let ran = run(harness::barnacle(name).env_clear().args(args).arg("--help"));
    assert_eq!(
        ran.code, 0,
        "{name} {args:?} is not accepted: {}",
        ran.stderr
    );
}

#[test]
fn manifest_command_lines_parse_with_this_barnacle() {
    for overlay in OVERLAYS {
        let docs = &rendered()[overlay];
        // The sidecar, as the StatefulSet runs it (`barnacle` is the image's entrypoint).
        accepted("barnacle", &strings(sidecar(docs), "args"));
        // The retention job (`barnacle` is the image's entrypoint).
        let job = find(docs, "CronJob", "barnacle-retention");
        let job_container = &list(job, "spec.jobTemplate.spec.template.spec.containers")[0];
        accepted("barnacle", &strings(job_container, "args"));
        // archive_command as /bin/sh expands it.
        let pg = postgres(docs);
        let value = |var: &str| env_var(pg, var).unwrap_or_else(|| panic!("{var}"));
        let mut argv: Vec<String> = value("BARNACLE_STORE_OPTIONS")
            .split_whitespace()
            .map(String::from)
            .collect();
        argv.push(value("BARNACLE_DESTINATION_URL"));
        argv.push(value("BARNACLE_SERVER_NAME"));
        argv.push("pg_wal/000000010000000000000001".into());
        accepted("walpush", &argv);
        // What CloudNativePG adds to its own argument vectors (docker/README.md).
        let store = at(
            find(docs, "Cluster", "pg-main"),
            "spec.backup.barmanObjectStore",
        );
        for (name, path) in [
            (
                "barman-cloud-wal-archive",
                "wal.archiveAdditionalCommandArgs",
            ),
            (
                "barman-cloud-wal-restore",
                "wal.restoreAdditionalCommandArgs",
            ),
            ("barman-cloud-backup", "data.additionalCommandArgs"),
            ("barman-cloud-restore", "data.restoreAdditionalCommandArgs"),
        ] {
            accepted(name, &strings(store, path));
        }
    }
}

#[test]
fn renderer_merges_like_kustomize() {
    let mut sts: Value = serde_yaml::from_str(
        "spec: {template: {spec: {containers: [{name: a, args: [x, y], env: [{name: K, value: '1'}, {name: L, value: '2'}]}, {name: b}]}}}",
    )
    .unwrap();
    let patch: Value = serde_yaml::from_str(
        "spec: {template: {spec: {containers: [{name: a, args: [z], env: [{name: L, value: '3'}, {name: M, value: '4'}, {name: K, $patch: delete}]}, {name: c}], dnsPolicy: null}}}",
    )
    .unwrap();
    strategic_merge(&mut sts, &patch, true);
    let expected: Value = serde_yaml::from_str(
        "spec: {template: {spec: {containers: [{name: a, args: [z], env: [{name: L, value: '3'}, {name: M, value: '4'}]}, {name: b}, {name: c}]}}}",
    )
    .unwrap();
    assert_eq!(sts, expected);

    // Custom resources: JSON merge patch semantics, lists replaced whole.
    let mut cluster: Value =
        serde_yaml::from_str("spec: {env: [{name: A, value: '1'}], instances: 2}").unwrap();
    let patch: Value =
        serde_yaml::from_str("spec: {env: [{name: B, value: '2'}], instances: null}").unwrap();
    strategic_merge(&mut cluster, &patch, false);
    assert_eq!(
        cluster,
        serde_yaml::from_str::<Value>("spec: {env: [{name: B, value: '2'}]}").unwrap()
    );
    assert!(
        is_builtin("v1") && is_builtin("apps/v1") && is_builtin("rbac.authorization.k8s.io/v1")
    );
    assert!(!is_builtin("postgresql.cnpg.io/v1") && !is_builtin("monitoring.coreos.com/v1"));
}

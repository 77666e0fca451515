//! The shipped examples are valid YAML and say what the README says they do.

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

fn load(relative: &str) -> Vec<Yaml> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{relative}: {e}"));
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{relative} is not valid YAML: {e}"))
}

fn strings(list: &Yaml) -> Vec<String> {
    list.as_vec()
        .expect("a list")
        .iter()
        .map(|y| y.as_str().expect("a string").to_string())
        .collect()
}

#[test]
fn the_kubernetes_deployment_gates_on_pgwait_with_a_secret() {
    let docs = load("examples/kubernetes/deployment.yaml");
    let deployment = &docs[0];
    assert_eq!(deployment["apiVersion"].as_str(), Some("apps/v1"));
    assert_eq!(deployment["kind"].as_str(), Some("Deployment"));
    let spec = &deployment["spec"]["template"]["spec"];
    let init = &spec["initContainers"][0];
    assert!(init["image"].as_str().unwrap().contains("pgwait"));
    let env = init["env"].as_vec().unwrap();
    let password_file = env
        .iter()
        .find(|e| e["name"].as_str() == Some("PGWAIT_PASSWORD_FILE"))
        .expect("password file");
    let mount = init["volumeMounts"][0]["mountPath"].as_str().unwrap();
    assert!(password_file["value"].as_str().unwrap().starts_with(mount));
    let volume = &spec["volumes"][0];
    assert_eq!(
        volume["name"].as_str(),
        init["volumeMounts"][0]["name"].as_str()
    );
    let app = &spec["containers"][0];
    let secret_ref = app["env"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|e| e["name"].as_str() == Some("PGPASSWORD"))
        .unwrap();
    let secret_name = secret_ref["valueFrom"]["secretKeyRef"]["name"]
        .as_str()
        .unwrap();
    assert_eq!(volume["secret"]["secretName"].as_str(), Some(secret_name));
    let probe = strings(&app["readinessProbe"]["exec"]["command"]);
    assert!(
        probe[0].ends_with("pgwait") && probe.contains(&"--once".to_string()),
        "{probe:?}"
    );

    let secret = &load("examples/kubernetes/secret.yaml")[0];
    assert_eq!(secret["kind"].as_str(), Some("Secret"));
    assert_eq!(secret["metadata"]["name"].as_str(), Some(secret_name));
    assert!(secret["stringData"]["password"].as_str().is_some());
}

#[test]
fn the_compose_demo_gates_the_app_on_a_pgwait_healthcheck() {
    let compose = &load("docker/compose.yaml")[0];
    let services = &compose["services"];
    let test = strings(&services["db"]["healthcheck"]["test"]);
    assert!(
        test.iter().any(|a| a.ends_with("pgwait")) && test.contains(&"--once".to_string()),
        "{test:?}"
    );
    assert_eq!(
        services["app"]["depends_on"]["db"]["condition"].as_str(),
        Some("service_healthy")
    );
    assert!(
        compose["version"].is_badvalue(),
        "no top-level version: valid for Compose v1.27+ and v2"
    );
}

#[test]
fn the_first_command_in_the_readme_shows_the_whole_main_job() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(readme.contains("examples/try.sh"), "README's first command");
    let out =
        std::process::Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/try.sh"))
            .env("PGWAIT", env!("CARGO_BIN_EXE_pgwait"))
            .output()
            .expect("run examples/try.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // It waited (the server came a second later), logged in, and only then ran the command.
    let waited = stderr
        .find("waiting for 127.0.0.1:")
        .expect("a waiting line");
    let ready = stderr.find("ready after").expect("a ready line");
    assert!(waited < ready, "{stderr}");
    assert!(stdout.contains("the app starts now"), "{stdout}");
}

/// The three cloud-login examples: a service account bound to a cloud identity, the pod using
/// it, and an init container that logs in with `--iam` and no password, over verified TLS; and
/// pgwait accepts its arguments and environment as written (no usage error).
#[test]
fn the_cloud_login_examples_use_the_pods_identity_and_no_password() {
    let table = [
        (
            "examples/kubernetes/iam-eks.yaml",
            "aws",
            "eks.amazonaws.com/role-arn",
        ),
        (
            "examples/kubernetes/iam-aks.yaml",
            "azure",
            "azure.workload.identity/client-id",
        ),
        (
            "examples/kubernetes/iam-gke.yaml",
            "gcp",
            "iam.gke.io/gcp-service-account",
        ),
    ];
    for (path, cloud, annotation) in table {
        let docs = load(path);
        let account = &docs[0];
        assert_eq!(account["kind"].as_str(), Some("ServiceAccount"), "{path}");
        assert!(
            account["metadata"]["annotations"][annotation]
                .as_str()
                .is_some(),
            "{path}"
        );
        let spec = &docs[1]["spec"]["template"]["spec"];
        assert_eq!(
            spec["serviceAccountName"], account["metadata"]["name"],
            "{path}"
        );
        let init = &spec["initContainers"][0];
        let args = strings(&init["args"]);
        let at = args.iter().position(|a| a == "--iam").expect("--iam");
        assert_eq!(args[at + 1], cloud, "{path}");
        let env: Vec<(String, String)> = init["env"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["name"].as_str().unwrap().into(),
                    e["value"].as_str().unwrap().into(),
                )
            })
            .collect();
        for (name, value) in &env {
            assert!(!name.contains("PASSWORD"), "{path}: {name}");
            if name == "PGSSLMODE" {
                assert!(value.starts_with("verify-"), "{path}: {value}");
            }
        }
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pgwait"))
            .env_clear()
            .envs(env.iter().map(|(n, v)| (n.as_str(), v.as_str())))
            .args(&args)
            .args(["--once", "--connect-timeout", "1s", "-t", "2s"])
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(2), "{path}: {log}");
    }
    let aks = &load("examples/kubernetes/iam-aks.yaml")[1];
    let labels = &aks["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["azure.workload.identity/use"].as_str(), Some("true"));
}

/// The native-sidecar pod starts the proxy first (restartPolicy: Always, a startup probe), then
/// pgwait, then the app; the migration Job maps pgwait's exit codes: 2 and 3 fail the Job, 1 is
/// retried — the codes pgwait documents (docs/behaviour.md).
#[test]
fn the_sidecar_pod_and_the_migration_job_use_pgwaits_order_and_exit_codes() {
    let pod = &load("examples/kubernetes/native-sidecar.yaml")[0];
    let inits = pod["spec"]["initContainers"].as_vec().unwrap();
    assert_eq!(inits[0]["restartPolicy"].as_str(), Some("Always"));
    assert!(inits[0]["startupProbe"]["tcpSocket"]["port"]
        .as_i64()
        .is_some());
    assert!(inits[1]["image"].as_str().unwrap().contains("pgwait"));
    assert!(
        inits[1]["restartPolicy"].is_badvalue(),
        "pgwait runs to completion"
    );

    let job = &load("examples/kubernetes/migrate-job.yaml")[0];
    assert_eq!(job["kind"].as_str(), Some("Job"));
    let rules = job["spec"]["podFailurePolicy"]["rules"].as_vec().unwrap();
    let codes = |action: &str| -> Vec<i64> {
        rules
            .iter()
            .filter(|r| r["action"].as_str() == Some(action))
            .flat_map(|r| {
                r["onExitCodes"]["values"]
                    .as_vec()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_i64().unwrap())
            })
            .collect()
    };
    assert_eq!(codes("FailJob"), vec![2, 3]);
    assert_eq!(codes("Count"), vec![1]);
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    let named = rules
        .iter()
        .all(|r| r["onExitCodes"]["containerName"] == container["name"]);
    assert!(named, "the rules name the container that runs pgwait");
    let command = strings(&container["command"]);
    assert!(
        command[0].ends_with("pgwait") && command.contains(&"--".to_string()),
        "{command:?}"
    );
    // The codes the Job relies on are the ones pgwait documents.
    let behaviour =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/behaviour.md"))
            .unwrap();
    for (code, meaning) in [
        (1, "not ready"),
        (2, "usage or configuration error"),
        (3, "permanent rejection"),
    ] {
        assert!(
            behaviour.contains(&format!("| {code} | {meaning}")),
            "docs/behaviour.md: {code}"
        );
    }
}

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! A service's settings are checked one way, whether they come from the
//! inputs of a single-app deploy or from a manifest entry: one table of
//! bad values goes through `deploy`'s inputs and through `plan` and
//! `deploy` with a manifest, and each is refused — in the same words —
//! before anything runs. And every bad input is reported at once, whatever
//! section of the configuration it belongs to.

mod common;

use common::{Job, StepResult};

/// (input name, manifest field, platform, bad value).
const BAD: &[(&str, &str, &str, &str)] = &[
    ("slot", "slot", "app-service", "production"),
    ("slot", "slot", "app-service", "Production"),
    ("slot", "slot", "app-service", "bad slot!"),
    ("slot", "slot", "app-service", "a/b"),
    ("app-name", "app", "app-service", "a/b"),
    ("app-name", "app", "app-service", "x y"),
    ("resource-group", "resource-group", "app-service", "rg/../x"),
    ("health-path", "health-path", "app-service", "health"),
    ("health-path", "health-path", "app-service", "/a b"),
    ("version-path", "version-path", "app-service", "version"),
    (
        "expected-version",
        "version",
        "app-service",
        "two point four",
    ),
    ("canary", "canary", "app-service", "banana"),
    ("canary", "canary", "app-service", "50,10"),
    ("canary", "canary", "app-service", "0,100"),
    (
        "image",
        "image",
        "container-apps",
        "contoso.azurecr.io/p 2.4.1",
    ),
    ("container", "container", "container-apps", "Api_1"),
    ("slot", "slot", "static-web-apps", "production"),
    ("slot", "slot", "static-web-apps", "bad env!"),
    (
        "package",
        "package",
        "static-web-apps",
        "http://st.blob.core.windows.net/s/${version}.zip",
    ),
    (
        "package",
        "package",
        "static-web-apps",
        "https://st.blob.core.windows.net/s/site.zip",
    ),
    (
        "package",
        "package",
        "static-web-apps",
        "site-${version}.zip",
    ),
    ("app-name", "app", "kubernetes", "Payments"),
    ("app-name", "app", "kubernetes", "pay_ments"),
    ("namespace", "namespace", "kubernetes", "Shop_1"),
    ("namespace", "namespace", "kubernetes", "a/b"),
    ("service", "service", "kubernetes", "pay ments"),
    ("strategy", "strategy", "kubernetes", "rolling"),
    ("kube-context", "kube-context", "kubernetes", "prod\teu"),
    (
        "production-url",
        "production-url",
        "kubernetes",
        "http://payments.example.com",
    ),
    (
        "production-url",
        "production-url",
        "kubernetes",
        "https://payments.example.com/?token=x",
    ),
    ("image", "image", "kubernetes", "registry.test/p 2.4.1"),
];

/// A kubeconfig that names a cluster (never reached: validation fails first).
const KUBECONFIG: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\nusers:\n- name: u\n  user:\n    token: not-used\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n";

/// The Static Web Apps build every good service names.
const ZIPS: &str = "https://st.blob.core.windows.net/store/store-${version}.zip";

/// A deploy job whose Azure sign-in is complete (never used: validation
/// fails first) for one app on `platform`.
fn deploy_inputs(platform: &str) -> Job {
    let j = Job::new()
        .input("command", "deploy")
        .input("client-id", "00000000-0000-0000-0000-000000000001")
        .input("tenant-id", "00000000-0000-0000-0000-000000000002")
        .input("subscription-id", "00000000-0000-0000-0000-000000000003")
        .input("client-secret", "not-used")
        .input("lock", "none")
        .input("app-name", "app-contoso-payments")
        .input("resource-group", "rg-contoso-prod")
        .input("expected-version", "2.4.1")
        .input("platform", platform);
    match platform {
        "container-apps" => j.input("image", "contoso.azurecr.io/p:2.4.1"),
        "static-web-apps" => j.input("package", ZIPS),
        "kubernetes" => j
            .input("app-name", "payments")
            .input("image", "registry.test/p:2.4.1")
            .input("kubeconfig", KUBECONFIG),
        _ => j,
    }
}

/// A manifest with one good service and one whose `field` is `value`.
fn manifest(field: &str, platform: &str, value: &str) -> String {
    let swa =
        format!("    platform: static-web-apps\n    app: swa-contoso-store\n    package: {ZIPS}\n");
    let target = match platform {
        "container-apps" => {
            "    platform: container-apps\n    app: ca-contoso-notify\n    image: contoso.azurecr.io/n:${version}\n"
        }
        "static-web-apps" => swa.as_str(),
        "kubernetes" => {
            "    platform: kubernetes\n    app: payments\n    namespace: shop\n    image: registry.test/p:${version}\n"
        }
        _ => "    app: app-contoso-payments\n",
    };
    // A YAML double-quoted scalar holds any of the table's values.
    let quoted = serde_json::to_string(value).unwrap();
    let target: String = target
        .lines()
        .filter(|l| !l.trim_start().starts_with(&format!("{field}:")))
        .map(|l| format!("{l}\n"))
        .collect();
    format!(
        "version: 1\ndefaults:\n  resource-group: rg-contoso-prod\nservices:\n  - name: core\n    platform: command\n    deploy: 'true'\n    verify: 'true'\n  - name: web\n{target}    {field}: {quoted}\n    depends_on: [core]\n"
    )
}

/// The one error line naming `what`, with the prefix up to `what` removed.
fn refusal<'a>(r: &'a StepResult, what: &str) -> Option<&'a str> {
    r.error_lines()
        .into_iter()
        .find_map(|l| l.find(what).map(|i| &l[i + what.len()..]))
}

#[test]
fn one_table_of_bad_values_is_refused_the_same_way_by_inputs_and_manifests() {
    for (input, field, platform, value) in BAD {
        let by_input = deploy_inputs(platform).input(input, value).run_main();
        assert_eq!(
            by_input.code,
            1,
            "{input}={value:?}: {}",
            by_input.all_text()
        );
        let said = refusal(&by_input, &format!("input '{input}': "))
            .unwrap_or_else(|| {
                panic!(
                    "{input}={value:?} was not refused:\n{}",
                    by_input.all_text()
                )
            })
            .to_string();
        // The manifest says the same after naming the service and field.
        for command in ["plan", "deploy"] {
            let job = if command == "plan" {
                Job::new().input("command", "plan")
            } else {
                deploy_inputs("app-service")
                    .input("app-name", "")
                    .input("platform", "")
                    .input("image", "")
                    .input("expected-version", "2.4.1")
            };
            std::fs::create_dir_all(job.workspace().join(".github")).unwrap();
            std::fs::write(
                job.workspace().join(".github/expedite.yml"),
                manifest(field, platform, value),
            )
            .unwrap();
            let r = job.input("manifest", ".github/expedite.yml").run_main();
            assert_eq!(r.code, 1, "{command}, {field}: {value:?}: {}", r.all_text());
            let in_manifest =
                refusal(&r, &format!("service 'web': {field}: ")).unwrap_or_else(|| {
                    panic!(
                        "{command}: {field}: {value:?} was not refused:\n{}",
                        r.all_text()
                    )
                });
            assert!(
                in_manifest.starts_with(said.trim_end()),
                "{command}: {field}: {value:?}\n  inputs say:   {said}\n  manifest says: {in_manifest}"
            );
            assert_eq!(r.output("stages"), None, "{command}: a plan was printed");
        }
    }
}

#[test]
fn a_manifest_setting_of_another_platform_is_refused() {
    for (platform, field, value) in [
        ("app-service", "image", "contoso.azurecr.io/p:1"),
        ("app-service", "deploy", "./deploy.sh"),
        ("container-apps", "slot", "staging"),
        ("container-apps", "package", "app.zip"),
        ("command", "canary", "10,50"),
        ("command", "app", "app-contoso-payments"),
        ("static-web-apps", "image", "contoso.azurecr.io/p:1"),
        ("static-web-apps", "container", "web"),
    ] {
        let service = match platform {
            "command" => "    platform: command\n    deploy: 'true'\n    verify: 'true'\n",
            "container-apps" => {
                "    platform: container-apps\n    app: ca-n\n    image: contoso.azurecr.io/n:1\n"
            }
            "static-web-apps" => {
                "    platform: static-web-apps\n    app: swa-n\n    package: https://s.example/${version}.zip\n"
            }
            _ => "    app: app-contoso-payments\n",
        };
        let job = Job::new().input("command", "plan");
        std::fs::create_dir_all(job.workspace().join(".github")).unwrap();
        std::fs::write(
            job.workspace().join(".github/expedite.yml"),
            format!(
                "version: 1\ndefaults:\n  resource-group: rg\nservices:\n  - name: web\n{service}    {field}: '{value}'\n"
            ),
        )
        .unwrap();
        let r = job.input("manifest", ".github/expedite.yml").run_main();
        assert_eq!(r.code, 1, "{platform} with {field}: {}", r.all_text());
        assert!(
            refusal(
                &r,
                &format!("service 'web': `{field}` is not a setting of platform {platform}")
            )
            .is_some(),
            "{platform} with {field}: {}",
            r.all_text()
        );
    }
}

#[test]
fn bad_inputs_in_five_sections_are_all_reported_at_once() {
    // No Azure sign-in at all (one section), and one bad value in each of
    // four others: the deploy, the canary, the lock, the common settings.
    let r = Job::new()
        .input("command", "deploy")
        .input("app-name", "app-contoso-payments")
        .input("resource-group", "rg-contoso-prod")
        .input("expected-version", "2.4.1")
        .input("platform", "k8s")
        .input("canary", "banana")
        .input("lock", "maybe")
        .input("timeout", "soon")
        .run_main();
    assert_eq!(r.code, 1, "{}", r.all_text());
    let errors = r.error_lines();
    for input in ["client-id", "platform", "canary", "lock", "timeout"] {
        assert!(
            errors
                .iter()
                .any(|l| l.contains(&format!("input '{input}'"))),
            "{input} not reported: {errors:#?}"
        );
    }
}

/// A peer action's name for an input (`slot-name` in azure/webapps-deploy,
/// `creds` in azure/login, `imageToDeploy` in the Container Apps action)
/// is that input: every alias the spec declares is accepted from `with:`
/// and checked as its input — a bad value is refused under the input's own
/// name — and the same input given twice with different values is refused.
#[test]
fn every_alias_resolves_to_its_input() {
    let mut checked = 0;
    for spec in expedite::config::INPUTS {
        for alias in spec.aliases {
            let job = deploy_inputs("container-apps")
                .input(spec.name, "")
                .input(alias, "bad value!");
            let r = job.run_main();
            assert_eq!(r.code, 1, "{alias}: {}", r.all_text());
            assert!(
                !r.all_text().contains("is not an input of expedite"),
                "{alias} was not recognised: {}",
                r.all_text()
            );
            assert!(
                refusal(&r, &format!("input '{}': ", spec.name)).is_some(),
                "{alias} did not reach '{}': {}",
                spec.name,
                r.all_text()
            );
            checked += 1;
        }
    }
    assert!(checked >= 7, "{checked} aliases");
    let r = deploy_inputs("app-service")
        .input("slot", "blue")
        .input("slot-name", "green")
        .run_main();
    assert_eq!(r.code, 1, "{}", r.all_text());
    assert!(
        refusal(&r, "input 'slot': ").is_some_and(|t| t.contains("given twice")),
        "{}",
        r.all_text()
    );
    // azure/login's `environment` (the Azure cloud) is not this one.
    let r = deploy_inputs("app-service")
        .input("environment", "AzureCloud")
        .run_main();
    assert_eq!(r.code, 1, "{}", r.all_text());
    assert!(
        refusal(&r, "input 'environment': ").is_some_and(|t| t.contains("Azure cloud")),
        "{}",
        r.all_text()
    );
}

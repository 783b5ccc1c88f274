//! Fidelity against a client nobody here wrote: the real Azure CLI (the
//! pinned `azure-cli` from PyPI, `.ci/install-az.sh`) registers the sandbox
//! as a custom cloud by endpoint discovery, signs in as its service
//! principal, and runs the hotfix path's commands; then the seed's own
//! scripts (`examples/seed/`, byte-identical to the seed) run through it.
//! Every step is checked against the sandbox's state and request log.
//!
//! Skipped when the CLI (or curl, bash) is missing, unless
//! `EXPEDITE_REQUIRE_AZ_CLI=1` (CI) makes that a failure.
#![cfg(test)]

mod azcli;
mod common;

use azcli::{Az, seed};
use common::*;
use expedite_sandbox::RequestRecord;
use serde_json::Value;

const RG: &str = "rg-contoso-prod";
const STAGING_SCM: &str = "https://app-contoso-payments-staging.scm.azurewebsites.test";
const ARM_HOST: &str = "management.azure.test";

/// Deploys a demo build of `version` to the staging slot through Kudu (the
/// seed's workflow does this with `azure/webapps-deploy`, not the CLI).
async fn stage(env: &Env, version: &str) {
    let manifest = format!(r#"{{"version":"{version}"}}"#);
    let r = env
        .client
        .post(format!("{STAGING_SCM}/api/zipdeploy"))
        .bearer_auth(&env.token)
        .body(zip_with(&[("expedite-demo.json", &manifest)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(versions(env).1, version);
}

/// (production, staging) versions of the payments app.
fn versions(env: &Env) -> (String, String) {
    let v = |slot| env.sb.slot_version(PAYMENTS, slot).unwrap_or_default();
    (v("production"), v("staging"))
}

/// ARM requests logged after `since`.
fn arm_since(env: &Env, since: u64) -> Vec<RequestRecord> {
    env.sb
        .request_log_since(since)
        .into_iter()
        .filter(|r| r.host == ARM_HOST)
        .collect()
}

fn is_write(r: &RequestRecord) -> bool {
    !matches!(r.method.as_str(), "GET" | "HEAD")
}

async fn signed_in(env: &Env, bin: &std::path::Path) -> Az {
    let az = Az::new(bin, &env.settings);
    let since = env.sb.last_seq();
    let login = az.sign_in(&env.settings).await;
    assert_eq!(login[0]["id"], env.settings.subscription_id.as_str());
    assert_eq!(login[0]["tenantId"], env.settings.tenant_id.as_str());
    assert_eq!(login[0]["user"]["type"], "servicePrincipal");
    assert_eq!(login[0]["cloudName"], azcli::CLOUD);
    // Endpoint discovery read the metadata document without a token; the
    // sign-in asked for `{resource}/.default` with the resource id's own
    // trailing slash, and listed the subscriptions.
    let log = env.sb.request_log_since(since);
    let find = |host: &str, path: &str| {
        log.iter()
            .find(|r| r.host == host && r.path.contains(path))
            .unwrap_or_else(|| panic!("no {host}{path} in {log:#?}"))
            .status
    };
    assert_eq!(
        find(ARM_HOST, "/metadata/endpoints?api-version=2022-09-01"),
        200
    );
    assert_eq!(find("login.azure.test", "/oauth2/v2.0/token"), 200);
    assert_eq!(find(ARM_HOST, "/subscriptions?api-version="), 200);
    az
}

#[tokio::test]
async fn the_azure_cli_signs_in_to_the_sandbox_cloud_and_runs_the_hotfix_path() {
    let Some(bin) = azcli::az_or_skip() else {
        return;
    };
    let env = start().await;
    let az = signed_in(&env, &bin).await;
    let version = az.version().await;
    eprintln!("azure-cli {version}");
    if azcli::required() {
        assert_eq!(version, azcli::PINNED_AZ_VERSION);
    }
    let app = ["--name", PAYMENTS, "--resource-group", RG];
    let with = |args: &[&'static str]| [args, &app[..]].concat();

    // `az webapp show`: the site, its config and its publishing profile
    // (`publishxml`, which the CLI reads for the FTP URL).
    let since = env.sb.last_seq();
    let site = az.json(&with(&["webapp", "show"])).await;
    assert_eq!(site["state"], "Running");
    assert_eq!(
        site["defaultHostName"],
        format!("{PAYMENTS}.azurewebsites.test")
    );
    assert!(
        arm_since(&env, since)
            .iter()
            .any(|r| r.method == "POST" && r.path.contains("/publishxml?") && r.status == 200)
    );
    // A slot's profile, as the CLI parses it.
    let profiles = az
        .json(&with(&[
            "webapp",
            "deployment",
            "list-publishing-profiles",
            "--slot",
            "staging",
        ]))
        .await;
    let methods: Vec<&str> = profiles
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["publishMethod"].as_str())
        .collect();
    assert_eq!(methods, ["MSDeploy", "FTP", "ZipDeploy"]);
    assert_eq!(profiles[0]["userName"], format!("${PAYMENTS}__staging"));
    assert_eq!(
        profiles[2]["publishUrl"],
        format!("{PAYMENTS}-staging.scm.azurewebsites.test:443")
    );

    let slots = az
        .json(&with(&["webapp", "deployment", "slot", "list"]))
        .await;
    let names: Vec<&str> = slots
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["staging"]);

    // Traffic routing: set, show, clear — and the sandbox routes by it.
    let set = az
        .json(&with(&[
            "webapp",
            "traffic-routing",
            "set",
            "--distribution",
            "staging=10",
        ]))
        .await;
    assert_eq!(set[0]["reroutePercentage"], 10.0);
    let rules = env.sb.routing_rules(PAYMENTS);
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].name, "staging");
    assert_eq!(rules[0].reroute_percentage, 10.0);
    assert_eq!(
        rules[0].action_host_name,
        format!("{PAYMENTS}-staging.azurewebsites.test")
    );
    let shown = az.json(&with(&["webapp", "traffic-routing", "show"])).await;
    assert_eq!(shown, set);
    az.ok(&with(&["webapp", "traffic-routing", "clear"])).await;
    assert!(env.sb.routing_rules(PAYMENTS).is_empty());
    assert_eq!(
        az.json(&with(&["webapp", "traffic-routing", "show"])).await,
        serde_json::json!([])
    );

    // The swap, as the CLI's own example writes it: staging into production.
    stage(&env, "2.4.1").await;
    let swap = with(&[
        "webapp",
        "deployment",
        "slot",
        "swap",
        "--slot",
        "staging",
        "--target-slot",
        "production",
    ]);
    az.ok(&swap).await;
    assert_eq!(versions(&env), ("2.4.1".into(), "2.4.0".into()));

    // Swap with preview: phase 1 applies production's settings to staging,
    // `--action swap` completes it; a reset of the source slot cancels one.
    let preview = [&swap[..], &["--action", "preview"]].concat();
    az.ok(&preview).await;
    let pending = &env.sb.snapshot()["sites"][PAYMENTS]["pendingPreview"];
    assert_eq!(pending["source"], "staging", "{pending}");
    assert_eq!(versions(&env), ("2.4.1".into(), "2.4.0".into()));
    az.ok(&[&swap[..], &["--action", "swap"]].concat()).await;
    assert_eq!(versions(&env), ("2.4.0".into(), "2.4.1".into()));
    assert!(env.sb.snapshot()["sites"][PAYMENTS]["pendingPreview"].is_null());
    az.ok(&preview).await;
    // `--action reset` resets the slot named by `--target-slot` (production
    // when none is given): the source's reset is `--target-slot staging`.
    az.ok(&with(&[
        "webapp",
        "deployment",
        "slot",
        "swap",
        "--slot",
        "staging",
        "--target-slot",
        "staging",
        "--action",
        "reset",
    ]))
    .await;
    assert!(env.sb.snapshot()["sites"][PAYMENTS]["pendingPreview"].is_null());
    assert_eq!(versions(&env), ("2.4.0".into(), "2.4.1".into()));

    // The provider answers with the api-versions the sandbox accepts, and
    // an older one (what older CLI releases send) works.
    let provider = az
        .json(&["provider", "show", "--namespace", "Microsoft.Web"])
        .await;
    let sites = provider["resourceTypes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["resourceType"] == "sites")
        .unwrap();
    assert!(
        sites["apiVersions"]
            .as_array()
            .unwrap()
            .contains(&Value::from("2023-01-01"))
    );
    let url = |v: &str| {
        format!(
            "{}/subscriptions/{}/resourceGroups/{RG}/providers/Microsoft.Web/sites/{PAYMENTS}?api-version={v}",
            env.settings.arm_endpoint, env.settings.subscription_id
        )
    };
    let old = az
        .json(&["rest", "--method", "get", "--url", &url("2023-01-01")])
        .await;
    assert_eq!(old["name"], PAYMENTS);
    let r = az
        .run(&["rest", "--method", "get", "--url", &url("2030-01-01")])
        .await;
    assert!(!r.success());
    assert!(
        r.stderr.contains("NoRegisteredProviderFound"),
        "{}",
        r.stderr
    );
}

/// Runs one step of a seed workflow, as a runner would, and returns it.
async fn run_step(az: &Az, workflow: &str, step: &str) -> azcli::Run {
    let vars = seed::workflow_env(workflow);
    let (script, _) = seed::for_sandbox(&seed::step(workflow, step), &vars);
    let out = tempfile::NamedTempFile::new().unwrap();
    let output = out.path().display().to_string();
    az.bash(&script, &[("GITHUB_OUTPUT", &output)]).await
}

/// Runs `emergency-rollback.sh` as the seed's operator does, with only the
/// sandbox's DNS suffix substituted.
async fn emergency_rollback(az: &Az, script: &str) -> azcli::Run {
    let path = az.dir.path().join("emergency-rollback.sh");
    std::fs::write(&path, script).unwrap();
    az.bash_file(&[], &path, &[]).await
}

#[tokio::test]
async fn the_seeds_scripts_run_unmodified_through_the_azure_cli() {
    let Some(bin) = azcli::az_or_skip() else {
        return;
    };
    let env = start().await;
    let az = signed_in(&env, &bin).await;
    let hotfix = seed::read("hotfix-deploy.yml");
    assert_eq!(
        seed::workflow_env(&hotfix)
            .get("AZURE_WEBAPP_NAME")
            .map(String::as_str),
        Some(PAYMENTS)
    );

    // The hotfix workflow: 2.4.1 in staging (its `azure/webapps-deploy`
    // step), then its swap and verify steps.
    stage(&env, "2.4.1").await;
    let swap = run_step(&az, &hotfix, "Swap to production (immediate)").await;
    assert!(swap.success(), "{swap:?}");
    assert_eq!(versions(&env), ("2.4.1".into(), "2.4.0".into()));
    let verify = run_step(&az, &hotfix, "Verify fix in production").await;
    assert!(verify.success(), "{verify:?}");
    assert!(
        verify.stdout.contains("Production status: 200"),
        "{verify:?}"
    );

    // Break-fix exercise 1, investigation: state and routing.
    let (investigate, hosts) = seed::for_sandbox(
        &seed::read("exercise-1-investigate.sh"),
        &Default::default(),
    );
    assert_eq!(hosts, 1);
    let r = az.bash(&investigate, &[]).await;
    assert!(r.success(), "{r:?}");
    assert!(r.stdout.contains(r#"{"version":"2.4.1"}"#), "{r:?}");
    assert!(r.stdout.contains("\"Running\""), "{r:?}");

    // emergency-rollback.sh, clicked twice. It swaps with production as the
    // *source* (`--slot production`), which the CLI sends as
    // `sites/{app}/slots/production/slotsswap`: App Service has no slot of
    // that name (azure-powershell#12796), so each click fails with
    // ResourceNotFound, exits 3 under `set -e` before its health check, and
    // production keeps serving what it served.
    let (rollback, hosts) =
        seed::for_sandbox(&seed::read("emergency-rollback.sh"), &Default::default());
    assert_eq!(hosts, 1);
    for click in 1..=2 {
        let since = env.sb.last_seq();
        let r = emergency_rollback(&az, &rollback).await;
        assert_eq!(r.code, Some(3), "click {click}: {r:?}");
        assert!(r.stdout.contains("EMERGENCY ROLLBACK"), "{r:?}");
        assert!(!r.stdout.contains("Rollback complete"), "{r:?}");
        assert!(r.stderr.contains("ResourceNotFound"), "{r:?}");
        let arm = arm_since(&env, since);
        let writes: Vec<_> = arm.iter().filter(|r| is_write(r)).collect();
        assert_eq!(writes.len(), 1, "{arm:#?}");
        assert!(writes[0].path.contains("/slots/production/slotsswap?"));
        assert_eq!(writes[0].status, 404);
        assert_eq!(
            versions(&env),
            ("2.4.1".into(), "2.4.0".into()),
            "click {click}"
        );
    }
    // The reusable rollback workflow's step is the same swap, and fails the
    // same way.
    let rollback_wf = seed::read("rollback.yml");
    let vars = [
        ("RESOURCE_GROUP".to_owned(), RG.to_owned()),
        ("service".to_owned(), "payment-service".to_owned()),
    ]
    .into_iter()
    .collect();
    let (step, _) = seed::for_sandbox(&seed::step(&rollback_wf, "Rollback payment service"), &vars);
    let r = az.bash(&step, &[]).await;
    assert!(
        !r.success() && r.stderr.contains("ResourceNotFound"),
        "{r:?}"
    );
    assert_eq!(versions(&env), ("2.4.1".into(), "2.4.0".into()));

    // What the README's claim assumes: the same swap written the way App
    // Service accepts it (the pair mirrored, staging as the source). Then
    // the first click restores 2.4.0 and the second swaps the build it
    // rolled back out — 2.4.1 — straight back in: a swap-back has no target.
    let mirrored = rollback
        .replace("--slot production \\", "--slot staging \\")
        .replace("--target-slot staging", "--target-slot production");
    assert_ne!(mirrored, rollback);
    let mut after = Vec::new();
    for click in 1..=2 {
        let r = emergency_rollback(&az, &mirrored).await;
        assert!(r.success(), "click {click}: {r:?}");
        assert!(
            r.stdout
                .contains("Production healthy after rollback (status: 200)")
        );
        after.push(versions(&env).0);
    }
    assert_eq!(after, ["2.4.0", "2.4.1"]);

    // The canary job's traffic-routing steps (its monitor steps only curl
    // the staging host for two minutes each, and are not run): 2.4.2 in
    // staging, 10 %, the breaker's clear, 50 %, then clear and swap.
    let canary = seed::read("canary-circuit-breaker.yml");
    stage(&env, "2.4.2").await;
    let no_vars = Default::default();
    let step = |name: &str| seed::for_sandbox(&seed::step(&canary, name), &no_vars).0;
    let percent = |env: &Env| -> Vec<(String, f64)> {
        env.sb
            .routing_rules(PAYMENTS)
            .into_iter()
            .map(|r| (r.action_host_name, r.reroute_percentage))
            .collect()
    };
    let staging_host = format!("{PAYMENTS}-staging.azurewebsites.test");
    let r = az.bash(&step("Deploy to 10% (canary)"), &[]).await;
    assert!(r.success(), "{r:?}");
    assert_eq!(percent(&env), [(staging_host.clone(), 10.0)]);
    let r = az
        .bash(&step("Circuit breaker - halt and rollback"), &[])
        .await;
    assert!(r.success(), "{r:?}");
    assert!(percent(&env).is_empty());
    let r = az.bash(&step("Promote to 50%"), &[]).await;
    assert!(r.success(), "{r:?}");
    assert_eq!(percent(&env), [(staging_host, 50.0)]);
    let r = az.bash(&step("Promote to 100% (swap)"), &[]).await;
    assert!(r.success(), "{r:?}");
    assert!(percent(&env).is_empty());
    assert_eq!(versions(&env), ("2.4.2".into(), "2.4.1".into()));

    // The Container Apps canary, run as one script. `containerapp update`
    // makes the revision; the app's ingress follows the latest revision
    // (`latestRevision: true`), so it takes all the traffic at once — not
    // the 0 % the seed's comment expects — and the script's traffic steps
    // name a `--stable` revision the app does not have, so the 10 % split
    // and the way back both fail.
    let (ca_script, _) = seed::for_sandbox(&seed::read("containerapps-canary.sh"), &no_vars);
    let r = az.bash(&ca_script, &[]).await;
    assert!(!r.success(), "{r:?}");
    assert!(
        r.stderr
            .contains("Revision 'ca-contoso-payments--stable' is not a valid revision name"),
        "{r:?}"
    );
    let ca = &env.sb.snapshot()["containerApps"]["ca-contoso-payments"];
    assert_eq!(
        ca["traffic"],
        serde_json::json!([{"latestRevision": true, "weight": 100}])
    );
    let revisions = &ca["revisions"];
    assert_eq!(
        revisions["ca-contoso-payments--hotfix-v241"]["trafficWeight"], 100,
        "{ca}"
    );
    assert_eq!(
        revisions["ca-contoso-payments--v240"]["trafficWeight"], 0,
        "{ca}"
    );
    let back = ca_script
        .lines()
        .skip_while(|l| !l.starts_with("# If errors detected"));
    let r = az.bash(&back.collect::<Vec<_>>().join("\n"), &[]).await;
    assert!(
        !r.success() && r.stderr.contains("not a valid revision name"),
        "{r:?}"
    );

    // Break-fix exercise 1, the fix: clearing rules that are already clear.
    let (fix, _) = seed::for_sandbox(&seed::read("exercise-1-fix.sh"), &no_vars);
    let r = az.bash(&fix, &[]).await;
    assert!(r.success(), "{r:?}");
    assert!(percent(&env).is_empty());
}

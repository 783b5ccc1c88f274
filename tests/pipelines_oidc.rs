//! Signing in from Azure Pipelines, through the built binary run as an
//! AzureCLI@2 script step runs it (a clean environment with `TF_BUILD=True`
//! and what the task gives its script: `SYSTEM_OIDCREQUESTURI`,
//! `AZURESUBSCRIPTION_SERVICE_CONNECTION_ID`, `AZURESUBSCRIPTION_CLIENT_ID`,
//! `AZURESUBSCRIPTION_TENANT_ID`, and `SYSTEM_ACCESSTOKEN` as the step maps
//! it), against the sandbox's pipeline OIDC endpoint and Entra: the service
//! connection's federated token is asked for and exchanged, and no token is
//! ever shown; a refused `System.AccessToken`, an unknown service connection,
//! an unmapped access token and an oversized answer each end in one error
//! that says what to fix; a federated token given directly (AzureCLI@2's
//! `idToken`) works too, and an expired one is refused before any request.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::sync::Arc;

use expedite::action::console::{Console, Secrets, Style};
use expedite::azure::auth::{ClientProof, Identity, TokenProvider};
use expedite::azure::pipelines::PipelineOidc;
use expedite::cancel::Cancel;
use expedite_sandbox::{FaultKind, FaultSpec, RequestRecord, Sandbox, SandboxConfig};

const APP: &str = "app-contoso-payments";
const PIPELINES_HOST: &str = "dev.azure.test";

async fn sandbox() -> Sandbox {
    expedite_sandbox::start(SandboxConfig::default())
        .await
        .unwrap()
}

struct Step {
    code: Option<i32>,
    /// stdout then stderr, as the agent reads both.
    text: String,
}

/// `expedite deploy --dry-run` (reads ARM, changes nothing) as an
/// AzureCLI@2 step using the sandbox's service connection, with `vars`
/// replacing or adding to the step's environment (an empty value removes
/// a variable).
async fn dry_run(sb: &Sandbox, vars: &[(&str, &str)]) -> Step {
    let s = sb.settings();
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
        ("EXPEDITE_ARM_ENDPOINT".into(), s.arm_endpoint.clone()),
        ("AZURE_AUTHORITY_HOST".into(), s.authority_host.clone()),
        ("EXPEDITE_RESOLVE".into(), s.resolve_string()),
        (
            "EXPEDITE_CA_CERT".into(),
            s.ca_cert_path.display().to_string(),
        ),
        ("AZURE_SUBSCRIPTION_ID".into(), s.subscription_id.clone()),
        // Debug lines too: nothing they print may carry a token.
        ("EXPEDITE_DEBUG".into(), "1".into()),
    ];
    env.extend(
        s.pipelines_env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v)),
    );
    for (k, v) in vars {
        env.retain(|(name, _)| name != k);
        if !v.is_empty() {
            env.push(((*k).to_string(), (*v).to_string()));
        }
    }
    tokio::task::spawn_blocking(move || {
        let temp = tempfile::tempdir().unwrap();
        std::fs::write(
            temp.path().join("app.zip"),
            expedite_sandbox::demo_package("2.4.1").unwrap(),
        )
        .unwrap();
        let out = std::process::Command::new(common::exe())
            .args([
                "deploy",
                "--dry-run",
                "--app-name",
                APP,
                "--resource-group",
                "rg-contoso-prod",
                "--package",
                "app.zip",
                "--expected-version",
                "2.4.1",
                "--lock",
                "none",
            ])
            .env_clear()
            .env("AGENT_TEMPDIRECTORY", temp.path())
            .env("BUILD_SOURCESDIRECTORY", temp.path())
            .envs(env)
            .current_dir(temp.path())
            .output()
            .unwrap();
        Step {
            code: out.status.code(),
            text: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    })
    .await
    .unwrap()
}

/// Lines that show `secret` other than the agent's own secret-variable
/// registration (`##vso[task.setsecret]…`), which the agent
/// consumes and never shows.
fn shown<'a>(text: &'a str, secret: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| l.contains(secret))
        .filter(|l| !l.starts_with("##vso[task.setsecret]"))
        .collect()
}

/// Requests to the pipeline OIDC endpoint and to Entra, in order.
fn sign_in_requests(log: &[RequestRecord]) -> Vec<String> {
    log.iter()
        .filter(|r| r.host == PIPELINES_HOST || r.path.contains("/oauth2/"))
        .map(|r| format!("{} {} {} {}", r.status, r.method, r.host, r.path))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_step_signs_in_through_its_service_connection_and_shows_no_token() {
    let sb = sandbox().await;
    let s = sb.settings();
    let step = dry_run(&sb, &[]).await;
    assert_eq!(step.code, Some(0), "{}", step.text);
    let log = sb.request_log();
    let sign_in = sign_in_requests(&log);
    let oidc_path = format!(
        "{}?api-version=7.1&serviceConnectionId={}",
        url::Url::parse(&s.pipelines_oidc_request_uri)
            .unwrap()
            .path(),
        s.pipelines_service_connection_id
    );
    assert_eq!(
        sign_in,
        [
            format!("200 POST {PIPELINES_HOST} {oidc_path}"),
            format!(
                "200 POST login.azure.test /{}/oauth2/v2.0/token",
                s.tenant_id
            ),
        ],
        "{}",
        step.text
    );
    // Then ARM, with the token Entra gave for the pipeline's assertion.
    let arm: Vec<&RequestRecord> = log
        .iter()
        .filter(|r| r.host == "management.azure.test")
        .collect();
    assert!(
        !arm.is_empty() && arm.iter().all(|r| r.status == 200),
        "{arm:?}"
    );
    assert!(
        arm.iter().all(|r| r.method == "GET"),
        "a dry run changes nothing"
    );
    // No JWT (the pipeline's token, Entra's access token) and not
    // System.AccessToken, anywhere a person reads.
    assert_eq!(
        shown(&step.text, "eyJ"),
        Vec::<&str>::new(),
        "{}",
        step.text
    );
    assert_eq!(
        shown(&step.text, &s.pipelines_access_token),
        Vec::<&str>::new()
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_access_token_and_an_unknown_service_connection_each_say_what_to_fix() {
    let sb = sandbox().await;
    let s = sb.settings();

    // System.AccessToken of another run (or none mapped into a task that
    // sets the variable to something else).
    let wrong = "sat-of-another-run-0123456789abcdefghijklmnopqrstuvwxyz";
    let step = dry_run(&sb, &[("SYSTEM_ACCESSTOKEN", wrong)]).await;
    assert_eq!(step.code, Some(1), "{}", step.text);
    assert!(
        step.text.contains(
            "the pipeline's OIDC endpoint refused System.AccessToken (401): map it into the step with `env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)`"
        ),
        "{}",
        step.text
    );
    assert_eq!(
        shown(&step.text, wrong),
        Vec::<&str>::new(),
        "{}",
        step.text
    );
    let log = sb.request_log();
    assert_eq!(
        sign_in_requests(&log)
            .iter()
            .map(|r| &r[..3])
            .collect::<Vec<_>>(),
        ["401"],
        "refused once (not retried), and Entra never asked"
    );
    assert!(log.iter().all(|r| r.host != "management.azure.test"));

    // A service connection this job does not have (or its name, given as
    // an id would be refused earlier: see the next case).
    let since = sb.last_seq();
    let other = "0de0c0de-5c5c-4000-8000-0000000000ff";
    let step = dry_run(&sb, &[("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID", other)]).await;
    assert_eq!(step.code, Some(1), "{}", step.text);
    assert!(
        step.text.contains(&format!(
            "the pipeline's OIDC endpoint knows no service connection {other} in this job (404: No service connection found with identifier {other}.)"
        )) && step.text.contains("not its name"),
        "{}",
        step.text
    );
    let later = sb.request_log_since(since);
    assert_eq!(
        sign_in_requests(&later)
            .iter()
            .map(|r| &r[..3])
            .collect::<Vec<_>>(),
        ["404"]
    );

    // What a step gets wrong before any request: the access token not
    // mapped, a macro naming no variable, a name where the id goes.
    let since = sb.last_seq();
    for (vars, said) in [
        (
            vec![("SYSTEM_ACCESSTOKEN", "")],
            "--service-connection-id: needs System.AccessToken to ask the pipeline for a token, and SYSTEM_ACCESSTOKEN is not set; add `env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)`",
        ),
        (
            vec![("SYSTEM_ACCESSTOKEN", "$(System.AccesToken)")],
            "SYSTEM_ACCESSTOKEN holds a macro the pipeline did not expand",
        ),
        (
            vec![("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID", "sc-contoso-prod")],
            "--service-connection-id: 'sc-contoso-prod' is not a service connection id",
        ),
        (
            vec![("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID", "")],
            "--service-connection-id: is not given, and neither is client-secret nor federated-token",
        ),
    ] {
        let step = dry_run(&sb, &vars).await;
        assert_eq!(step.code, Some(1), "{vars:?}: {}", step.text);
        assert!(step.text.contains(said), "{vars:?}: {}", step.text);
    }
    assert_eq!(sb.request_log_since(since), Vec::new(), "nothing was sent");
    let _ = s;
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_too_large_for_a_token_is_not_read() {
    let sb = sandbox().await;
    let mut huge = FaultSpec::new(FaultKind::HugeBody { bytes: 8 << 20 });
    huge.host = Some(PIPELINES_HOST.into());
    sb.add_fault(huge).unwrap();
    let step = dry_run(&sb, &[]).await;
    assert_eq!(step.code, Some(1), "{}", step.text);
    assert!(
        step.text
            .contains("the pipeline's OIDC endpoint answered more than 64 KiB"),
        "{}",
        step.text
    );
    assert!(
        sign_in_requests(&sb.request_log())
            .iter()
            .all(|r| !r.contains("oauth2")),
        "Entra never asked"
    );
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_federated_token_given_directly_signs_in_and_an_expired_one_is_refused_at_once() {
    let sb = sandbox().await;
    let s = sb.settings();
    // AzureCLI@2 with addSpnToEnvironment: servicePrincipalId, tenantId and
    // idToken, mapped as the examples do; no System.AccessToken.
    let token = sb.issue_pipeline_token(0, 600).unwrap();
    let direct = [
        ("SYSTEM_ACCESSTOKEN", ""),
        ("AZURE_CLIENT_ID", s.client_id.as_str()),
        ("AZURE_TENANT_ID", s.tenant_id.as_str()),
        ("AZURE_FEDERATED_TOKEN", token.as_str()),
    ];
    let step = dry_run(&sb, &direct).await;
    assert_eq!(step.code, Some(0), "{}", step.text);
    assert_eq!(
        sign_in_requests(&sb.request_log()),
        [format!(
            "200 POST login.azure.test /{}/oauth2/v2.0/token",
            s.tenant_id
        )],
        "the token given is the assertion; the pipeline is not asked"
    );
    assert_eq!(
        shown(&step.text, "eyJ"),
        Vec::<&str>::new(),
        "{}",
        step.text
    );

    // Ten minutes later it is spent: said before anything is sent, with
    // the way that renews.
    let since = sb.last_seq();
    let stale = sb.issue_pipeline_token(-900, 600).unwrap();
    let mut vars = direct.to_vec();
    vars.retain(|(k, _)| *k != "AZURE_FEDERATED_TOKEN");
    vars.push(("AZURE_FEDERATED_TOKEN", &stale));
    let step = dry_run(&sb, &vars).await;
    assert_eq!(step.code, Some(1), "{}", step.text);
    assert!(
        step.text
            .contains("--federated-token: expired 5 minutes ago")
            && step.text.contains("give service-connection-id"),
        "{}",
        step.text
    );
    assert_eq!(shown(&step.text, &stale), Vec::<&str>::new());
    assert_eq!(sb.request_log_since(since), Vec::new(), "nothing was sent");
    sb.shutdown().await;
}

/// The product's token provider on its own: every Entra request carries a
/// pipeline token asked for just before it (they live ten minutes, ARM
/// tokens an hour), and each is masked the moment it arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sign_in_asks_the_pipeline_for_a_fresh_token() {
    let sb = sandbox().await;
    let c = common::azure::clients(&sb);
    let s = &c.settings;
    let console = Console::with_sinks(
        Style::Cli,
        false,
        Secrets::default(),
        Box::new(std::io::sink()),
        Box::new(std::io::sink()),
    );
    let tokens = Arc::new(TokenProvider::new(
        c.http.clone(),
        url::Url::parse(&s.authority_host).unwrap(),
        &url::Url::parse(&s.arm_endpoint).unwrap(),
        Identity {
            tenant_id: s.tenant_id.clone(),
            client_id: s.client_id.clone(),
            proof: ClientProof::AzurePipelines(PipelineOidc {
                request_uri: url::Url::parse(&s.pipelines_oidc_request_uri).unwrap(),
                access_token: s.pipelines_access_token.clone().into(),
                service_connection_id: s.pipelines_service_connection_id.clone(),
            }),
        },
        console.clone(),
    ));
    // System.AccessToken is masked as the provider is made.
    assert_eq!(console.secrets().redact(&s.pipelines_access_token), "***");
    let cancel = Cancel::new();
    use secrecy::ExposeSecret;
    let first = tokens.token(&cancel).await.unwrap();
    assert_eq!(console.secrets().redact(first.expose_secret()), "***");
    // Cached: no new request.
    let again = tokens.token(&cancel).await.unwrap();
    assert_eq!(again.expose_secret(), first.expose_secret());
    // After a 401 the cache is dropped; the next sign-in asks the pipeline
    // again rather than reuse its earlier token.
    tokens.invalidate().await;
    let second = tokens.token(&cancel).await.unwrap();
    assert_ne!(second.expose_secret(), first.expose_secret());
    let order: Vec<String> = sign_in_requests(&sb.request_log())
        .into_iter()
        .map(|r| {
            if r.contains(PIPELINES_HOST) {
                "pipeline".to_string()
            } else {
                "entra".to_string()
            }
        })
        .collect();
    assert_eq!(order, ["pipeline", "entra", "pipeline", "entra"]);
    sb.shutdown().await;
}

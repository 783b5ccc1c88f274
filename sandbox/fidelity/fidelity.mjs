// Drives a running expedite sandbox with Azure's official JavaScript SDK
// (@azure/arm-appservice) exactly as a real client would — unmodified SDK,
// real token from the sandbox Entra endpoint, the sandbox CA trusted through
// NODE_EXTRA_CA_CERTS, host names resolved to the sandbox by an https.Agent
// `lookup` — and checks that what the SDK sees and what the sandbox ends up
// holding match Azure's documented behaviour.
//
// Input: SANDBOX_SETTINGS = path of the JSON written by Settings::to_json.
// Output: one JSON summary line on stdout; exit 0 when every check passed.

import { readFileSync } from "node:fs";
import https from "node:https";
import { WebSiteManagementClient } from "@azure/arm-appservice";
import { ContainerAppsAPIClient } from "@azure/arm-appcontainers";

const settingsPath = process.env.SANDBOX_SETTINGS;
if (!settingsPath) {
  console.error("SANDBOX_SETTINGS must name the sandbox settings JSON file");
  process.exit(2);
}
const s = JSON.parse(readFileSync(settingsPath, "utf8"));
const [sandboxHost, sandboxPortText] = s.https_addr.split(":");
const sandboxPort = Number(sandboxPortText);

// Every sandbox name resolves to the sandbox listener; anything else fails,
// so nothing can leak to a real network.
const served = (host) => s.resolve.some((e) => (e.host.startsWith("*.") ? host.endsWith(e.host.slice(1)) : host === e.host));
const agent = new https.Agent({
  keepAlive: true,
  lookup(hostname, options, callback) {
    if (!served(hostname)) {
      callback(new Error(`fidelity: refusing to resolve ${hostname}`));
      return;
    }
    if (options && options.all) callback(null, [{ address: sandboxHost, family: 4 }]);
    else callback(null, sandboxHost, 4);
  },
});
// The listener's port is not 443: rewrite the port, keep host name (SNI, Host).
const portPolicy = {
  name: "sandboxPort",
  async sendRequest(request, next) {
    const url = new URL(request.url);
    if (served(url.hostname) && url.port === "") {
      url.port = String(sandboxPort);
      request.url = url.toString();
    }
    request.agent = agent;
    return next(request);
  },
};

function httpsForm(url, form) {
  return new Promise((resolve, reject) => {
    const body = new URLSearchParams(form).toString();
    const u = new URL(url);
    const req = https.request(
      {
        host: u.hostname,
        port: sandboxPort,
        path: u.pathname,
        method: "POST",
        agent,
        headers: { "content-type": "application/x-www-form-urlencoded", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        let data = "";
        res.on("data", (c) => (data += c));
        res.on("end", () => resolve({ status: res.statusCode, body: JSON.parse(data) }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

function httpsGet(url) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = https.request(
      { host: u.hostname, port: sandboxPort, path: u.pathname + u.search, method: "GET", agent },
      (res) => {
        let data = "";
        res.on("data", (c) => (data += c));
        res.on("end", () => resolve({ status: res.statusCode, body: data }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

async function state() {
  const r = await fetch(`${s.control_url}/_sandbox/state`);
  return (await r.json()).world;
}

const checks = [];
function check(name, ok, detail) {
  checks.push({ name, ok: Boolean(ok), detail: ok ? undefined : detail });
}

const tokenResp = await httpsForm(`${s.authority_host}/${s.tenant_id}/oauth2/v2.0/token`, {
  client_id: s.client_id,
  client_secret: s.client_secret,
  grant_type: "client_credentials",
  scope: "https://management.azure.com/.default",
});
check("entra issues a token", tokenResp.status === 200, tokenResp);
const credential = {
  getToken: async () => ({
    token: tokenResp.body.access_token,
    expiresOnTimestamp: Date.now() + tokenResp.body.expires_in * 1000,
  }),
};

const client = new WebSiteManagementClient(credential, s.subscription_id, {
  endpoint: s.arm_endpoint,
  additionalPolicies: [{ policy: portPolicy, position: "perRetry" }],
});
const rg = s.resource_group;
const app = "app-contoso-payments";
const poll = { updateIntervalInMs: 200 };

try {
  // Site and slots: host names come from ARM.
  const site = await client.webApps.get(rg, app);
  check("get site", site.defaultHostName === "app-contoso-payments.azurewebsites.test", site.defaultHostName);
  const scm = (site.hostNameSslStates || []).find((h) => h.hostType === "Repository");
  check("scm host from hostNameSslStates", scm && scm.name === "app-contoso-payments.scm.azurewebsites.test", site.hostNameSslStates);
  const slots = [];
  for await (const slot of client.webApps.listSlots(rg, app)) slots.push(slot);
  check("list slots", slots.length === 1 && slots[0].name === `${app}/staging`, slots.map((x) => x.name));
  const staging = await client.webApps.getSlot(rg, app, "staging");
  const stagingHost = staging.defaultHostName;
  check("get slot", stagingHost === "app-contoso-payments-staging.azurewebsites.test", stagingHost);

  // Routing rules: minimal PATCH, then az-style full read-modify-write.
  const cfg0 = await client.webApps.getConfiguration(rg, app);
  check("rules start empty", (cfg0.experiments?.rampUpRules || []).length === 0, cfg0.experiments);
  const set = await client.webApps.updateConfiguration(rg, app, {
    experiments: { rampUpRules: [{ actionHostName: stagingHost, reroutePercentage: 10, name: "staging" }] },
  });
  check("set 10 % to staging", set.experiments?.rampUpRules?.[0]?.reroutePercentage === 10, set.experiments);
  const full = await client.webApps.getConfiguration(rg, app);
  full.experiments.rampUpRules = [{ actionHostName: stagingHost, reroutePercentage: 25, name: "staging" }];
  const fullSet = await client.webApps.updateConfiguration(rg, app, full);
  check("full SiteConfig round-trip accepted", fullSet.experiments?.rampUpRules?.[0]?.reroutePercentage === 25, fullSet.experiments);
  try {
    await client.webApps.updateConfiguration(rg, app, {
      experiments: { rampUpRules: [{ actionHostName: stagingHost, reroutePercentage: 150, name: "staging" }] },
    });
    check("150 % rejected", false, "accepted");
  } catch (e) {
    check("150 % rejected", e.statusCode === 400, { statusCode: e.statusCode, message: e.message });
  }

  // Swap staging -> production, awaited through the Location LRO.
  await client.webApps.beginSwapSlotAndWait(rg, app, "staging", { targetSlot: "production", preserveVnet: true }, poll);
  let w = await state();
  const payments = w.sites[app];
  check("swap moved 2.3.1 to production", payments.slots.production.version === "2.3.1", payments.slots.production.version);
  check("swap moved 2.4.0 to staging", payments.slots.staging.version === "2.4.0", payments.slots.staging.version);
  check("routing rules stayed on production", payments.rampUpRules.length === 1 && payments.rampUpRules[0].reroutePercentage === 25, payments.rampUpRules);
  const afterSwap = await client.webApps.get(rg, app);
  check(
    "slotSwapStatus recorded",
    afterSwap.slotSwapStatus?.sourceSlotName === "staging" && afterSwap.slotSwapStatus?.destinationSlotName === "production",
    afterSwap.slotSwapStatus,
  );
  const cleared = await client.webApps.updateConfiguration(rg, app, { experiments: { rampUpRules: [] } });
  check("rules cleared after swap", (cleared.experiments?.rampUpRules || []).length === 0, cleared.experiments);

  // Swap with preview: phase 1, config locked, reset on the source slot.
  await client.webApps.applySlotConfigurationSlot(rg, app, "staging", { targetSlot: "production", preserveVnet: true });
  w = await state();
  check("preview pending", w.sites[app].pendingPreview?.source === "staging", w.sites[app].pendingPreview);
  try {
    await client.webApps.updateConfiguration(rg, app, { alwaysOn: true });
    check("config locked during preview", false, "accepted");
  } catch (e) {
    check("config locked during preview", e.statusCode === 409, { statusCode: e.statusCode, message: e.message });
  }
  await client.webApps.resetSlotConfigurationSlot(rg, app, "staging");
  w = await state();
  check("preview reset", w.sites[app].pendingPreview === null, w.sites[app].pendingPreview);

  // Preview then complete: production-addressed swap back (rollback path).
  await client.webApps.applySlotConfigurationSlot(rg, app, "staging", { targetSlot: "production", preserveVnet: true });
  await client.webApps.beginSwapSlotAndWait(rg, app, "staging", { targetSlot: "production", preserveVnet: true }, poll);
  w = await state();
  check("preview completed by swap", w.sites[app].pendingPreview === null && w.sites[app].slots.production.version === "2.4.0", w.sites[app]);
  await client.webApps.beginSwapSlotWithProductionAndWait(rg, app, { targetSlot: "staging", preserveVnet: true }, poll);
  w = await state();
  check("swap with production endpoint", w.sites[app].slots.production.version === "2.3.1", w.sites[app].slots.production.version);

  // Body-less POSTs go through (the SDK sends Content-Length: 0).
  await client.webApps.restartSlot(rg, app, "staging");
  await client.webApps.stopSlot(rg, app, "staging");
  const stopped = await client.webApps.getSlot(rg, app, "staging");
  check("stop slot", stopped.state === "Stopped", stopped.state);
  try {
    await client.webApps.beginSwapSlotAndWait(rg, app, "staging", { targetSlot: "production", preserveVnet: true }, poll);
    check("stopped slot cannot swap", false, "swapped");
  } catch (e) {
    check("stopped slot cannot swap", e.statusCode === 400, { statusCode: e.statusCode, message: e.message });
  }
  await client.webApps.startSlot(rg, app, "staging");
  const started = await client.webApps.getSlot(rg, app, "staging");
  check("start slot", started.state === "Running", started.state);

  try {
    await client.webApps.get(rg, "app-does-not-exist");
    check("missing site is 404", false, "found");
  } catch (e) {
    check("missing site is 404", e.statusCode === 404, { statusCode: e.statusCode, code: e.code });
  }
} catch (e) {
  check("no unexpected error (App Service)", false, { message: e.message, statusCode: e.statusCode, code: e.code });
}

// Container Apps: az-style read-modify-write PATCHes through the SDK's LRO.
const apps = new ContainerAppsAPIClient(credential, s.subscription_id, {
  endpoint: s.arm_endpoint,
  additionalPolicies: [{ policy: portPolicy, position: "perRetry" }],
});
const ca = "ca-contoso-payments";
try {
  const app0 = await apps.containerApps.get(rg, ca);
  const traffic0 = app0.configuration?.ingress?.traffic || [];
  check("container app follows latestRevision", traffic0.length === 1 && traffic0[0].latestRevision === true, traffic0);
  const current = app0.latestRevisionName;
  app0.configuration.ingress.traffic = [{ revisionName: current, weight: 100 }];
  const pinned = await apps.containerApps.beginUpdateAndWait(rg, ca, app0, poll);
  const pinnedApp = await apps.containerApps.get(rg, ca);
  check("traffic pinned by name", pinnedApp.configuration.ingress.traffic[0].revisionName === current, { pinned, traffic: pinnedApp.configuration.ingress.traffic });
  pinnedApp.template.revisionSuffix = "hotfix-241";
  pinnedApp.template.containers[0].image = "contosoacr.azurecr.io/payments:2.4.1";
  await apps.containerApps.beginUpdateAndWait(rg, ca, pinnedApp, poll);
  const revisions = [];
  for await (const r of apps.containerAppsRevisions.listRevisions(rg, ca)) revisions.push(r);
  const hotfix = revisions.find((r) => r.name === `${ca}--hotfix-241`);
  check("new revision provisioned", hotfix && hotfix.provisioningState === "Provisioned" && hotfix.trafficWeight === 0, revisions);
  const afterDeploy = await apps.containerApps.get(rg, ca);
  const reuse = structuredClone(afterDeploy);
  reuse.template.containers[0].image = "contosoacr.azurecr.io/payments:2.4.2";
  try {
    await apps.containerApps.beginUpdateAndWait(rg, ca, reuse, poll);
    check("reused revision suffix rejected", false, "accepted");
  } catch (e) {
    check("reused revision suffix rejected", e.statusCode === 400 && /already exists/.test(e.message), { statusCode: e.statusCode, message: e.message });
  }
  afterDeploy.configuration.ingress.traffic = [
    { revisionName: current, weight: 90 },
    { revisionName: `${ca}--hotfix-241`, weight: 10 },
  ];
  await apps.containerApps.beginUpdateAndWait(rg, ca, afterDeploy, poll);
  const w2 = await state();
  const revs = w2.containerApps[ca].revisions;
  check("canary weights applied", revs[current].trafficWeight === 90 && revs[`${ca}--hotfix-241`].trafficWeight === 10, revs);
  await apps.containerAppsRevisions.deactivateRevision(rg, ca, `${ca}--hotfix-241`);
  const w3 = await state();
  check("revision deactivated", w3.containerApps[ca].revisions[`${ca}--hotfix-241`].active === false, w3.containerApps[ca].revisions);
} catch (e) {
  check("no unexpected error (Container Apps)", false, { message: e.message, statusCode: e.statusCode, code: e.code });
}

// Static Web Apps: zip deployments from the sandbox blob store to a preview
// environment and production, awaited through the SDK's v19 pollers
// (Azure-AsyncOperation); every method is a public `client.staticSites` one.
const swaName = "swa-contoso-store";
const store = `${s.blob_endpoint}/store`;
try {
  const swa = await client.staticSites.getStaticSite(rg, swaName);
  check(
    "get static site",
    swa.defaultHostname === "swa-contoso-store.azurestaticapps.test" && swa.sku?.name === "Standard" && swa.type === "Microsoft.Web/staticSites",
    { defaultHostname: swa.defaultHostname, sku: swa.sku, type: swa.type },
  );
  check("staging environments enabled", swa.stagingEnvironmentPolicy === "Enabled", swa.stagingEnvironmentPolicy);
  const builds0 = [];
  for await (const b of client.staticSites.listStaticSiteBuilds(rg, swaName)) builds0.push(b);
  check(
    "production is build default",
    builds0.length === 1 && builds0[0].buildId === "default" && builds0[0].status === "Ready" && builds0[0].hostname === swa.defaultHostname,
    builds0,
  );

  // Preview environment from a SAS-style URL (the query is ignored).
  await client.staticSites.createZipDeploymentForStaticSiteBuild(
    rg,
    swaName,
    "pr-42",
    { appZipUrl: `${store}/store-2.4.1.zip?sv=2025-01-05&sig=fidelity`, deploymentTitle: "Hotfix 2.4.1", provider: "expedite" },
    poll,
  );
  const pr = await client.staticSites.getStaticSiteBuild(rg, swaName, "pr-42");
  check(
    "preview environment ready",
    pr.status === "Ready" && pr.hostname === "swa-contoso-store-pr-42.westeurope.azurestaticapps.test" && pr.createdTimeUtc instanceof Date,
    pr,
  );
  const prVersion = await httpsGet(`https://${pr.hostname}/api/version`);
  check("preview serves 2.4.1", prVersion.status === 200 && JSON.parse(prVersion.body).version === "2.4.1", prVersion);
  const prHealth = await httpsGet(`https://${pr.hostname}/api/health`);
  check("preview healthy", prHealth.status === 200, prHealth);
  const builds1 = [];
  for await (const b of client.staticSites.listStaticSiteBuilds(rg, swaName)) builds1.push(b);
  check("two environments listed", builds1.map((b) => b.name).sort().join(",") === "default,pr-42", builds1.map((b) => b.name));

  // A failed deployment rejects the poller with the operation's error.
  try {
    await client.staticSites.createZipDeploymentForStaticSiteBuild(rg, swaName, "pr-43", { appZipUrl: `${store}/store-9.9.9.zip` }, poll);
    check("missing artifact fails the deployment", false, "succeeded");
  } catch (e) {
    check("missing artifact fails the deployment", /DeploymentFailed/.test(e.message) && /BlobNotFound/.test(e.message), { message: e.message });
  }
  const failedBuild = await client.staticSites.getStaticSiteBuild(rg, swaName, "pr-43");
  check("failed environment says Failed", failedBuild.status === "Failed", failedBuild.status);

  // Promotion: the same artifact to production.
  await client.staticSites.createZipDeploymentForStaticSite(
    rg,
    swaName,
    { appZipUrl: `${store}/store-2.4.1.zip`, deploymentTitle: "Promote 2.4.1", provider: "expedite" },
    poll,
  );
  const prodVersion = await httpsGet(`https://${swa.defaultHostname}/api/version`);
  check("production serves 2.4.1", prodVersion.status === 200 && JSON.parse(prodVersion.body).version === "2.4.1", prodVersion);
  const promoted = await client.staticSites.getStaticSite(rg, swaName);
  check("provider of the last production deployment", promoted.provider === "expedite", promoted.provider);

  const secrets = await client.staticSites.listStaticSiteSecrets(rg, swaName);
  check("deployment token listed", typeof secrets.properties?.apiKey === "string" && secrets.properties.apiKey.length >= 40, secrets);

  try {
    await client.staticSites.createZipDeploymentForStaticSiteBuild(rg, swaName, "pr-44", { appZipUrl: "http://insecure.test/app.zip" }, poll);
    check("http artifact URL refused", false, "accepted");
  } catch (e) {
    check("http artifact URL refused", e.statusCode === 400, { statusCode: e.statusCode, message: e.message });
  }

  await client.staticSites.deleteStaticSiteBuild(rg, swaName, "pr-42", poll);
  await client.staticSites.deleteStaticSiteBuild(rg, swaName, "pr-43", poll);
  const builds2 = [];
  for await (const b of client.staticSites.listStaticSiteBuilds(rg, swaName)) builds2.push(b);
  check("preview environments deleted", builds2.length === 1 && builds2[0].name === "default", builds2.map((b) => b.name));
  try {
    await client.staticSites.getStaticSiteBuild(rg, swaName, "pr-42");
    check("deleted build is 404", false, "found");
  } catch (e) {
    check("deleted build is 404", e.statusCode === 404, { statusCode: e.statusCode, message: e.message });
  }
  try {
    await client.staticSites.deleteStaticSiteBuild(rg, swaName, "default", poll);
    check("production cannot be deleted", false, "deleted");
  } catch (e) {
    check("production cannot be deleted", e.statusCode === 400, { statusCode: e.statusCode, message: e.message });
  }
  const w4 = await state();
  check("sandbox state agrees", w4.staticSites[swaName].environments.default.version === "2.4.1" && !w4.staticSites[swaName].environments["pr-42"], w4.staticSites[swaName]);
} catch (e) {
  check("no unexpected error (Static Web Apps)", false, { message: e.message, statusCode: e.statusCode, code: e.code });
}

agent.destroy();
const failed = checks.filter((c) => !c.ok);
console.log(JSON.stringify({ passed: checks.length - failed.length, failed: failed.length, checks }));
process.exit(failed.length === 0 ? 0 : 1);

// Drives the expedite sandbox GitHub with the official @octokit/rest client
// — unmodified methods, the sandbox CA trusted through NODE_EXTRA_CA_CERTS,
// `api.github.test` reached by connecting to the sandbox listener with the
// real host name as SNI and Host — and validates every response body (errors
// included) against its operation's response schema in GitHub's OpenAPI
// description (@octokit/openapi, api.github.com).
//
// Input: SANDBOX_SETTINGS = path of the JSON written by Settings::to_json;
// the harness (tests/github_fidelity.rs) has created contoso/payments with
// branches main, feature (main + 1) and side (diverged).
// Output: one JSON summary line on stdout; exit 0 when every check passed.

import { readFileSync } from "node:fs";
import https from "node:https";
import crypto from "node:crypto";
import { createRequire } from "node:module";
import { Octokit } from "@octokit/rest";
import Ajv from "ajv";
import addFormats from "ajv-formats";

const require = createRequire(import.meta.url);
const settingsPath = process.env.SANDBOX_SETTINGS;
if (!settingsPath) {
  console.error("SANDBOX_SETTINGS must name the sandbox settings JSON file");
  process.exit(2);
}
const s = JSON.parse(readFileSync(settingsPath, "utf8"));
const [sandboxHost, sandboxPortText] = s.https_addr.split(":");
const sandboxPort = Number(sandboxPortText);
const served = new Set(s.resolve.map((e) => e.host));

// fetch over node:https: connect to the sandbox, keep the name for SNI/Host.
const agent = new https.Agent({ keepAlive: true });
function sandboxFetch(input, init = {}) {
  const u = new URL(typeof input === "string" ? input : input.url);
  if (!served.has(u.hostname)) return Promise.reject(new Error(`fidelity: refusing to reach ${u.hostname}`));
  const headers = Object.fromEntries(new Headers(init.headers || {}).entries());
  headers.host = u.hostname;
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: sandboxHost, port: sandboxPort, servername: u.hostname, path: u.pathname + u.search, method: init.method || "GET", headers, agent },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) h.set(k, Array.isArray(v) ? v.join(", ") : v);
          const body = [204, 304].includes(res.statusCode) ? null : Buffer.concat(chunks);
          resolve(new Response(body, { status: res.statusCode, headers: h }));
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    if (init.body) req.write(init.body);
    req.end();
  });
}

// ---- the OpenAPI description, compiled lazily per operation and status.
const specPath = require.resolve("@octokit/openapi/generated/api.github.com.json");
const spec = JSON.parse(readFileSync(specPath, "utf8"));
const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true });
addFormats(ajv);
// Known gaps in the description itself (each is a GitHub behaviour, not a
// sandbox choice): deployment statuses carry "" for target_url, log_url and
// environment_url when none was given, which `format: uri` rejects; and
// GET /app/installations inlines `account` as allOf[simple-user,
// enterprise] (no real account is both), where the named `installation`
// schema every other operation uses says anyOf.
const uri = ajv.formats.uri;
ajv.addFormat("uri", { type: "string", validate: (x) => x === "" || (typeof uri === "function" ? uri(x) : uri.validate ? (typeof uri.validate === "function" ? uri.validate(x) : uri.validate.test(x)) : uri.test(x)) });
// POST git/blobs documents its 422 as oneOf[validation-error,
// repository-rule-violation-error], but the second has no required
// properties, so every validation-error also matches it and oneOf can never
// pass: checked as anyOf. DELETE git/refs documents its 422 without a body,
// yet GitHub sends one ({"message": "Reference does not exist", …}):
// checked as basic-error.
const schemaOverride = {
  "git/delete-ref 422": { $ref: "#/components/schemas/basic-error" },
  "apps/list-installations 200": { type: "array", items: { $ref: "#/components/schemas/installation" } },
  "git/create-blob 422": { anyOf: [{ $ref: "#/components/schemas/validation-error" }, { $ref: "#/components/schemas/repository-rule-violation-error" }] },
};

// OpenAPI 3.0 → JSON Schema: `$ref`s into the shared document, and
// `nullable: true` as an explicit `null` alternative.
const rewrite = (v) => {
  if (Array.isArray(v)) return v.map(rewrite);
  if (v && typeof v === "object") {
    let o = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === "nullable") continue;
      o[k] = k === "$ref" && typeof x === "string" && x.startsWith("#/") ? "gh" + x : rewrite(x);
    }
    if (v.nullable === true) {
      if (typeof o.type === "string" && !o.$ref) {
        o.type = [o.type, "null"];
        if (Array.isArray(o.enum) && !o.enum.includes(null)) o.enum = [...o.enum, null];
      } else {
        o = { anyOf: [o, { type: "null" }] };
      }
    }
    return o;
  }
  return v;
};
ajv.addSchema({ $id: "gh", components: { schemas: rewrite(spec.components.schemas) } });
const deref = (obj) => {
  while (obj && obj.$ref) obj = obj.$ref.split("/").slice(1).reduce((o, k) => o[k], spec);
  return obj;
};
const compiled = new Map();
const validated = {}; // operationId -> Set of statuses validated
const results = { passed: 0, failed: 0, failures: [], validated: {} };

function validate(options, status, data) {
  const op = spec.paths[options.url]?.[options.method.toLowerCase()];
  if (!op) {
    results.failed++;
    results.failures.push(`no operation for ${options.method} ${options.url}`);
    return;
  }
  // The description covers the JSON media type only: a 304 answering a
  // conditional request has no body, and a raw media type returns bytes.
  if (status === 304) {
    (validated[`${op.operationId} (conditional)`] ??= new Set()).add(status);
    return;
  }
  const accept = String(options.headers?.accept ?? "");
  if (/\.raw/.test(accept) || options.mediaType?.format === "raw") {
    (validated[`${op.operationId} (raw)`] ??= new Set()).add(status);
    return;
  }
  const resp = deref(op.responses[String(status)]);
  const id = `${op.operationId} ${status}`;
  const schema = schemaOverride[id] ?? resp?.content?.["application/json"]?.schema;
  if (!resp) {
    // GitHub's description omits most 401s; they still carry basic-error.
    if (status >= 400) {
      const v = compiled.get("basic-error") ?? ajv.compile({ $ref: "gh#/components/schemas/basic-error" });
      compiled.set("basic-error", v);
      if (v(data)) (validated[`${op.operationId} (undocumented, basic-error)`] ??= new Set()).add(status);
      else {
        results.failed++;
        results.failures.push(`${id} basic-error: ${ajv.errorsText(v.errors)}`);
      }
      return;
    }
    results.failed++;
    results.failures.push(`${id}: status not in the description`);
    return;
  }
  if (!schema) {
    if (data !== undefined && data !== "" && data !== null) {
      results.failed++;
      results.failures.push(`${id}: body where the description has none`);
    } else {
      (validated[op.operationId] ??= new Set()).add(status);
    }
    return;
  }
  let v = compiled.get(id);
  if (!v) {
    v = ajv.compile(rewrite(schema));
    compiled.set(id, v);
  }
  if (v(data)) {
    (validated[op.operationId] ??= new Set()).add(status);
  } else {
    results.failed++;
    results.failures.push(`${id}: ${ajv.errorsText(v.errors.slice(0, 12))}`);
  }
}

function client(auth) {
  const o = new Octokit({ auth, baseUrl: s.github_api_url, request: { fetch: sandboxFetch }, log: { debug() {}, info() {}, warn() {}, error() {} } });
  o.hook.after("request", (response, options) => validate(options, response.status, response.data));
  o.hook.error("request", (error, options) => {
    if (error.response) validate(options, error.status, error.response.data);
    throw error;
  });
  return o;
}

function check(name, cond, detail) {
  if (cond) results.passed++;
  else {
    results.failed++;
    results.failures.push(`${name}${detail !== undefined ? ": " + JSON.stringify(detail).slice(0, 300) : ""}`);
  }
}

async function expectStatus(name, promise, status, messageCheck) {
  try {
    await promise;
    check(`${name} should fail with ${status}`, false);
  } catch (e) {
    check(`${name} → ${status}`, e.status === status, { status: e.status, message: e.message });
    if (messageCheck) check(`${name} message`, messageCheck(e.response?.data), e.response?.data);
  }
}

const b64url = (x) => Buffer.from(x).toString("base64url");
function appJwt() {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({ alg: "RS256", typ: "JWT" }));
  const body = b64url(JSON.stringify({ iat: now - 60, exp: now + 540, iss: String(s.github_app_id) }));
  const sig = crypto.sign("RSA-SHA256", Buffer.from(`${head}.${body}`), readFileSync(s.github_app_private_key_path, "utf8"));
  return `${head}.${body}.${sig.toString("base64url")}`;
}

const owner = "contoso";
const repo = "payments";
const r = { owner, repo };

async function main() {
  // App auth.
  const app = client(appJwt());
  const me = await app.rest.apps.getAuthenticated();
  check("GET /app id", me.data.id === s.github_app_id, me.data);
  await app.rest.apps.listInstallations();
  const inst = await app.rest.apps.getRepoInstallation(r);
  const tok = await app.rest.apps.createInstallationAccessToken({ installation_id: inst.data.id });
  check("ghs token", tok.data.token.startsWith("ghs_"), tok.data);
  await expectStatus("bad JWT", client(appJwt().slice(0, -4) + "AAAA").rest.apps.getAuthenticated(), 401);

  const gh = client(tok.data.token);
  const pat = client(s.github_token);
  await gh.rest.repos.get(r);

  // Refs.
  const main = await gh.rest.git.getRef({ ...r, ref: "heads/main" });
  const feature = await gh.rest.git.getRef({ ...r, ref: "heads/feature" });
  const side = await gh.rest.git.getRef({ ...r, ref: "heads/side" });
  await gh.rest.git.listMatchingRefs({ ...r, ref: "heads/" });
  await expectStatus("missing ref", gh.rest.git.getRef({ ...r, ref: "heads/nope" }), 404);
  await gh.rest.git.createRef({ ...r, ref: "refs/heads/release", sha: main.data.object.sha });
  await expectStatus("existing ref", gh.rest.git.createRef({ ...r, ref: "refs/heads/release", sha: main.data.object.sha }), 422, (d) => d.message === "Reference already exists");
  await gh.rest.git.updateRef({ ...r, ref: "heads/release", sha: feature.data.object.sha });
  await expectStatus("non-FF update", gh.rest.git.updateRef({ ...r, ref: "heads/release", sha: side.data.object.sha, force: false }), 422, (d) => d.message === "Update is not a fast forward");
  await gh.rest.git.updateRef({ ...r, ref: "heads/release", sha: side.data.object.sha, force: true });
  await gh.rest.git.deleteRef({ ...r, ref: "heads/release" });

  // Refs outside refs/heads and refs/tags (expedite's deploy locks).
  const lock = "expedite/locks/payments/production";
  await gh.rest.git.createRef({ ...r, ref: `refs/${lock}`, sha: main.data.object.sha });
  const gotLock = await gh.rest.git.getRef({ ...r, ref: lock });
  check("lock ref", gotLock.data.ref === `refs/${lock}`, gotLock.data);
  await gh.rest.git.updateRef({ ...r, ref: lock, sha: feature.data.object.sha, force: false });
  await expectStatus("non-FF lock update", gh.rest.git.updateRef({ ...r, ref: lock, sha: side.data.object.sha, force: false }), 422, (d) => d.message === "Update is not a fast forward");
  await gh.rest.git.deleteRef({ ...r, ref: lock });
  await expectStatus("deleted lock", gh.rest.git.deleteRef({ ...r, ref: lock }), 422, (d) => d.message === "Reference does not exist");

  // Conditional requests: ETag in, 304 out.
  const etag = main.headers.etag;
  check("weak ETag", /^W\/"[0-9a-f]{32}"$/.test(etag ?? ""), etag);
  await expectStatus("conditional getRef", gh.rest.git.getRef({ ...r, ref: "heads/main", headers: { "if-none-match": etag } }), 304);
  const commitEtag = (await gh.rest.git.getCommit({ ...r, commit_sha: main.data.object.sha })).headers.etag;
  await expectStatus("conditional getCommit", gh.rest.git.getCommit({ ...r, commit_sha: main.data.object.sha, headers: { "if-none-match": commitEtag } }), 304);

  // The git database: blob -> tree -> commit -> ref.
  const blob = await gh.rest.git.createBlob({ ...r, content: "hotfix\n", encoding: "utf-8" });
  check("blob sha", /^[0-9a-f]{40}$/.test(blob.data.sha), blob.data);
  const bytes = Buffer.from([0, 1, 2, 253, 254, 255]);
  const blob64 = await gh.rest.git.createBlob({ ...r, content: bytes.toString("base64"), encoding: "base64" });
  const gotBlob = await gh.rest.git.getBlob({ ...r, file_sha: blob64.data.sha });
  check("blob content", Buffer.from(gotBlob.data.content, "base64").equals(bytes) && gotBlob.data.encoding === "base64" && gotBlob.data.size === 6, gotBlob.data);
  const raw = await gh.request("GET /repos/{owner}/{repo}/git/blobs/{file_sha}", { ...r, file_sha: blob64.data.sha, mediaType: { format: "raw" } });
  check("raw blob", Buffer.from(raw.data).equals(bytes), raw.data);
  await expectStatus("unknown blob", gh.rest.git.getBlob({ ...r, file_sha: "1".repeat(40) }), 404);
  await expectStatus("blob without content", gh.request("POST /repos/{owner}/{repo}/git/blobs", { ...r, encoding: "utf-8" }), 422);
  const baseCommit = await gh.rest.git.getCommit({ ...r, commit_sha: main.data.object.sha });
  const tree = await gh.rest.git.createTree({
    ...r,
    base_tree: baseCommit.data.tree.sha,
    tree: [
      { path: "hotfix.txt", mode: "100644", type: "blob", sha: blob.data.sha },
      { path: "ops/notes.md", mode: "100644", type: "blob", content: "# notes\n" },
    ],
  });
  check("tree entries", tree.data.tree.some((e) => e.path === "ops" && e.type === "tree"), tree.data.tree);
  const deep = await gh.rest.git.getTree({ ...r, tree_sha: tree.data.sha, recursive: "1" });
  check("recursive tree", deep.data.tree.some((e) => e.path === "ops/notes.md" && e.size === 8), deep.data.tree);
  await expectStatus("unknown tree", gh.rest.git.getTree({ ...r, tree_sha: "1".repeat(40) }), 404);
  await expectStatus("tree with unknown blob", gh.rest.git.createTree({ ...r, tree: [{ path: "x", mode: "100644", type: "blob", sha: "1".repeat(40) }] }), 422);
  const commit = await gh.rest.git.createCommit({
    ...r,
    message: "hotfix: guard large orders",
    tree: tree.data.sha,
    parents: [main.data.object.sha],
    author: { name: "Dana", email: "dana@example.test", date: "2026-03-04T05:06:07Z" },
  });
  check("commit parents", commit.data.parents[0].sha === main.data.object.sha && commit.data.tree.sha === tree.data.sha, commit.data);
  await gh.rest.git.createCommit({ ...r, message: "root", tree: tree.data.sha, parents: [] });
  await expectStatus("commit on unknown tree", gh.rest.git.createCommit({ ...r, message: "x", tree: "1".repeat(40), parents: [] }), 422, (d) => d.message === "Tree SHA does not exist");
  await gh.rest.git.createRef({ ...r, ref: "refs/heads/hotfix", sha: commit.data.sha });

  // Workflow runs (the harness set run 4242 to completed/success).
  const run = await gh.rest.actions.getWorkflowRun({ ...r, run_id: 4242 });
  check("workflow run", run.data.status === "completed" && run.data.conclusion === "success" && run.data.id === 4242, run.data);
  await expectStatus("unknown run", gh.rest.actions.getWorkflowRun({ ...r, run_id: 1 }), 404);

  // Tags and commits.
  const tag = await gh.rest.git.createTag({ ...r, tag: "v1.0.0", message: "release", object: main.data.object.sha, type: "commit", tagger: { name: "Rel", email: "rel@example.test", date: "2026-01-02T03:04:05Z" } });
  await gh.rest.git.createRef({ ...r, ref: "refs/tags/v1.0.0", sha: tag.data.sha });
  await gh.rest.git.getTag({ ...r, tag_sha: tag.data.sha });
  await gh.rest.repos.listTags(r);
  await gh.rest.git.getCommit({ ...r, commit_sha: main.data.object.sha });
  const c = await gh.rest.repos.getCommit({ ...r, ref: "feature" });
  check("commit files", c.data.files.length === 1, c.data.files);
  for (const [basehead, status] of [["main...feature", "ahead"], ["feature...main", "behind"], ["main...main", "identical"], ["main...side", "diverged"]]) {
    const cmp = await gh.rest.repos.compareCommitsWithBasehead({ ...r, basehead });
    check(`compare ${basehead}`, cmp.data.status === status, cmp.data.status);
  }
  await gh.rest.repos.getBranch({ ...r, branch: "main" });
  await gh.rest.repos.listBranches(r);
  await expectStatus("missing branch", gh.rest.repos.getBranch({ ...r, branch: "nope" }), 404);

  // Pulls and issues.
  const pr = await gh.rest.pulls.create({ ...r, title: "Feature", head: "feature", base: "main", draft: true });
  check("PR number", pr.data.number === 1, pr.data.number);
  await expectStatus("duplicate PR", gh.rest.pulls.create({ ...r, title: "Again", head: `${owner}:feature`, base: "main" }), 422, (d) => d.errors?.[0]?.message === `A pull request already exists for ${owner}:feature.`);
  const prs = await gh.rest.pulls.list({ ...r, head: `${owner}:feature`, state: "open", base: "main" });
  check("PR list", prs.data.length === 1, prs.data.length);
  await gh.rest.pulls.get({ ...r, pull_number: 1 });
  const issue = await gh.rest.issues.create({ ...r, title: "Incident", body: "orders dropped", labels: ["incident"] });
  check("issue number", issue.data.number === 2, issue.data.number);
  await gh.rest.issues.get({ ...r, issue_number: 2 });
  await gh.rest.issues.addLabels({ ...r, issue_number: 2, labels: ["sev1"] });
  await gh.rest.issues.addAssignees({ ...r, issue_number: 2, assignees: ["alice"] });
  await gh.rest.issues.createComment({ ...r, issue_number: 2, body: "rolling back" });
  await gh.rest.issues.listComments({ ...r, issue_number: 2 });
  const list = await gh.rest.issues.listForRepo({ ...r, labels: "incident", state: "open" });
  check("issue list", list.data.length === 1, list.data.length);
  const closed = await gh.rest.issues.update({ ...r, issue_number: 2, state: "closed", state_reason: "not_planned" });
  check("closed", closed.data.state_reason === "not_planned", closed.data.state_reason);
  await expectStatus("missing issue", gh.rest.issues.get({ ...r, issue_number: 99 }), 404);
  await expectStatus("issue without title", pat.request("POST /repos/{owner}/{repo}/issues", { ...r, body: "x" }), 422);

  // Deployments.
  const d = await gh.rest.repos.createDeployment({ ...r, ref: "main", environment: "production", required_contexts: [], auto_merge: false, payload: { slot: "staging" } });
  check("deployment", d.status === 201, d.status);
  await gh.rest.repos.createDeploymentStatus({ ...r, deployment_id: d.data.id, state: "in_progress", log_url: "https://example.test/log" });
  await gh.rest.repos.createDeploymentStatus({ ...r, deployment_id: d.data.id, state: "success" });
  await gh.rest.repos.listDeploymentStatuses({ ...r, deployment_id: d.data.id });
  await gh.rest.repos.listDeployments({ ...r, environment: "production" });
  await gh.rest.repos.getDeployment({ ...r, deployment_id: d.data.id });
  await expectStatus("deployment of unknown ref", gh.rest.repos.createDeployment({ ...r, ref: "nope", required_contexts: [] }), 422);

  await gh.rest.apps.revokeInstallationAccessToken();
  await expectStatus("revoked token", gh.rest.repos.get(r), 401, (d) => d.message === "Bad credentials");
}

try {
  await main();
} catch (e) {
  results.failed++;
  results.failures.push(`unexpected: ${e.status ?? ""} ${e.message} ${JSON.stringify(e.response?.data ?? "").slice(0, 300)}`);
}
for (const [k, v] of Object.entries(validated)) results.validated[k] = [...v].sort();
results.operations = Object.keys(results.validated).length;
console.log(JSON.stringify(results));
process.exit(results.failed === 0 ? 0 : 1);

#!/usr/bin/env bash
# Rehearse the Contoso hotfix on the built-in sandbox, with the real binary:
# gate on real result files, deploy 2.4.1 through the staging slot with
# verification, then the one-click rollback, clicked twice.
# Needs: cargo, python3 (to build the demo package). Touches nothing outside
# 127.0.0.1 and a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --bin expedite
bin=$PWD/target/debug/expedite
work=$(mktemp -d)
cleanup() { [ -n "${sandbox_pid:-}" ] && kill "$sandbox_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "start the sandbox (Azure on 127.0.0.1, production serves the bad 2.4.0)"
"$bin" sandbox > "$work/sandbox.env" 2> "$work/sandbox.log" &
sandbox_pid=$!
for _ in $(seq 1 100); do grep -q AZURE_SUBSCRIPTION_ID "$work/sandbox.env" 2>/dev/null && break; sleep 0.1; done
# shellcheck disable=SC1091
. "$work/sandbox.env"

say "gate: critical tests and the security scan (real xUnit results, Trivy scan)"
"$bin" gate --results tests/fixtures/test-results/trx-xunitv3-passed-blame-warning.trx \
  --sarif tests/fixtures/test-results/sarif-trivy-image.sarif --security-threshold critical

say "deploy 2.4.1: staging slot, health and identity, swap, verification"
python3 -c "import zipfile; z = zipfile.ZipFile('$work/app.zip', 'w'); z.writestr('expedite-demo.json', '{\"version\": \"2.4.1\"}'); z.close()"
"$bin" deploy --app-name app-contoso-payments --package "$work/app.zip" --expected-version 2.4.1 \
  --check-interval 1s --verify-window 5s --verify-interval 1s --summary-file "$work/deploy.md"

say "rollback (the one-click path), with a reason"
"$bin" rollback --services app-contoso-payments --reason 'drill: checking the one-click path'

say "rollback again: production is already on the target, nothing changes"
"$bin" rollback --services app-contoso-payments --reason 'drill: second click'

say "done: the deploy's job summary is below"
cat "$work/deploy.md"

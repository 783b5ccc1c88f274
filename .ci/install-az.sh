#!/usr/bin/env bash
# Installs the Azure CLI from PyPI into its own venv (.ci/az-venv, gitignored)
# for the Azure CLI fidelity test (sandbox/tests/azure_cli.rs). Pinned: the
# test proves the sandbox against this exact release. Idempotent: a venv that
# already has this version is left alone. Prints the az binary's path last.
set -euo pipefail
cd "$(dirname "$0")/.."
AZ_VERSION=2.91.0
venv=.ci/az-venv
az="$PWD/$venv/bin/az"
if [ -x "$az" ] && "$PWD/$venv/bin/python" -c "
import importlib.metadata as m, sys
sys.exit(m.version('azure-cli') != '$AZ_VERSION')" 2>/dev/null; then
  echo "$az"
  exit 0
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/pip" install --quiet --disable-pip-version-check "azure-cli==$AZ_VERSION"
"$az" version --output none >/dev/null 2>&1 || { echo "az $AZ_VERSION does not start" >&2; exit 1; }
echo "$az"

#!/usr/bin/env bash
# Build the real pulumi CLI and the Hetzner Cloud provider plugin from Go modules, cached by version.
#
#   .ci/build-pulumi.sh            build what is missing, install the hcloud plugin, print the bin dir
#
# The CLI comes from the wrapper module in .ci/pulumi (pkg/v3 and sdk/v3 at the same version, the
# remote replaces re-declared). The plugin comes from pulumi-hcloud's `provider` module at the commit
# that matches the installed pulumi_hcloud SDK; its schema-embed.json is generated (not in the module
# zip), so the module is copied and the file generated from the committed schema.json first.
# The AWS and GCP plugins cannot be built this way: their go.mod replaces the upstream Terraform
# provider with a patched local submodule that the module proxy does not serve.
#
# Binaries go to $DEPLAT_ENGINE_CACHE (default ~/.cache/deplat)/pulumi-vX/ and
# .../pulumi-resource-hcloud-vY/; a second run finds them and builds nothing.
# Exits non-zero when anything fails: CI must not turn a broken build into skipped tests.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${DEPLAT_ENGINE_CACHE:-$HOME/.cache/deplat}"

# The CLI version is the one the wrapper module requires.
pulumi_version="$(awk '$1 == "github.com/pulumi/pulumi/pkg/v3" { print $2; exit }' "$here/pulumi/go.mod")"
# The Hetzner Cloud plugin: the release of the installed pulumi_hcloud SDK and the module version of
# pulumi-hcloud's `provider` module at that release's commit (the repo tags vX, never provider/vX, so
# it is addressed by pseudo-version). Empty = not built: on these machines the module proxy refuses
# that module in every form (list, tag, commit, pseudo-version), e.g.
#   go: module github.com/pulumi/pulumi-hcloud/provider: reading
#   https://<the module proxy>/github.com/pulumi/pulumi-hcloud/provider/@v/list: 403 Forbidden
#   server response: This module version is not available.
# Set HCLOUD_PROVIDER_PSEUDO=vX.Y.Z-0.YYYYMMDDhhmmss-COMMIT12 where the proxy serves it.
hcloud_version="v$(python3 -c 'import importlib.metadata as m; print(m.version("pulumi_hcloud"))')"
hcloud_module="github.com/pulumi/pulumi-hcloud/provider"
hcloud_pseudo="${HCLOUD_PROVIDER_PSEUDO:-}"

build_flags=(-trimpath -tags "osusergo,grpcnotrace")
log() { echo "build-pulumi: $*" >&2; }
seconds() { date +%s; }

cli_dir="$cache/pulumi-$pulumi_version"
cli="$cli_dir/pulumi"
if [[ -x "$cli" ]] && [[ "$("$cli" version 2>/dev/null)" == "$pulumi_version" ]]; then
  log "pulumi $pulumi_version cached at $cli"
else
  log "building pulumi $pulumi_version (a cold build takes several minutes on 2 cores)"
  start=$(seconds)
  mkdir -p "$cli_dir"
  (cd "$here/pulumi" && nice -n 10 go build "${build_flags[@]}" \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$pulumi_version" \
    -o "$cli.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
  mv -f "$cli.tmp" "$cli"
  log "built pulumi $pulumi_version in $(($(seconds) - start)) s"
fi

plugin_dir="$cache/pulumi-resource-hcloud-$hcloud_version"
plugin="$plugin_dir/pulumi-resource-hcloud"
if [[ -x "$plugin" ]]; then
  log "hcloud plugin $hcloud_version cached at $plugin"
elif [[ -z "$hcloud_pseudo" ]]; then
  log "hcloud plugin $hcloud_version not built: HCLOUD_PROVIDER_PSEUDO is unset (the module proxy refuses"
  log "  $hcloud_module here); tests that need it skip and say so"
else
  log "building pulumi-resource-hcloud $hcloud_version ($hcloud_module@$hcloud_pseudo)"
  start=$(seconds)
  mkdir -p "$plugin_dir"
  work="$(mktemp -d)"
  trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
  src="$(cd "$here/pulumi" && go mod download -json "$hcloud_module@$hcloud_pseudo" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error")))')"
  # The module zip lacks the generated schema-embed.json: copy the module, then run upstream's own
  # generator (cmd/pulumi-resource-hcloud/generate.go: schema.json + VERSION -> schema-embed.json).
  cp -r "$src" "$work/provider"
  chmod -R u+w "$work/provider"
  (cd "$work/provider/cmd/pulumi-resource-hcloud" && VERSION="${hcloud_version#v}" nice -n 10 go run generate.go)
  (cd "$work/provider" && nice -n 10 go build "${build_flags[@]}" \
    -ldflags "-s -w -X github.com/pulumi/pulumi-hcloud/provider/pkg/version.Version=${hcloud_version#v}" \
    -o "$plugin.tmp" ./cmd/pulumi-resource-hcloud)
  mv -f "$plugin.tmp" "$plugin"
  log "built pulumi-resource-hcloud $hcloud_version in $(($(seconds) - start)) s"
fi

# Install the plugin into the CLI's plugin cache (PULUMI_HOME, default ~/.pulumi) unless it is there.
if [[ -x "$plugin" ]] && ! "$cli" plugin ls --json 2>/dev/null | python3 -c '
import json, sys
v = sys.argv[1].lstrip("v")
sys.exit(0 if any(p["name"] == "hcloud" and p.get("version") == v for p in json.load(sys.stdin) or []) else 1)
' "$hcloud_version"; then
  log "installing the hcloud plugin $hcloud_version into the plugin cache"
  "$cli" plugin install resource hcloud "$hcloud_version" --file "$plugin" >&2
fi
echo "$cli_dir"

#!/usr/bin/env bash
# Builds ringzero's Pulumi toolchain from pinned Go modules, offline-capable once cached.
#
#   tools/pulumi/build.sh                  build (or reuse) and print the bin dir
#   tools/pulumi/build.sh --key            print the cache key only
#   tools/pulumi/build.sh --prune          also delete other toolchain builds in the cache
#   tools/pulumi/build.sh --update-modules rewrite engine/ and libvirt/ go.mod + go.sum
#                                          from versions.env (needs the Go module proxy)
#
# Output: ${RINGZERO_CACHE:-$HOME/.cache/ringzero}/toolchain/<key>/bin with
#   pulumi, pulumi-language-python, pulumi-language-python-exec,
#   pulumi-resource-pulumi-python, pulumi-resource-libvirt
# and the symlink <repo>/.toolchain/bin pointing at it. The bin dir is printed on stdout;
# everything else goes to stderr.
#
# The key hashes versions.env, this script and every go.mod/go.sum/*.go under engine/ and
# libvirt/: a warm run only hashes files and links. Builds run in a temporary directory
# that is renamed into place only on success, under the cache's .heavy.lock. Go modules and
# the build cache live in the ringzero cache too (go/mod, go/build), so a rebuild after a
# pin change downloads and compiles only what changed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${RINGZERO_CACHE:-$HOME/.cache/ringzero}

log() { printf 'build.sh: %s\n' "$*" >&2; }
die() {
	printf 'build.sh: error: %s\n' "$*" >&2
	exit 1
}

mode=build
prune=false
for arg in "$@"; do
	case $arg in
	--key) mode=key ;;
	--update-modules) mode=update ;;
	--prune) prune=true ;;
	-h | --help)
		sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown argument: $arg (see --help)" ;;
	esac
done

[[ -f $here/versions.env ]] || die "missing $here/versions.env"
# shellcheck source=versions.env
. "$here/versions.env"
for v in PULUMI_VERSION PULUMI_PKG_MODULE_VERSION PULUMI_SDK_MODULE_VERSION PULUMI_PYTHON_SDK_VERSION \
	PULUMI_LIBVIRT_VERSION PULUMI_LIBVIRT_PYTHON_VERSION TERRAFORM_PROVIDER_LIBVIRT_VERSION \
	PULUMI_TERRAFORM_BRIDGE_VERSION PULUMI_TERRAFORM_PLUGIN_SDK_FORK GO_MIN_VERSION; do
	[[ -n ${!v:-} ]] || die "versions.env does not set $v"
done
[[ $PULUMI_PKG_MODULE_VERSION == "$PULUMI_SDK_MODULE_VERSION" ]] ||
	die "pkg/v3 ($PULUMI_PKG_MODULE_VERSION) and sdk/v3 ($PULUMI_SDK_MODULE_VERSION) must be the same version"
[[ v$PULUMI_VERSION == "$PULUMI_PKG_MODULE_VERSION" ]] ||
	die "PULUMI_VERSION ($PULUMI_VERSION) must match PULUMI_PKG_MODULE_VERSION ($PULUMI_PKG_MODULE_VERSION)"

# The Python pins in pyproject.toml must be the ones this toolchain was made for.
check_python_pin() { # name expected
	local pin
	pin=$(sed -n "s/^[[:space:]]*\"$1==\([^\"]*\)\".*/\1/p" "$repo/pyproject.toml" | head -n1)
	[[ -z $pin || $pin == "$2" ]] ||
		die "pyproject.toml pins $1==$pin but tools/pulumi/versions.env is for $2: update both together"
}
if [[ -f $repo/pyproject.toml ]]; then
	check_python_pin pulumi "$PULUMI_PYTHON_SDK_VERSION"
	check_python_pin pulumi-libvirt "$PULUMI_LIBVIRT_PYTHON_VERSION"
fi

recipe_files() {
	(
		cd "$here"
		printf '%s\n' versions.env build.sh
		find engine libvirt -type f \( -name go.mod -o -name go.sum -o -name '*.go' -o -name '*.patch' \) | LC_ALL=C sort
	)
}
compute_key() {
	local f
	recipe_files | while IFS= read -r f; do
		printf '%s\n' "$f"
		sha256sum <"$here/$f"
	done | sha256sum | cut -c1-16
}
key=$(compute_key)
if [[ $mode == key ]]; then
	echo "$key"
	exit 0
fi

# Find a Go that is new enough: $GO, then `go` on PATH, then /usr/local/go/bin/go.
find_go() {
	local c v found="" seen=""
	for c in "${GO:-}" "$(command -v go || true)" /usr/local/go/bin/go; do
		[[ -n $c && -x $c && " $seen " != *" $c "* ]] || continue
		seen+=" $c"
		v=$(GOTOOLCHAIN=local "$c" env GOVERSION 2>/dev/null || true)
		v=${v#go}
		found+=" $c (${v:-unknown version})"
		if [[ -n $v && $(printf '%s\n%s\n' "$GO_MIN_VERSION" "$v" | sort -V | head -n1) == "$GO_MIN_VERSION" ]]; then
			echo "$c"
			return 0
		fi
	done
	die "need Go >= $GO_MIN_VERSION to build the Pulumi toolchain; found:${found:- none}." \
		"Install a recent Go (e.g. in /usr/local/go) or set GO=/path/to/go."
}

go_env() {
	export GOTOOLCHAIN=local
	export GOMODCACHE="$cache/go/mod"
	export GOCACHE="$cache/go/build"
	export GOWORK=off
	export CGO_ENABLED=0
}

if [[ $mode == update ]]; then
	gobin=$(find_go)
	go_env
	export GOFLAGS="-mod=mod -buildvcs=false"
	log "updating engine/go.mod to pkg/v3 and sdk/v3 $PULUMI_PKG_MODULE_VERSION"
	(
		cd "$here/engine"
		"$gobin" get "github.com/pulumi/pulumi/pkg/v3@$PULUMI_PKG_MODULE_VERSION" \
			"github.com/pulumi/pulumi/sdk/v3@$PULUMI_SDK_MODULE_VERSION"
		# Copy the non-relative replace directives of pkg/v3's go.mod.
		pkgmod=$("$gobin" list -m -f '{{.GoMod}}' github.com/pulumi/pulumi/pkg/v3)
		if grep -q '^replace[[:space:]]*($' "$pkgmod"; then
			die "pkg/v3's go.mod uses a replace block: copy its non-relative replaces into engine/go.mod by hand"
		fi
		awk '$1 == "replace" && $2 != "github.com/pulumi/pulumi/sdk/v3" && $4 !~ /^\./ {
			old = $2; new = $4; if ($5 != "") new = new "@" $5; print old "=" new }' "$pkgmod" |
			while IFS= read -r r; do
				log "replace $r"
				"$gobin" mod edit -replace="$r"
			done
		"$gobin" mod tidy
	)
	log "updating libvirt/go.mod to terraform-provider-libvirt $TERRAFORM_PROVIDER_LIBVIRT_VERSION," \
		"bridge $PULUMI_TERRAFORM_BRIDGE_VERSION"
	(
		cd "$here/libvirt"
		"$gobin" mod edit -replace="github.com/hashicorp/terraform-plugin-sdk/v2=github.com/pulumi/terraform-plugin-sdk/v2@$PULUMI_TERRAFORM_PLUGIN_SDK_FORK"
		"$gobin" get "github.com/dmacvicar/terraform-provider-libvirt@$TERRAFORM_PROVIDER_LIBVIRT_VERSION" \
			"github.com/pulumi/pulumi-terraform-bridge/v3@$PULUMI_TERRAFORM_BRIDGE_VERSION"
		"$gobin" mod tidy
	)
	log "done: review and commit tools/pulumi/{engine,libvirt}/go.{mod,sum}"
	exit 0
fi

dest="$cache/toolchain/$key"

link_and_print() {
	mkdir -p "$repo/.toolchain"
	ln -sfn "$dest/bin" "$repo/.toolchain/bin"
	if $prune; then
		local d
		for d in "$cache"/toolchain/*; do
			[[ -d $d && $d != "$dest" ]] || continue
			log "pruning $d"
			chmod -R u+w "$d" && rm -rf "$d"
		done
	fi
	echo "$dest/bin"
}

complete() { [[ -f $dest/BUILDINFO && -x $dest/bin/pulumi && -x $dest/bin/pulumi-resource-libvirt ]]; }

if complete; then
	link_and_print
	exit 0
fi

gobin=$(find_go)
go_env
# readonly: go.mod and go.sum are committed and must already be complete.
export GOFLAGS="-mod=readonly -buildvcs=false"
mkdir -p "$cache/toolchain"

exec 9>"$cache/.heavy.lock"
if ! flock -n 9; then
	log "waiting for $cache/.heavy.lock (another heavy build is running)"
	flock 9
fi
if complete; then # built by someone else while we waited
	flock -u 9
	link_and_print
	exit 0
fi

start=$SECONDS
tmp=$(mktemp -d "$cache/toolchain/.build-$key.XXXXXX")
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
mkdir -p "$tmp/out/bin" "$tmp/out/share"
log "building Pulumi toolchain $key (pulumi $PULUMI_VERSION, libvirt $PULUMI_LIBVIRT_VERSION) with $("$gobin" env GOVERSION)"

# Build from copies, so the repository tree is never written to.
cp -R "$here/engine" "$tmp/engine"
cp -R "$here/libvirt" "$tmp/libvirt"

module_version() { "$gobin" list -m -f '{{.Version}}' "$1"; }
# The source directory of a module go.mod pins; an empty module cache (a fresh machine) has
# none until it is downloaded, and `go list` then prints an empty directory.
module_source() {
	"$gobin" mod download "$1" >&2 || die "could not download $1 (the version go.mod pins)"
	"$gobin" list -m -f '{{.Dir}}' "$1"
}
(
	cd "$tmp/engine"
	for m in "github.com/pulumi/pulumi/pkg/v3 $PULUMI_PKG_MODULE_VERSION" \
		"github.com/pulumi/pulumi/sdk/v3 $PULUMI_SDK_MODULE_VERSION"; do
		set -- $m
		got=$(module_version "$1")
		[[ $got == "$2" ]] || die "engine/go.mod has $1 $got but versions.env says $2: run build.sh --update-modules"
	done
) || exit 1
(
	cd "$tmp/libvirt"
	for m in "github.com/dmacvicar/terraform-provider-libvirt $TERRAFORM_PROVIDER_LIBVIRT_VERSION" \
		"github.com/pulumi/pulumi-terraform-bridge/v3 $PULUMI_TERRAFORM_BRIDGE_VERSION"; do
		set -- $m
		got=$(module_version "$1")
		[[ $got == "$2" ]] || die "libvirt/go.mod has $1 $got but versions.env says $2: run build.sh --update-modules"
	done
) || exit 1

# go-libvirt with fixes of ours (libvirt/go-libvirt-*.patch, applied in name order): the
# callback deadlock (upstream digitalocean/go-libvirt#241, open) and the stream-abort deadlock
# of a connection lost mid-upload. The module's source is copied from the module cache,
# patched, and used through a replace directive in the build copy's go.mod only.
(
	cd "$tmp/libvirt"
	src=$(module_source github.com/digitalocean/go-libvirt)
	[[ -n $src && -f $src/rpc.go ]] || die "go-libvirt module source not found ($src)"
	cp -R "$src" "$tmp/go-libvirt" && chmod -R u+w "$tmp/go-libvirt"
	for p in "$here"/libvirt/go-libvirt-*.patch; do
		patch -s -p1 -d "$tmp/go-libvirt" <"$p" ||
			die "$(basename "$p") does not apply to $(basename "$src")"
	done
	"$gobin" mod edit -replace="github.com/digitalocean/go-libvirt=$tmp/go-libvirt"
) || exit 1

# terraform-provider-libvirt with additions of ours (libvirt/terraform-provider-libvirt-*.patch):
# `keydata` and `hostkey` in a qemu+ssh URI carry the key and the pinned host key themselves,
# so the provider of a remote host is configured from the state alone (plain `pulumi destroy`,
# `pulumi refresh` without the program) and no key file is written for it. Same mechanism.
(
	cd "$tmp/libvirt"
	src=$(module_source github.com/dmacvicar/terraform-provider-libvirt)
	[[ -n $src && -f $src/libvirt/uri/ssh.go ]] || die "terraform-provider-libvirt module source not found ($src)"
	cp -R "$src" "$tmp/terraform-provider-libvirt" && chmod -R u+w "$tmp/terraform-provider-libvirt"
	for p in "$here"/libvirt/terraform-provider-libvirt-*.patch; do
		patch -s -p1 -d "$tmp/terraform-provider-libvirt" <"$p" ||
			die "$(basename "$p") does not apply to $(basename "$src")"
	done
	"$gobin" mod edit -replace="github.com/dmacvicar/terraform-provider-libvirt=$tmp/terraform-provider-libvirt"
) || exit 1

gobuild() { # dir ldflags output package
	(cd "$1" && "$gobin" build -trimpath -ldflags "$2" -o "$3" "$4") ||
		die "go build of $4 failed (see above)"
}

log "[1/4] pulumi CLI"
gobuild "$tmp/engine" "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
	"$tmp/out/bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi

log "[2/4] Python language host and its scripts"
gobuild "$tmp/engine" "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
	"$tmp/out/bin/pulumi-language-python" ./cmd/pulumi-language-python
sdkdir=$(cd "$tmp/engine" && "$gobin" list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
[[ -n $sdkdir && -d $sdkdir/python ]] || die "sdk/v3 module directory not found ($sdkdir)"
install -m 755 "$sdkdir/python/cmd/pulumi-language-python-exec" "$tmp/out/bin/"
install -m 755 "$sdkdir/python/dist/pulumi-resource-pulumi-python" "$tmp/out/bin/"

log "[3/4] libvirt schema"
lvld="-s -w -X ringzero.local/tools/pulumi/libvirt/version.Version=$PULUMI_LIBVIRT_VERSION"
gobuild "$tmp/libvirt" "$lvld" "$tmp/pulumi-tfgen-libvirt" ./cmd/pulumi-tfgen-libvirt
(cd "$tmp/libvirt" && "$tmp/pulumi-tfgen-libvirt" schema --out "$tmp/schema" --skip-docs --skip-examples --quiet) \
	>"$tmp/tfgen.log" 2>&1 || {
	cat "$tmp/tfgen.log" >&2
	die "generating the libvirt schema failed"
}
cp "$tmp/schema/schema.json" "$tmp/libvirt/cmd/pulumi-resource-libvirt/schema-embed.json"
cp "$tmp/schema/schema.json" "$tmp/out/share/libvirt-schema.json"

log "[4/4] pulumi-resource-libvirt"
gobuild "$tmp/libvirt" "$lvld" "$tmp/out/bin/pulumi-resource-libvirt" ./cmd/pulumi-resource-libvirt

# Smoke checks before the build is published.
got=$("$tmp/out/bin/pulumi" version)
[[ $got == "v$PULUMI_VERSION" ]] || die "built pulumi reports $got, expected v$PULUMI_VERSION"
got=$("$tmp/out/bin/pulumi-resource-libvirt" -version 2>&1 || true)
[[ $got == *"$PULUMI_LIBVIRT_VERSION"* ]] || die "built pulumi-resource-libvirt reports '$got', expected $PULUMI_LIBVIRT_VERSION"

{
	echo "key=$key"
	echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "go=$("$gobin" env GOVERSION)"
	grep -E '^[A-Z_]+=' "$here/versions.env"
	echo "patched=github.com/digitalocean/go-libvirt ($(cd "$here" && echo libvirt/go-libvirt-*.patch))"
	echo "patched=github.com/dmacvicar/terraform-provider-libvirt ($(cd "$here" && echo libvirt/terraform-provider-libvirt-*.patch))"
	echo "# sha256"
	(cd "$tmp/out/bin" && sha256sum -- *)
} >"$tmp/out/BUILDINFO"

chmod -R a-w "$tmp/out/bin"
if [[ -e $dest ]]; then # an incomplete leftover (e.g. a binary deleted by hand)
	chmod -R u+w "$dest" && rm -rf "$dest"
fi
mv -T "$tmp/out" "$dest"
flock -u 9
log "built in $((SECONDS - start))s"
link_and_print

#!/usr/bin/env bash
# test-deps.sh installs what 'make test' needs on Debian 12. It is
# idempotent and fast when everything is present: apt runs only when a
# needed command is missing. Run as root (CI does); as another user it
# lists what is missing and exits 1.
#
# Each dependency group is one deps_* function that declares what it needs
# with need_apt (a command and the Debian package that provides it) or
# go_tool / go_tools (tools built with 'go install' into a cache). To add a
# group, write its function and list it in main.
#
# 'test-deps.sh --containerd2-bin' only builds containerd 2.x if needed and
# prints its directory, the value of IMGCRYPT_CONTAINERD2_BIN for the tests;
# 'test-deps.sh --crictl-bin' does the same for crictl (IMGCRYPT_CRICTL_BIN).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Tools built with 'go install' are cached here, keyed by version, so a
# repeated run (or a CI cache of this directory) skips the build.
TOOLS_DIR=${IMGCRYPT_TOOLS_DIR:-$repo/.cache/tools}

missing_pkgs=()  # Debian packages to install
missing_what=()  # what they provide, for the message when not root

# need_apt CHECK PACKAGE: PACKAGE is needed unless CHECK is satisfied; CHECK
# is a command on PATH, or a path (starting with /) that must exist.
need_apt() {
	local check=$1 pkg=$2
	if [[ $check == /* ]]; then
		[[ -e $check ]] && return 0
	else
		command -v "$check" >/dev/null 2>&1 && return 0
	fi
	missing_what+=("$check ($pkg)")
	[[ " ${missing_pkgs[*]} " == *" $pkg "* ]] || missing_pkgs+=("$pkg")
}

# go_tool NAME MODULE/PATH@VERSION: builds the tool once into
# $TOOLS_DIR/NAME@VERSION/ and prints that directory, for the caller to put
# on PATH. Needs only Go and the module proxy, not root.
go_tool() {
	local name=$1 pkg=$2
	local dir=$TOOLS_DIR/$name@${pkg##*@}
	if [[ ! -x $dir/$name ]]; then
		echo "test-deps: building $name (${pkg##*@})" >&2
		GOBIN=$dir go install "$pkg" >&2
	fi
	echo "$dir"
}

# go_tools NAME MODULE@VERSION PKG...: builds several commands of one module
# version (PKG paths relative to MODULE) into $TOOLS_DIR/NAME@VERSION/ in one
# 'go install', and prints that directory. Skips the build when every
# command is already there.
go_tools() {
	local name=$1 mod=${2%@*} version=${2##*@}
	shift 2
	local dir=$TOOLS_DIR/$name@$version pkgs=() p
	for p in "$@"; do
		[[ -x $dir/${p##*/} ]] || pkgs+=("$mod/$p@$version")
	done
	if ((${#pkgs[@]} > 0)); then
		echo "test-deps: building $name ($version): ${pkgs[*]}" >&2
		GOBIN=$dir go install "${pkgs[@]}" >&2
	fi
	echo "$dir"
}

# deps_base: what many groups rely on.
deps_base() {
	need_apt /etc/ssl/certs/ca-certificates.crt ca-certificates
}

# deps_skopeo: the interoperability scripts read and write images with skopeo.
deps_skopeo() {
	need_apt skopeo skopeo
}

# deps_gpg: pgp recipients and keys.
deps_gpg() {
	need_apt gpg gnupg
}

# deps_containerd: the daemon scripts run images on Debian's containerd 1.6
# with runc, from a private registry, and build runnable images around
# Debian's static busybox.
deps_containerd() {
	need_apt containerd containerd
	need_apt /usr/bin/containerd-shim-runc-v2 containerd
	need_apt ctr containerd
	need_apt runc runc
	need_apt /usr/bin/docker-registry docker-registry
	need_apt /bin/busybox busybox-static
}

# deps_softhsm: the hsm_* scripts keep keys in SoftHSM tokens (Debian puts
# its module in /usr/lib/softhsm) and check them with OpenSC's pkcs11-tool.
deps_softhsm() {
	need_apt /usr/lib/softhsm/libsofthsm2.so softhsm2
	need_apt pkcs11-tool opensc
}

# CONTAINERD2_VERSION is the containerd 2.x the [containerd2] scripts run.
CONTAINERD2_VERSION=${CONTAINERD2_VERSION:-v2.4.2}

# deps_containerd2: containerd 2.x and its runc shim, not packaged in Debian
# 12, built into one directory. The test kit finds it through
# IMGCRYPT_CONTAINERD2_BIN; the daemon needs this directory first in PATH
# so it picks this shim, not Debian's 1.6 one. A cold build takes minutes.
deps_containerd2() {
	local dir
	dir=$(containerd2_bin)
	echo "test-deps: containerd $CONTAINERD2_VERSION in $dir (set IMGCRYPT_CONTAINERD2_BIN=$dir)"
}

# containerd2_bin builds containerd 2.x if needed and prints its directory:
# 'hack/test-deps.sh --containerd2-bin' is how the Makefile sets
# IMGCRYPT_CONTAINERD2_BIN.
containerd2_bin() {
	go_tools containerd "github.com/containerd/containerd/v2@$CONTAINERD2_VERSION" \
		cmd/containerd cmd/containerd-shim-runc-v2
}

# CRICTL_VERSION is the crictl the [crictl] scripts pull images with.
CRICTL_VERSION=${CRICTL_VERSION:-v1.34.0}

# deps_crictl: crictl, the Kubernetes CRI client (not packaged in Debian
# 12), built into its own directory. The test kit finds it through
# IMGCRYPT_CRICTL_BIN; the cri_* scripts pull through containerd's CRI
# plugin with it, as the kubelet would.
deps_crictl() {
	local dir
	dir=$(crictl_bin)
	echo "test-deps: crictl $CRICTL_VERSION in $dir (set IMGCRYPT_CRICTL_BIN=$dir)"
}

# crictl_bin builds crictl if needed and prints its directory:
# 'hack/test-deps.sh --crictl-bin' is how the Makefile sets
# IMGCRYPT_CRICTL_BIN.
crictl_bin() {
	go_tool crictl "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
}

# install_apt installs what the groups found missing, in one apt run.
install_apt() {
	((${#missing_pkgs[@]} == 0)) && return 0
	if ((EUID != 0)); then
		echo "test-deps: missing: ${missing_what[*]}" >&2
		echo "test-deps: run this script as root to install them (apt-get)" >&2
		exit 1
	fi
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "test-deps: missing: ${missing_what[*]}, and no apt-get to install them" >&2
		exit 1
	fi
	echo "test-deps: installing ${missing_pkgs[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	apt-get install -y --no-install-recommends "${missing_pkgs[@]}" </dev/null
}

main() {
	if [[ ${1:-} == --containerd2-bin ]]; then
		containerd2_bin
		return
	fi
	if [[ ${1:-} == --crictl-bin ]]; then
		crictl_bin
		return
	fi
	deps_base
	deps_skopeo
	deps_gpg
	deps_containerd
	deps_softhsm
	install_apt
	deps_containerd2
	deps_crictl
	echo "test-deps: everything the tests need is installed"
}

main "$@"

#!/usr/bin/env bash
# demo.sh shows imgcrypt's main job on the embedded store: it imports the
# sample image, encrypts it for a new key, decrypts it again and checks that
# the decrypted layers are the original ones. It needs no root and no daemon,
# and works in a temporary store that it removes when it ends.
#
# Usage: hack/demo.sh   (after 'make build'; 'make demo' does both)
# IMGCRYPT=path/to/imgcrypt runs another build.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
imgcrypt=${IMGCRYPT:-$repo/bin/imgcrypt}
sample=$repo/testdata/images/sample.tar

if [[ ! -x $imgcrypt ]]; then
	echo "demo: $imgcrypt not found; run 'make build' first" >&2
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/imgcrypt-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Everything below runs in the temporary directory, against its own store.
export IMGCRYPT_STORE=$work/store
cd "$work"
mkdir bin
ln -s "$imgcrypt" bin/imgcrypt
PATH=$work/bin:$PATH

# run prints a command as a terminal transcript would, then runs it.
run() {
	printf '$ %s\n' "$*"
	"$@"
}

cp "$sample" sample.tar
run imgcrypt keygen demo-key
run imgcrypt import sample.tar
run imgcrypt encrypt --recipient jwe:demo-key.pub sample sample:enc
run imgcrypt layerinfo sample:enc
run imgcrypt decrypt --key demo-key sample:enc sample:dec
run imgcrypt images

imgcrypt layerinfo --format json sample >plain.json
imgcrypt layerinfo --format json sample:enc >enc.json
imgcrypt layerinfo --format json sample:dec >dec.json

if cmp -s plain.json enc.json; then
	echo "demo: FAIL: sample:enc has the same layers as sample; nothing was encrypted" >&2
	exit 1
fi
if ! cmp -s plain.json dec.json; then
	echo "demo: FAIL: the layers of sample:dec differ from those of sample:" >&2
	diff -u plain.json dec.json >&2 || true
	exit 1
fi
echo "demo: decrypted layers match the originals"

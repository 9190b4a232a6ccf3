#!/usr/bin/env bash
# bench-registry.sh measures pushing and pulling one encrypted 256 MiB image
# over loopback, with imgcrypt and with skopeo in the same run, against
# Debian's docker-registry on 127.0.0.1 (plain HTTP, filesystem storage in a
# temporary directory). It prints the median of RUNS timings of each and
# their ratio. Everything it starts it stops; it changes nothing outside its
# temporary directory.
#
# Usage: hack/bench-registry.sh   (RUNS=5 SIZE=268435456 by default)
set -euo pipefail

RUNS=${RUNS:-5}
export RUNS
SIZE=${SIZE:-268435456}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
for tool in docker-registry skopeo curl bc python3; do
	command -v "$tool" >/dev/null || { echo "bench-registry: needs $tool (hack/test-deps.sh installs it)" >&2; exit 1; }
done

work=$(mktemp -d)
cleanup() {
	local pid
	for pid in "${registry_pids[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

cd "$repo"
go build -o "$work/imgcrypt" .
go run ./internal/testkit/imagegen/cmd/mksample -name docker.io/library/big:latest \
	-platforms linux/amd64 -layers tar -size "$SIZE" "$work/big.tar"

# A fresh registry for each tool and run: skopeo remembers where it pushed a
# blob and mounts it from there instead of uploading it again, which would
# time nothing.
registry_pids=()
# start_registry NAME VAR: starts a registry and sets VAR to its address.
start_registry() {
	local name=$1 port
	local -n addr=$2
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	cat >"$work/$name.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/$name}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
YML
	docker-registry serve "$work/$name.yml" >"$work/$name.log" 2>&1 &
	registry_pids+=($!)
	for _ in $(seq 100); do
		curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
		sleep 0.1
	done
	addr=127.0.0.1:$port
}
export IMGCRYPT_STORE=$work/store
ic="$work/imgcrypt --quiet"
$ic keygen "$work/k" >/dev/null
$ic import "$work/big.tar" >/dev/null
$ic encrypt -r "jwe:$work/k.pub" big big:enc >/dev/null

# seconds CMD...: prints how long CMD took; a failure stops the script.
seconds() {
	local start end
	start=$(date +%s.%N)
	if ! "$@" >"$work/out.log" 2>&1; then
		echo "bench-registry: failed: $*" >&2
		cat "$work/out.log" >&2
		exit 1
	fi
	end=$(date +%s.%N)
	echo "$end - $start" | bc -l
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

declare -A times
for i in $(seq "$RUNS"); do
	start_registry "reg-imgcrypt-$i" ic_reg
	start_registry "reg-skopeo-$i" sk_reg
	# Each run pushes to a fresh repository, so no blob is already there.
	times[imgcrypt-push]+="$(seconds $ic push --plain-http big:enc "$ic_reg/r$i/big:enc") "
	times[skopeo-push]+="$(seconds skopeo copy -q --dest-tls-verify=false \
		"oci:$work/store:docker.io/library/big:enc" "docker://$sk_reg/r$i/big:enc") "
	rm -rf "$work/pull-ic" "$work/pull-sk"
	times[imgcrypt-pull]+="$(seconds $ic --store "$work/pull-ic" pull --plain-http "$ic_reg/r$i/big:enc") "
	times[skopeo-pull]+="$(seconds skopeo copy -q --src-tls-verify=false \
		"docker://$sk_reg/r$i/big:enc" "oci:$work/pull-sk:big") "
done

mib=$(echo "$SIZE / 1048576" | bc -l)
printf '%s MiB encrypted layer over loopback, median of %s runs\n' "$(printf '%.0f' "$mib")" "$RUNS"
for op in push pull; do
	ic_s=$(tr ' ' '\n' <<<"${times[imgcrypt-$op]}" | grep . | median)
	sk_s=$(tr ' ' '\n' <<<"${times[skopeo-$op]}" | grep . | median)
	printf '%s: imgcrypt %.2f s (%.0f MiB/s), skopeo %.2f s (%.0f MiB/s), imgcrypt/skopeo speed %.2fx\n' \
		"$op" "$ic_s" "$(echo "$mib / $ic_s" | bc -l)" "$sk_s" "$(echo "$mib / $sk_s" | bc -l)" "$(echo "$sk_s / $ic_s" | bc -l)"
done

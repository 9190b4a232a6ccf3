#!/usr/bin/env bash
# bench-report.sh summarises 'go test -bench -count N' output: for every
# benchmark it prints the median ns/op and MB/s (and other metrics) over the
# N runs, then the ratios listed in RATIOS below, each between two medians
# measured in the same run: a rate against the raw cipher rate it is bound
# by, a two-layer rate against the one-core one-layer rate, a start-up time
# against a bare Go program's.
#
# Usage: hack/bench-report.sh [FILE]   (standard input without FILE)
set -euo pipefail

# NAME  BASE  KIND (rate: MB/s over MB/s; time: ns/op over ns/op)
RATIOS='
Encrypt1Layer        BaselineCTRHMACSHA256  rate
Decrypt1Layer        BaselineCTRHMACSHA256  rate
Encrypt1LayerOneJob  BaselineCTRHMACSHA256  rate
Decrypt1LayerOneJob  BaselineCTRHMACSHA256  rate
Encrypt2Layers       Encrypt1LayerOneJob    rate
Decrypt2Layers       Decrypt1LayerOneJob    rate
Decoder256MiB        BaselineCTRHMAC        rate
DecoderStartup       BaselineStartup        time
'

awk -v ratios="$RATIOS" '
# median of the n values v[1..n] (sorted in place).
function median(v, n,    i, j, x) {
	for (i = 2; i <= n; i++) {
		x = v[i]
		for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]
		v[j + 1] = x
	}
	return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}

# A result line is "BenchmarkName-P  N  X ns/op  [Y MB/s] ...". Output the
# benchmark itself prints (a log line, say) can come between the name and
# the numbers; the numbers then start a later line and belong to that name.
/^Benchmark/ {
	pending = $1
}

/ ns\/op/ && pending != "" {
	name = pending
	pending = ""
	sub(/-[0-9]+$/, "", name) # the -GOMAXPROCS suffix
	sub(/^Benchmark/, "", name)
	if (!(name in runs)) {
		order[++count] = name
	}
	r = ++runs[name]
	for (i = 1; i < NF; i++) {
		if ($(i + 1) == "ns/op") ns[name, r] = $i
		if ($(i + 1) == "MB/s") { mb[name, r] = $i; hasmb[name] = 1 }
		if ($(i + 1) ~ /^[a-zA-Z]+-[A-Za-z]+$/) { metric[name, r] = $i; metricname[name] = $(i + 1) }
	}
}

END {
	if (count == 0) {
		print "bench-report: no benchmark results in the input" > "/dev/stderr"
		exit 1
	}
	for (k = 1; k <= count; k++) {
		name = order[k]
		n = runs[name]
		for (i = 1; i <= n; i++) v[i] = ns[name, i]
		medns[name] = median(v, n)
		if (hasmb[name]) {
			for (i = 1; i <= n; i++) v[i] = mb[name, i]
			medmb[name] = median(v, n)
		}
		if (length(name) > width) width = length(name)
	}
	printf "\nmedians over the runs of each benchmark\n"
	printf "%-" width "s  %4s  %14s  %10s  %s\n", "BENCHMARK", "RUNS", "ns/op", "MB/s", "OTHER"
	for (k = 1; k <= count; k++) {
		name = order[k]
		rate = hasmb[name] ? sprintf("%.1f", medmb[name]) : "-"
		other = ""
		if (metricname[name] != "") {
			for (i = 1; i <= runs[name]; i++) v[i] = metric[name, i]
			other = sprintf("%.1f %s", median(v, runs[name]), metricname[name])
		}
		printf "%-" width "s  %4d  %14.0f  %10s  %s\n", name, runs[name], medns[name], rate, other
	}
	printf "\nratios of medians measured in this run\n"
	n = split(ratios, line, "\n")
	for (i = 1; i <= n; i++) {
		if (split(line[i], f, " ") != 3) continue
		a = f[1]; b = f[2]
		if (!(a in runs) || !(b in runs)) continue
		if (f[3] == "rate" && medmb[b] > 0) printf "  %-22s / %-22s  %.2fx  (MB/s)\n", a, b, medmb[a] / medmb[b]
		if (f[3] == "time" && medns[b] > 0) printf "  %-22s / %-22s  %.2fx  (time)\n", a, b, medns[a] / medns[b]
	}
}
' "${1:--}"

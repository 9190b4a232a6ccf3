#!/usr/bin/env bash
# bench-report.sh summarises 'go test -bench -count N' output: for every
# benchmark it prints the median ns/op and MB/s over the N runs and, for all
# but the baselines, the ratio of its median MB/s to the baseline's. A
# baseline is any benchmark whose name contains "Baseline" (the raw cipher
# rate); ratios are taken against the first one in the output.
#
# Usage: hack/bench-report.sh [FILE]   (standard input without FILE)
set -euo pipefail

awk '
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
	if (!(name in runs)) {
		order[++count] = name
		if (baseline == "" && name ~ /Baseline/) baseline = name
	}
	r = ++runs[name]
	for (i = 1; i < NF; i++) {
		if ($(i + 1) == "ns/op") ns[name, r] = $i
		if ($(i + 1) == "MB/s") { mb[name, r] = $i; hasmb[name] = 1 }
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
	base = (baseline != "" && hasmb[baseline] && medmb[baseline] > 0) ? medmb[baseline] : 0
	printf "\nmedians over the runs of each benchmark"
	if (baseline != "") printf "; ratios are MB/s against %s", baseline
	printf "\n%-" width "s  %4s  %14s  %10s  %s\n", "BENCHMARK", "RUNS", "ns/op", "MB/s", "vs BASELINE"
	for (k = 1; k <= count; k++) {
		name = order[k]
		rate = hasmb[name] ? sprintf("%.1f", medmb[name]) : "-"
		if (name ~ /Baseline/) ratio = "baseline"
		else if (base > 0 && hasmb[name]) ratio = sprintf("%.2fx", medmb[name] / base)
		else ratio = "-"
		printf "%-" width "s  %4d  %14.0f  %10s  %s\n", name, runs[name], medns[name], rate, ratio
	}
}
' "${1:--}"

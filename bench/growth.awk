# growth.awk - BenchmarkVIPGrowth's growth-% metrics over -count runs: the
# median and the range of each.
/^BenchmarkVIPGrowth/ {
	name = $1
	sub(/-[0-9]+$/, "", name)
	sub(/^BenchmarkVIPGrowth\//, "", name)
	for (i = 3; i < NF; i += 2) {
		if ($(i + 1) !~ /^growth/)
			continue
		k = name " " substr($(i + 1), 10)   # "established vips=100"
		v[k] = v[k] " " $i
		if (!(k in lo) || $i + 0 < lo[k]) lo[k] = $i + 0
		if (!(k in hi) || $i + 0 > hi[k]) hi[k] = $i + 0
		if (!(k in seen)) { seen[k] = 1; order[++n] = k }
	}
}
END {
	printf "%-30s %8s %20s\n", "data plane, VIPs configured", "growth", "range"
	for (j = 1; j <= n; j++) {
		k = order[j]
		printf "%-30s %+7.1f%% %+8.1f%% .. %+5.1f%%\n", k, median(v[k]), lo[k], hi[k]
	}
}

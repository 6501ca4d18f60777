# shellcheck shell=bash
# bench/lib.sh: number helpers shared by the bench/ scripts (source it; defines functions only).
#
#   now                      wall-clock seconds with nanoseconds
#   elapsed A B              B - A, three decimals
#   rate N SECONDS           N / SECONDS, rounded
#   ratio A B                A / B, two decimals ("n/a" when B is 0)
#   best N...                the largest number
#   median N...              the median, rounded
#   group N                  N with thousands separators

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "inf" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
best() { printf '%s\n' "$@" | sort -g | tail -n 1; }
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR % 2) printf "%.0f", v[(NR + 1) / 2]; else printf "%.0f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
group() { awk -v n="$1" 'BEGIN { s = sprintf("%d", n); r = ""; while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) } printf "%s%s", s, r }'; }

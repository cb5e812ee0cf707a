# bench/lib.sh: what the benchmark scripts share. Sourced (not run) after
# they set `top`; functions only, nothing happens on sourcing.
#
#   bench_build DIR CFLAGS TARGET...  configure (once) and build in DIR
#   bench_begin                       under tests/harness.sh: admin, authn, work,
#                                     odsd_pid, and an EXIT trap that runs
#                                     bench_on_exit, stops odsd, removes $work
#   bench_demo BINDIR CUSTOMERS       migrate, load the demo (no ANALYZE of its own: the
#                                     load leaves the statistics a user gets)
#   bench_secret                      a random HS256 secret in $work/secret
#   bench_wait_ready PORT [TENTHS]    wait for /readyz (default 10 s), else
#                                     print odsd's log and exit 1

bench_build() {
	local dir=$1 conf=()
	[ -n "$2" ] && conf=(CFLAGS="$2")
	shift 2
	if [ -f "$top/config.status" ]; then
		echo "bench: the source tree is configured in place, so it cannot also be built" \
			"in $dir; run 'make distclean' in $top (or bench from a clean clone)" >&2
		exit 1
	fi
	mkdir -p "$dir"
	[ -x "$top/configure" ] || (cd "$top" && autoreconf -fi >/dev/null)
	(
		cd "$dir"
		[ -f Makefile ] || "$top/configure" "${conf[@]}" >/dev/null
		make -j"$(nproc)" "$@" >/dev/null
	)
}

bench_on_exit() { :; }

bench_cleanup() {
	bench_on_exit
	if [ -n "$odsd_pid" ]; then
		kill "$odsd_pid" 2>/dev/null || true
		wait "$odsd_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}

bench_begin() {
	admin="$ODS_TEST_DB_URI"
	authn="postgresql://ods_authenticator@${admin#*@}"
	work=$(mktemp -d)
	odsd_pid=
	trap bench_cleanup EXIT
}

bench_demo() {
	"$1/odsctl" migrate --db "$admin" --api-dir "$top/api" >"$work/migrate.log" 2>&1 ||
		{ cat "$work/migrate.log" >&2; exit 1; }
	"$1/odsctl" demo generate --out "$work/demo" --customers "$2" >/dev/null
	"$1/odsctl" demo load --db "$admin" --from "$work/demo" >/dev/null
}

bench_secret() {
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/secret"
}

bench_wait_ready() {
	local port=$1 tries=${2:-100}
	for _ in $(seq 1 "$tries"); do
		curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
		[ -n "$odsd_pid" ] && ! kill -0 "$odsd_pid" 2>/dev/null && break
		sleep 0.1
	done
	echo "odsd did not become ready; its log:" >&2
	cat "$work/odsd.log" >&2 2>/dev/null
	exit 1
}

#!/usr/bin/env bash
# Upload and download throughput and peak RSS of cached for one large NAR,
# on the disk driver and on a local S3 server (MinIO), side by side.
#
#   bench/nar-transfer.sh [SIZE_MIB]      (default 1024)
#
# Needs: Go, curl, the Nix client (for nix-store --dump and nix-hash) and
# MinIO (scripts/test-deps builds it), and zstd. The NAR holds random
# bytes, so zstd cannot shrink it: the worst case. Each store gets two
# rows: the uncompressed NAR (as `nix copy --to URL?compression=none` sends
# it; cached transcodes it to zstd), and the NAR already compressed with
# zstd (stored as it is; on S3 it is written straight to its final key).
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
minio=${CACHED_MINIO:-$HOME/.cache/cached-ci/bin/minio}
work=$(mktemp -d /tmp/cached-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/cached" ./cmd/cached
head -c "$((size_mib << 20))" /dev/urandom >"$work/file"
nix-store --dump "$work/file" >"$work/nar"
rm "$work/file"
nar_size=$(stat -c %s "$work/nar")
nar_hash=$(nix-hash --type sha256 --flat --base32 "$work/nar")
name="$nar_hash.nar"
zstd -q -1 -T0 "$work/nar" -o "$work/nar.zst"
zname="$(nix-hash --type sha256 --flat --base32 "$work/nar.zst").nar.zst"
token=bench-token-$RANDOM$RANDOM
echo "$token" >"$work/tokens"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 200); do curl -fs "$1" >/dev/null && return 0; sleep 0.05; done; echo "no answer from $1" >&2; exit 1; }
peak_reset() { echo 5 >"/proc/$1/clear_refs"; }
peak_mib() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN {printf "%.0f", b/s/1e6}'; }

run() { # run NAME UPLOAD_FILE UPLOAD_NAME STORAGE_ARGS...
	local label=$1 upload=$2 upname=$3
	shift 3
	local port pid url t0 t1 up down par
	port=$(free_port)
	url=http://127.0.0.1:$port
	"$work/cached" serve --listen "127.0.0.1:$port" --data-dir "$work/data-$label" \
		--push-token-file "$work/tokens" --log-level warn "$@" >"$work/$label.out" 2>&1 &
	pid=$!
	pids+=("$pid")
	wait_http "$url/nix-cache-info"
	sync

	peak_reset "$pid"
	t0=$(date +%s.%N)
	curl -fsS -T "$upload" -H "Authorization: Bearer $token" -H 'Content-Type: application/x-nix-nar' "$url/nar/$upname"
	t1=$(date +%s.%N)
	up=$(mbps "$(stat -c %s "$upload")" "$(echo "$t1 - $t0" | bc)")
	local up_rss
	up_rss=$(peak_mib "$pid")

	# Publish a narinfo so that the stored (zstd) file's name is known.
	local hp
	hp=$(printf '%s' "$nar_hash" | cut -c1-32)
	printf 'StorePath: /nix/store/%s-bench\nURL: nar/%s\nNarHash: sha256:%s\nNarSize: %s\nReferences: \n' \
		"$hp" "$upname" "$nar_hash" "$nar_size" |
		curl -fsS -T - -H "Authorization: Bearer $token" "$url/$hp.narinfo"
	local stored
	stored=$(curl -fsS "$url/$hp.narinfo" | awk '/^URL:/ {print $2}')
	local file_size
	file_size=$(curl -fsSI "$url/$stored" | awk 'tolower($1)=="content-length:" {print $2+0}')

	peak_reset "$pid"
	t0=$(date +%s.%N)
	curl -fsS -o /dev/null "$url/$stored"
	t1=$(date +%s.%N)
	down=$(mbps "$file_size" "$(echo "$t1 - $t0" | bc)")
	local down_rss
	down_rss=$(peak_mib "$pid")

	peak_reset "$pid"
	t0=$(date +%s.%N)
	local dl=()
	for _ in $(seq 16); do
		curl -fsS -o /dev/null "$url/$stored" &
		dl+=("$!")
	done
	wait "${dl[@]}"
	t1=$(date +%s.%N)
	par=$(mbps "$((file_size * 16))" "$(echo "$t1 - $t0" | bc)")
	local par_rss
	par_rss=$(peak_mib "$pid")

	printf '| %-11s | %7s | %10s | %9s | %12s | %12s | %15s |\n' "$label" "$up" "$up_rss" "$down" "$down_rss" "$par" "$par_rss"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
}

echo "NAR: $((nar_size >> 20)) MiB of random data; MB/s counts the bytes sent or received"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo
echo '| store       | up MB/s | up RSS MiB | down MB/s | down RSS MiB | 16×down MB/s | 16×down RSS MiB |'
echo '|-------------|---------|------------|-----------|--------------|--------------|-----------------|'
run disk "$work/nar" "$name"
run "disk (zstd)" "$work/nar.zst" "$zname"

if [ -x "$minio" ]; then
	mport=$(free_port)
	mkdir -p "$work/minio"
	MINIO_ROOT_USER=benchadmin MINIO_ROOT_PASSWORD=benchsecret123 MINIO_BROWSER=off MINIO_UPDATE=off \
		"$minio" server --quiet --address "127.0.0.1:$mport" --console-address "127.0.0.1:$(free_port)" "$work/minio" \
		>"$work/minio.log" 2>&1 &
	pids+=("$!")
	wait_http "http://127.0.0.1:$mport/minio/health/ready"
	export AWS_ACCESS_KEY_ID=benchadmin AWS_SECRET_ACCESS_KEY=benchsecret123 AWS_REGION=us-east-1
	curl -fsS -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		"http://127.0.0.1:$mport/bench"
	storage="s3://bench/cache?endpoint=http://127.0.0.1:$mport"
	run s3 "$work/nar" "$name" --storage "$storage"
	run "s3 (zstd)" "$work/nar.zst" "$zname" --storage "$storage"
else
	echo "(no MinIO at $minio: run scripts/test-deps for the S3 row)"
fi

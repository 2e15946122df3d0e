package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestStorageSpace(t *testing.T) {
	m, reg := newTest(t)
	check := func(free, capacity string) {
		t.Helper()
		want := `
# HELP cached_storage_capacity_bytes Size of the file system holding the blobs (-1: not a file system, or unknown).
# TYPE cached_storage_capacity_bytes gauge
cached_storage_capacity_bytes ` + capacity + `
# HELP cached_storage_free_bytes Bytes free for the cache on the file system holding the blobs (-1: not a file system, or unknown).
# TYPE cached_storage_free_bytes gauge
cached_storage_free_bytes ` + free + "\n"
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "cached_storage_free_bytes", "cached_storage_capacity_bytes"); err != nil {
			t.Error(err)
		}
	}
	check("-1", "-1") // no storage told: S3
	ok := true
	m.StorageSpace(func() (int64, int64, bool) { return 4096, 1 << 30, ok })
	check("4096", "1.073741824e+09")
	ok = false
	check("-1", "-1")
	m.BlobMissing("nar")
	if got := testutil.ToFloat64(m.blobsMissing.WithLabelValues("nar")); got != 1 {
		t.Errorf("cached_blobs_missing_total{kind=nar} = %v", got)
	}
}

package metrics

import "github.com/prometheus/client_golang/prometheus"

// BlobMissing counts a request for a blob of kind ("nar", "ls") that the
// catalog records and storage lost.
func (m *Metrics) BlobMissing(kind string) {
	if m == nil {
		return
	}
	m.blobsMissing.WithLabelValues(kind).Inc()
}

// StorageSpace makes the storage space gauges report what space says: the
// bytes free and the capacity of the file system holding the blobs, ok
// false when it cannot tell (S3 has no such thing).
func (m *Metrics) StorageSpace(space func() (free, capacity int64, ok bool)) {
	if m != nil {
		m.space.Store(&space)
	}
}

// spaceGauges are the gauges of StorageSpace: -1 when unknown.
func (m *Metrics) spaceGauges() (free, capacity prometheus.GaugeFunc) {
	read := func(pick func(f, c int64) int64) func() float64 {
		return func() float64 {
			space := m.space.Load()
			if space == nil {
				return -1
			}
			f, c, ok := (*space)()
			if !ok {
				return -1
			}
			return float64(pick(f, c))
		}
	}
	free = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cached_storage_free_bytes",
		Help: "Bytes free for the cache on the file system holding the blobs (-1: not a file system, or unknown)."},
		read(func(f, _ int64) int64 { return f }))
	capacity = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cached_storage_capacity_bytes",
		Help: "Size of the file system holding the blobs (-1: not a file system, or unknown)."},
		read(func(_, c int64) int64 { return c }))
	return free, capacity
}

package web

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// The chart's geometry, in SVG user units: the plot sits inside the
// margins, bytes on the left axis, paths on the right one.
const (
	chartWidth  = 800
	chartHeight = 280
	plotLeft    = 80
	plotRight   = chartWidth - 80
	plotTop     = 16
	plotBottom  = chartHeight - 36
	chartTicks  = 4
)

// chart is an inline SVG chart of the bytes and paths the cache held
// after each collection, and now.
type chart struct {
	Width, Height            int
	Left, Right, Top, Bottom float64
	BytesLine, PathsLine     string // polyline points
	Dots                     []dot
	YTicks                   []yTick
	XTicks                   []xTick
	NowX                     float64
	OnlyNow                  bool // no collection to draw: one point, now
}

// dot is one point of both series, with the tooltip that says what it is.
type dot struct {
	X, YBytes, YPaths float64
	Title             string
}

// yTick is a horizontal grid line with its labels on both axes.
type yTick struct {
	Y            float64
	Bytes, Paths string
}

// xTick is a time label under the plot.
type xTick struct {
	X     float64
	Label string
}

// point is one moment of the series.
type point struct {
	at    time.Time
	bytes int64
	paths int
	what  string
}

// newChart draws the live bytes and paths of the runs that completed
// (runs are newest first), oldest to newest, then the current numbers.
func newChart(runs []catalog.GCRun, now catalog.Stats, at time.Time) *chart {
	var pts []point
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		if r.Error != "" || r.Finished.IsZero() || r.Finished.After(at) {
			continue
		}
		pts = append(pts, point{r.Finished, r.LiveBytes, r.LivePaths, "after the collection of " + formatTime(r.Finished)})
	}
	pts = append(pts, point{at, now.Bytes, now.Paths, "now"})

	c := &chart{Width: chartWidth, Height: chartHeight, Left: plotLeft, Right: plotRight,
		Top: plotTop, Bottom: plotBottom, OnlyNow: len(pts) == 1}
	first, last := pts[0].at, pts[len(pts)-1].at
	span := last.Sub(first)
	x := func(t time.Time) float64 {
		if span <= 0 {
			return (plotLeft + plotRight) / 2
		}
		return plotLeft + float64(t.Sub(first))/float64(span)*(plotRight-plotLeft)
	}
	var maxBytes, maxPaths float64
	for _, p := range pts {
		maxBytes = math.Max(maxBytes, float64(p.bytes))
		maxPaths = math.Max(maxPaths, float64(p.paths))
	}
	topBytes, topPaths := niceCeil(maxBytes, 1024), niceCeil(maxPaths, 10)
	// Whole numbers of paths at every tick.
	topPaths = math.Ceil(topPaths/chartTicks) * chartTicks
	y := func(v, top float64) float64 { return plotBottom - v/top*(plotBottom-plotTop) }

	var bl, pl strings.Builder
	for i, p := range pts {
		d := dot{X: x(p.at), YBytes: y(float64(p.bytes), topBytes), YPaths: y(float64(p.paths), topPaths)}
		d.Title = fmt.Sprintf("%s: %s, %s paths", p.what, humanBytes(p.bytes), count(p.paths))
		c.Dots = append(c.Dots, d)
		if i > 0 {
			bl.WriteByte(' ')
			pl.WriteByte(' ')
		}
		fmt.Fprintf(&bl, "%.1f,%.1f", d.X, d.YBytes)
		fmt.Fprintf(&pl, "%.1f,%.1f", d.X, d.YPaths)
	}
	c.BytesLine, c.PathsLine = bl.String(), pl.String()
	c.NowX = x(at)
	for i := 0; i <= chartTicks; i++ {
		f := float64(i) / chartTicks
		c.YTicks = append(c.YTicks, yTick{
			Y:     plotBottom - f*(plotBottom-plotTop),
			Bytes: humanBytes(int64(f * topBytes)),
			Paths: count(int(math.Round(f * topPaths))),
		})
	}
	layout := "2006-01-02"
	if span < 48*time.Hour {
		layout = "01-02 15:04"
	}
	c.XTicks = append(c.XTicks, xTick{X: x(first), Label: first.UTC().Format(layout)})
	if span > 0 {
		mid := first.Add(span / 2)
		c.XTicks = append(c.XTicks, xTick{X: x(mid), Label: mid.UTC().Format(layout)},
			xTick{X: x(last), Label: "now"})
	}
	return c
}

// niceCeil returns the smallest 1, 2, 4 or 8 times a power of ten (times
// a power of 1024 for bytes) that is at least v, and 1 for 0: its
// quarters are round numbers.
func niceCeil(v, base float64) float64 {
	if v <= 0 {
		return 1
	}
	unit := 1.0
	if base == 1024 {
		for v/unit >= 1024 {
			unit *= 1024
		}
	}
	scaled := v / unit
	pow := math.Pow(10, math.Floor(math.Log10(scaled)))
	for _, m := range []float64{1, 2, 4, 8, 10} {
		if m*pow >= scaled {
			return m * pow * unit
		}
	}
	return 10 * pow * unit
}

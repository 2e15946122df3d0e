package browsertest

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"os"
	"testing"
)

// Screenshot loads url in a fresh headless Chromium with a window of
// width by height CSS pixels (at one device pixel each), writes a PNG of
// the page as it rendered it to file, and returns the image. It fails t
// if Chromium fails or the file is not a PNG of that size.
func Screenshot(t testing.TB, url, file string, width, height int, extra ...string) image.Image {
	t.Helper()
	run(t, url, append(append([]string{}, extra...),
		fmt.Sprintf("--window-size=%d,%d", width, height), "--force-device-scale-factor=1",
		"--hide-scrollbars", "--screenshot="+file))
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("browsertest: chromium took no screenshot of %s: %v", url, err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("browsertest: the screenshot of %s is not a PNG: %v", url, err)
	}
	if got := img.Bounds().Size(); got.X != width || got.Y != height {
		t.Fatalf("browsertest: the screenshot of %s is %dx%d, want %dx%d", url, got.X, got.Y, width, height)
	}
	return img
}

// Ink describes how much an image shows: how many distinct colours it
// has, and the share of its pixels that differ from its most frequent
// colour (the background). A blank page has one colour and no ink.
func Ink(img image.Image) (colours int, ink float64) {
	counts := map[[4]uint32]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			counts[[4]uint32{r, g, bl, a}]++
		}
	}
	background, total := 0, b.Dx()*b.Dy()
	for _, n := range counts {
		background = max(background, n)
	}
	if total == 0 {
		return 0, 0
	}
	return len(counts), float64(total-background) / float64(total)
}

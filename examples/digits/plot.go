package main

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"regexp"
	"strconv"
)

var lossLine = regexp.MustCompile(`^epoch (\d+)/\d+: loss ([0-9.eE+-]+|NaN)`)

// ParseLosses reads the "epoch K/E: loss X" lines `rewrite --train`
// prints and returns the losses in epoch order.
func ParseLosses(r io.Reader) ([]float64, error) {
	var out []float64
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := lossLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		k, _ := strconv.Atoi(m[1])
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return nil, err
		}
		if k != len(out)+1 {
			return nil, fmt.Errorf("epoch %d follows epoch %d", k, len(out))
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no \"epoch K/E: loss X\" lines in the input")
	}
	return out, nil
}

// The axis titles of the loss plot.
const (
	xTitle = "EPOCH"
	yTitle = "LOSS"
)

// Plot draws the loss per epoch as a PNG: the loss from 0 up on the
// vertical axis, epochs 1 to E on the horizontal one, with gridlines, the
// extreme values written at the ends of the axes, and the axes' titles
// (xTitle below the horizontal axis, yTitle above the vertical one).
func Plot(w io.Writer, losses []float64) error {
	const width, height, left, right, top, bottom = 640, 400, 60, 20, 40, 56
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	fill(img, img.Bounds(), color.RGBA{255, 255, 255, 255})
	grey := color.RGBA{220, 220, 220, 255}
	black := color.RGBA{0, 0, 0, 255}
	blue := color.RGBA{31, 119, 180, 255}
	hi := 0.0
	for _, v := range losses {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			hi = math.Max(hi, v)
		}
	}
	if hi == 0 {
		hi = 1
	}
	pw, ph := width-left-right, height-top-bottom
	x := func(k int) int { // epoch k from 0
		if len(losses) == 1 {
			return left + pw/2
		}
		return left + k*pw/(len(losses)-1)
	}
	y := func(v float64) int { return top + ph - int(math.Round(v/hi*float64(ph))) }
	for i := 0; i <= 4; i++ {
		line(img, left, top+i*ph/4, left+pw, top+i*ph/4, grey)
	}
	for k := range losses {
		line(img, x(k), top, x(k), top+ph, grey)
	}
	line(img, left, top, left, top+ph, black)
	line(img, left, top+ph, left+pw, top+ph, black)
	for k := 1; k < len(losses); k++ {
		thick(img, x(k-1), y(losses[k-1]), x(k), y(losses[k]), blue)
	}
	for k, v := range losses {
		fill(img, image.Rect(x(k)-3, y(v)-3, x(k)+4, y(v)+4), blue)
	}
	text(img, left-8, top+ph-5, "0", black, true)
	text(img, left-8, top-5, strconv.FormatFloat(hi, 'f', 2, 64), black, true)
	text(img, x(0), top+ph+10, "1", black, false)
	text(img, x(len(losses)-1), top+ph+10, strconv.Itoa(len(losses)), black, false)
	text(img, left+pw/2, top+ph+32, xTitle, black, false)
	text(img, left, top-30, yTitle, black, false)
	return png.Encode(w, img)
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for py := r.Min.Y; py < r.Max.Y; py++ {
		for px := r.Min.X; px < r.Max.X; px++ {
			img.SetRGBA(px, py, c)
		}
	}
}

// line draws from (x0, y0) to (x1, y1) (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		img.SetRGBA(x0, y0, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func thick(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	for _, d := range [][2]int{{0, 0}, {1, 0}, {0, 1}, {-1, 0}, {0, -1}} {
		line(img, x0+d[0], y0+d[1], x1+d[0], y1+d[1], c)
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}

// glyphs is a 3x5 font for the characters of numbers and the axis
// titles.
var glyphs = map[rune][5]string{
	'0': {"###", "#.#", "#.#", "#.#", "###"}, '1': {".#.", "##.", ".#.", ".#.", "###"},
	'2': {"###", "..#", "###", "#..", "###"}, '3': {"###", "..#", "###", "..#", "###"},
	'4': {"#.#", "#.#", "###", "..#", "..#"}, '5': {"###", "#..", "###", "..#", "###"},
	'6': {"###", "#..", "###", "#.#", "###"}, '7': {"###", "..#", "..#", "..#", "..#"},
	'8': {"###", "#.#", "###", "#.#", "###"}, '9': {"###", "#.#", "###", "..#", "###"},
	'.': {"...", "...", "...", "...", ".#."},
	'C': {".##", "#..", "#..", "#..", ".##"}, 'E': {"###", "#..", "##.", "#..", "###"},
	'H': {"#.#", "#.#", "###", "#.#", "#.#"}, 'L': {"#..", "#..", "#..", "#..", "###"},
	'O': {".#.", "#.#", "#.#", "#.#", ".#."}, 'P': {"##.", "#.#", "##.", "#..", "#.."},
	'S': {".##", "#..", ".#.", "..#", "##."},
}

// text writes s at (x, y) in the 3x5 font scaled by 2: centred on x, or
// ending at x when alignRight.
func text(img *image.RGBA, x, y int, s string, c color.RGBA, alignRight bool) {
	const scale, advance = 2, 4
	w := len(s) * advance * scale
	x0 := x - w/2
	if alignRight {
		x0 = x - w
	}
	for i, r := range s {
		g, ok := glyphs[r]
		if !ok {
			continue
		}
		for row, bits := range g {
			for col, b := range bits {
				if b == '#' {
					px, py := x0+(i*advance+col)*scale, y+row*scale
					fill(img, image.Rect(px, py, px+scale, py+scale), c)
				}
			}
		}
	}
}

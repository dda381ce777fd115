package tensorio

import (
	"fmt"
	"io"
	"strconv"
)

// LimitError reports data that would take more memory than a reader was
// allowed (ReadFileLimit, ReadArchiveLimit, ReadAllLimit), found before it
// was allocated.
type LimitError struct {
	Path  string // the file, when known
	What  string // what was to be read: "the 3 members of the archive"
	Need  int64  // bytes it needs (at least); the largest int64: more than Limit
	Limit int64  // bytes allowed
	// Of, when set, says what Limit is a share of: "a quarter of the
	// memory limit".
	Of string
}

// Error says what would take how much, against which limit.
func (e *LimitError) Error() string {
	at := ""
	if e.Path != "" {
		at = e.Path + ": "
	}
	need := FormatBytes(e.Need)
	if e.Need == 1<<63-1 {
		need = "more than " + FormatBytes(e.Limit)
	}
	limit := "the memory limit of " + FormatBytes(e.Limit)
	if e.Of != "" {
		limit = "the limit of " + FormatBytes(e.Limit) + " (" + e.Of + ")"
	}
	return fmt.Sprintf("%s%s would take %s, over %s", at, e.What, need, limit)
}

// FormatBytes spells a byte count in powers of 1024: 512 B, 1.5 KiB,
// 256 MiB, 4.0 GiB.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, i := float64(n), 0
	for v >= unit && i < 6 {
		v /= unit
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + string("KMGTPE"[i-1]) + "iB"
}

// ReadAllLimit reads r to its end, refusing with a *LimitError (What
// names the data) once more than limit bytes come (any size when
// limit <= 0), so that an endless or huge stream is never held whole.
func ReadAllLimit(r io.Reader, limit int64, what string) ([]byte, error) {
	if limit <= 0 {
		return io.ReadAll(r)
	}
	return io.ReadAll(&limitReader{r: r, left: limit, limit: limit, what: what})
}

// limitReader fails with a *LimitError once more than limit bytes are
// read from r.
type limitReader struct {
	r           io.Reader
	left, limit int64
	what        string
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One byte more tells a stream of exactly limit bytes from a
		// longer one.
		var b [1]byte
		if n, err := l.r.Read(b[:]); n == 0 {
			return 0, err
		}
		return 0, &LimitError{What: l.what, Need: 1<<63 - 1, Limit: l.limit}
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

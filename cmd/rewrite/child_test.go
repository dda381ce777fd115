package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The tests that kill or measure a real process run the command built
// once per test run (buildOnce) into a temporary directory TestMain
// removes.
var built struct {
	once      sync.Once
	dir, path string
	err       error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// binary returns the path of the command, built on first use.
func binary(t *testing.T) string {
	t.Helper()
	if goruntime.GOOS != "linux" {
		t.Skip("the tests of a child process read /proc and use prlimit: Linux only")
	}
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "rewrite-bin"); built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "rewrite")
		out, err := exec.Command("go", "build", "-o", built.path, ".").CombinedOutput()
		if err != nil {
			built.err = &buildError{err, string(out)}
		}
	})
	if built.err != nil {
		t.Fatalf("building the command: %v", built.err)
	}
	return built.path
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

// child is a run of the command in its own process.
type child struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	peak           atomic.Int64 // the largest VmHWM seen, in bytes
	done           chan struct{}
}

// start starts the command with args (and prefix before it: a wrapper
// such as prlimit) and watches its peak resident memory.
func start(t *testing.T, prefix []string, args ...string) *child {
	t.Helper()
	return startIn(t, nil, prefix, args...)
}

// startIn is start with stdin as the child's standard input.
func startIn(t *testing.T, stdin io.Reader, prefix []string, args ...string) *child {
	t.Helper()
	argv := append(append([]string{}, prefix...), binary(t))
	argv = append(argv, args...)
	c := &child{cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{})}
	c.cmd.Stdin, c.cmd.Stdout, c.cmd.Stderr = stdin, &c.stdout, &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go c.watch()
	return c
}

// watch reads the child's VmHWM until it exits. VmHWM is a high-water
// mark, so what is missed is only what the last moments add.
func (c *child) watch() {
	path := "/proc/" + strconv.Itoa(c.cmd.Process.Pid) + "/status"
	for {
		select {
		case <-c.done:
			return
		default:
		}
		if v := vmHWM(path); v > c.peak.Load() {
			c.peak.Store(v)
		}
		time.Sleep(time.Millisecond)
	}
}

// vmHWM reads the VmHWM line of a /proc status file, in bytes; 0 when
// there is none.
func vmHWM(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// wait waits for the child and returns its exit status (-1 when a signal
// ended it).
func (c *child) wait() int {
	err := c.cmd.Wait()
	close(c.done)
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		return -2
	}
	return 0
}

// kill ends the child with SIGKILL and waits for it.
func (c *child) kill() int {
	c.cmd.Process.Kill()
	return c.wait()
}

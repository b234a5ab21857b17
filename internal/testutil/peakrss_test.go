package testutil

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	ServePeakRSSLauncher()
	os.Exit(m.Run())
}

// allocEnv makes TestPeakRSSHelper touch this many MiB (the measured
// child of TestRunPeakRSS).
const allocEnv = "AIRD_TESTUTIL_ALLOC_MIB"

// TestPeakRSSHelper is the measured command of TestRunPeakRSS; alone it
// does nothing.
func TestPeakRSSHelper(t *testing.T) {
	mib, err := strconv.Atoi(os.Getenv(allocEnv))
	if err != nil {
		t.Skip("a helper process of TestRunPeakRSS")
	}
	b := make([]byte, mib<<20)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	os.Exit(3) // a recognisable exit code
}

// TestRunPeakRSS: while this process holds 256 MiB, a child that touches
// 8 MiB measures well below 256 MiB (the test process's memory is not
// counted, as a direct ru_maxrss would count it) and one that touches
// 128 MiB measures at least that; the child's exit code comes through.
func TestRunPeakRSS(t *testing.T) {
	held := make([]byte, 256<<20)
	for i := 0; i < len(held); i += 4096 {
		held[i] = 1
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	measure := func(mib int) int64 {
		t.Setenv(allocEnv, strconv.Itoa(mib))
		out, code, rss := RunPeakRSS(ctx, t, self, "-test.run=^TestPeakRSSHelper$")
		t.Logf("child touching %d MiB: exit %d, peak RSS %.1f MiB", mib, code, float64(rss)/(1<<20))
		if code != 3 {
			t.Fatalf("exit %d, want 3:\n%s", code, out)
		}
		return rss
	}
	if rss := measure(8); rss > 64<<20 {
		t.Errorf("a child touching 8 MiB measured %d bytes: the test process's 256 MiB were counted", rss)
	}
	if rss := measure(128); rss < 128<<20 {
		t.Errorf("a child touching 128 MiB measured only %d bytes", rss)
	}
	runtime.KeepAlive(held)
}

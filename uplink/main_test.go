package uplink

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		runKillHelper(spec)
		return
	}
	goleak.VerifyTestMain(m)
}

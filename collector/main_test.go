package collector_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// database/sql's connection opener lives until DB.Close, which the
		// tests call; modernc's sqlite has no goroutines of its own.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
	)
}

//go:build nocollector

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// The gateway build (make cross, the Debian package) leaves the collector
// out: its database drivers (SQLite, PostgreSQL) would double the binary,
// and the collector runs next to the broker, not on gateways.
var errNoCollector = errors.New("this is the gateway build of modemguard, without the collector; use the full build (make build, or dist/modemguard-full-* from make cross)")

var collectorCommands = [2]command{
	{"collect", "(full build only) run the fleet collector", noCollector},
	{"challenge", "(full build only) challenge a gateway", noCollector},
}

func noCollector(_ context.Context, args []string, _, stderr io.Writer) error {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			fmt.Fprintln(stderr, errNoCollector)
			return nil
		}
	}
	return errNoCollector
}

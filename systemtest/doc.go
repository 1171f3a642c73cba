// Package systemtest holds the system tier: tests against real components a
// user's gateway has — a Mosquitto broker started on a free loopback port,
// nftables in a throwaway network namespace, the arm64 build under
// qemu-aarch64-static. The tests are behind the "system" build tag and run
// with `make test-system` (as root, with the Debian packages .ci/run
// installs); a missing tool fails the test with the package to install.
package systemtest

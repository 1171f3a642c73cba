package collector

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/modemguard/modemguard/attest"
)

// Enrollment is the parsed enrollment file: which public key each gateway
// signs with, and a pool of keys not yet assigned to a gateway, which
// trust-on-first-use may pin (see Config.TOFU).
//
// The file has one entry a line, fields separated by blanks:
//
//	# comment
//	gw-0001 3q2+7w...=      the gateway's key: base64 of the raw 32 bytes (`modemguard pubkey`)
//	*       mC4CAQAw...=    a pool key: any one unknown gateway may claim it under TOFU
//
// A gateway id appears at most once; a key belongs to at most one line.
type Enrollment struct {
	Gateways map[string]ed25519.PublicKey // by gateway id
	Pool     map[string]ed25519.PublicKey // by key id
	ModTime  time.Time                    // of the file it was read from; zero for ParseEnrollment
}

// gatewayIDRe is the agent's rule for gateway ids (agent/config.go): they
// become an MQTT topic level.
var gatewayIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidGatewayID reports whether id is a well-formed gateway id.
func ValidGatewayID(id string) bool { return gatewayIDRe.MatchString(id) }

// ParseEnrollment parses an enrollment file's content; name is used in
// errors, which say file:line. All problems are reported, joined.
func ParseEnrollment(name string, data []byte) (*Enrollment, error) {
	e := &Enrollment{Gateways: map[string]ed25519.PublicKey{}, Pool: map[string]ed25519.PublicKey{}}
	keyLine := map[string]int{} // key id -> line that holds it
	idLine := map[string]int{}
	var errs []error
	bad := func(line int, format string, a ...any) {
		errs = append(errs, fmt.Errorf("collector: %s:%d: %s", name, line, fmt.Sprintf(format, a...)))
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		f := strings.Fields(text)
		switch {
		case len(f) == 0:
			continue
		case len(f) != 2:
			bad(line, "want <gateway_id> <base64 public key> (or * <key> for a pool key), got %d fields", len(f))
			continue
		}
		id := f[0]
		if id != "*" && !ValidGatewayID(id) {
			bad(line, "gateway id %q: want 1 to 64 letters, digits, '.', '_' or '-'", clean(id))
			continue
		}
		pub, err := attest.ParsePublicKey(f[1])
		if err != nil {
			bad(line, "%v", err)
			continue
		}
		kid := attest.KeyID(pub)
		if prev, ok := keyLine[kid]; ok {
			bad(line, "key %s is already on line %d: one key per gateway", kid, prev)
			continue
		}
		keyLine[kid] = line
		if id == "*" {
			e.Pool[kid] = pub
			continue
		}
		if prev, ok := idLine[id]; ok {
			bad(line, "gateway %s is already enrolled on line %d", id, prev)
			continue
		}
		idLine[id] = line
		e.Gateways[id] = pub
	}
	if err := sc.Err(); err != nil {
		bad(line+1, "%v", err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return e, nil
}

// LoadEnrollment reads and parses an enrollment file.
func LoadEnrollment(path string) (*Enrollment, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("collector: enrollment file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("collector: enrollment file: %w", err)
	}
	const maxSize = 64 << 20
	if fi.Size() > maxSize {
		return nil, fmt.Errorf("collector: enrollment file %s: %d bytes, more than %d", path, fi.Size(), maxSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSize))
	if err != nil {
		return nil, fmt.Errorf("collector: enrollment file: %w", err)
	}
	e, err := ParseEnrollment(path, data)
	if err != nil {
		return nil, err
	}
	e.ModTime = fi.ModTime()
	return e, nil
}

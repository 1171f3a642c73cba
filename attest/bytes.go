package attest

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// MarshalJSON writes b as a hex string.
func (b Bytes) MarshalJSON() ([]byte, error) {
	out := make([]byte, 0, 2+2*len(b))
	out = append(out, '"')
	out = hex.AppendEncode(out, b)
	return append(out, '"'), nil
}

// UnmarshalJSON reads a hex string.
func (b *Bytes) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("attest: bytes: want a hex string: %w", err)
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("attest: bytes: %w", err)
	}
	*b = v
	return nil
}

package attest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/tinylib/msgp/msgp"
)

// maxJSONDepth bounds nesting when converting untrusted MessagePack.
const maxJSONDepth = 32

// BodyJSON converts a MessagePack value (a report body) to JSON, keeping
// every key in its wire order, unknown ones included, so a reader older than
// the report still shows all of it. bin values become lowercase hex strings,
// as Bytes does.
func BodyJSON(body []byte) ([]byte, error) {
	var out bytes.Buffer
	rest, err := appendJSON(&out, body, 0)
	if err != nil {
		return nil, fmt.Errorf("attest: body to json: %w: %v", ErrMalformed, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("attest: body to json: %w: %d bytes after the value", ErrMalformed, len(rest))
	}
	return out.Bytes(), nil
}

// EnvelopeJSON renders an envelope for people: v, alg, kid, sig (hex) and
// the body as JSON (see BodyJSON). It checks no signature.
func EnvelopeJSON(env *Envelope) ([]byte, error) {
	body, err := BodyJSON(env.Body)
	if err != nil {
		return nil, err
	}
	return json.Marshal(struct {
		V    uint64          `json:"v"`
		Alg  string          `json:"alg"`
		Kid  string          `json:"kid"`
		Sig  Bytes           `json:"sig"`
		Body json.RawMessage `json:"body"`
	}{env.V, env.Alg, env.Kid, env.Sig, body})
}

func appendJSON(out *bytes.Buffer, b []byte, depth int) ([]byte, error) {
	if depth > maxJSONDepth {
		return b, fmt.Errorf("nested deeper than %d", maxJSONDepth)
	}
	var err error
	switch msgp.NextType(b) {
	case msgp.MapType:
		var n uint32
		if n, b, err = msgp.ReadMapHeaderBytes(b); err != nil {
			return b, err
		}
		out.WriteByte('{')
		for i := uint32(0); i < n; i++ {
			if i > 0 {
				out.WriteByte(',')
			}
			var key []byte
			if msgp.NextType(b) == msgp.StrType {
				if key, b, err = msgp.ReadStringZC(b); err != nil {
					return b, err
				}
				writeJSONString(out, string(key))
			} else { // JSON keys are strings: render any other key as its JSON text
				var kb bytes.Buffer
				if b, err = appendJSON(&kb, b, depth+1); err != nil {
					return b, err
				}
				writeJSONString(out, kb.String())
			}
			out.WriteByte(':')
			if b, err = appendJSON(out, b, depth+1); err != nil {
				return b, err
			}
		}
		out.WriteByte('}')
		return b, nil
	case msgp.ArrayType:
		var n uint32
		if n, b, err = msgp.ReadArrayHeaderBytes(b); err != nil {
			return b, err
		}
		out.WriteByte('[')
		for i := uint32(0); i < n; i++ {
			if i > 0 {
				out.WriteByte(',')
			}
			if b, err = appendJSON(out, b, depth+1); err != nil {
				return b, err
			}
		}
		out.WriteByte(']')
		return b, nil
	case msgp.StrType:
		var s []byte
		if s, b, err = msgp.ReadStringZC(b); err != nil {
			return b, err
		}
		writeJSONString(out, string(s))
	case msgp.BinType:
		var v []byte
		if v, b, err = msgp.ReadBytesZC(b); err != nil {
			return b, err
		}
		out.WriteByte('"')
		out.WriteString(hex.EncodeToString(v))
		out.WriteByte('"')
	case msgp.IntType:
		var v int64
		if v, b, err = msgp.ReadInt64Bytes(b); err != nil {
			return b, err
		}
		out.WriteString(strconv.FormatInt(v, 10))
	case msgp.UintType:
		var v uint64
		if v, b, err = msgp.ReadUint64Bytes(b); err != nil {
			return b, err
		}
		out.WriteString(strconv.FormatUint(v, 10))
	case msgp.Float32Type, msgp.Float64Type:
		var v float64
		if v, b, err = msgp.ReadFloat64Bytes(b); err != nil {
			return b, err
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			out.WriteString("null")
		} else {
			out.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		}
	case msgp.BoolType:
		var v bool
		if v, b, err = msgp.ReadBoolBytes(b); err != nil {
			return b, err
		}
		out.WriteString(strconv.FormatBool(v))
	case msgp.NilType:
		if b, err = msgp.ReadNilBytes(b); err != nil {
			return b, err
		}
		out.WriteString("null")
	case msgp.ExtensionType, msgp.TimeType, msgp.Complex64Type, msgp.Complex128Type:
		// Reports carry no extension types; show one raw rather than fail.
		rest, err := msgp.Skip(b)
		if err != nil {
			return b, err
		}
		fmt.Fprintf(out, `{"msgpack_ext":"%x"}`, b[:len(b)-len(rest)])
		return rest, nil
	default:
		if len(b) == 0 {
			return b, msgp.ErrShortBytes
		}
		return b, fmt.Errorf("unsupported msgpack byte %#x", b[0])
	}
	return b, nil
}

func writeJSONString(out *bytes.Buffer, s string) {
	q, _ := json.Marshal(s) // never fails for a string; invalid UTF-8 becomes U+FFFD
	out.Write(q)
}

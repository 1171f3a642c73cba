package collector_test

import (
	"fmt"

	"github.com/modemguard/modemguard/collector"
)

// An enrollment file: one gateway, one pool key for trust on first use, and
// a mistake reported with file:line.
func ExampleParseEnrollment() {
	e, err := collector.ParseEnrollment("gateways.keys", []byte(`# site A
gw-0001 11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=
*       10V+KBgd5qPyaSUtmr5pFEkAhALtvvdMI8h4SZ3Uj2g=   # spare, for TOFU
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(e.Gateways), "enrolled,", len(e.Pool), "pool key")

	_, err = collector.ParseEnrollment("gateways.keys", []byte("gw-0002 not-a-key\n"))
	fmt.Println(err)
	// Output:
	// 1 enrolled, 1 pool key
	// collector: gateways.keys:1: attest: public key is not base64: illegal base64 data at input byte 8
}

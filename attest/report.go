package attest

//go:generate go tool msgp -tests=false

// Wire limits for decoding untrusted input (tinylib/msgp "limit" directive):
// no array or map in a report may claim more than 4096 elements, so an
// 8-byte message cannot make the decoder allocate gigabytes.
//msgp:limit arrays:4096 maps:64

// Bytes is a byte string that MessagePack carries as bin and JSON shows as
// lowercase hex, so digests and nonces stay readable.
type Bytes []byte

// Report is one attestation report: what the gateway says about itself and
// its cellular modules at one moment. It is encoded as a MessagePack map with
// the string keys in the msg tags (docs/wire-format.md); JSON uses the same
// names. The signed body is exactly the bytes MarshalMsg produced; verifiers
// never re-encode. Report holds no Go maps, so its encoding is deterministic.
//
// Versioning: fields are only ever added, never renamed, retyped or reused.
type Report struct {
	GatewayID    string   `msg:"gateway_id" json:"gateway_id"`
	BootID       string   `msg:"boot_id" json:"boot_id"`
	Seq          uint64   `msg:"seq" json:"seq"`                   // 1, 2, 3, ... per gateway, across restarts and reboots
	TimeMS       int64    `msg:"time_ms" json:"time_ms"`           // Unix milliseconds when the report was made
	ClockSynced  bool     `msg:"clock_synced" json:"clock_synced"` // false: TimeMS comes from a clock that never became sane
	AgentVersion string   `msg:"agent_version" json:"agent_version"`
	PolicyHash   Bytes    `msg:"policy_hash" json:"policy_hash"`         // SHA-256 of the policy file in force; empty without a policy
	PrevHash     Bytes    `msg:"prev_hash" json:"prev_hash"`             // SHA-256 of the previous report's body; 32 zero bytes for seq 1
	Nonce        Bytes    `msg:"nonce,omitempty" json:"nonce,omitempty"` // the collector's challenge this report answers, if any
	Modules      []Module `msg:"modules" json:"modules"`
	Events       []Event  `msg:"events" json:"events"`   // since the previous report
	Verdict      string   `msg:"verdict" json:"verdict"` // the gateway's overall verdict: "allow", "alert" or "deny"
}

// Module is one cellular module, under the same key names and types as
// `modemguard scan --json` (modem.Module), plus its enforcement state.
type Module struct {
	Port           string    `msg:"port,omitempty" json:"port,omitempty"` // the AT port's path
	Manufacturer   string    `msg:"manufacturer" json:"manufacturer"`
	Model          string    `msg:"model" json:"model"`
	Firmware       string    `msg:"firmware" json:"firmware"`
	FirmwareDetail string    `msg:"firmware_detail" json:"firmware_detail"`
	IMEI           string    `msg:"imei" json:"imei"`
	TAC            string    `msg:"tac,omitempty" json:"tac,omitempty"` // the IMEI's type allocation code
	IMSI           string    `msg:"imsi" json:"imsi"`
	ICCID          string    `msg:"iccid" json:"iccid"`
	SIM            string    `msg:"sim" json:"sim"`                                     // ready, absent, pin-required, puk-required, not-ready, unknown
	Vendor         string    `msg:"vendor" json:"vendor"`                               // canonical vendor id ("quectel"), "unknown" when not known
	VendorName     string    `msg:"vendor_name,omitempty" json:"vendor_name,omitempty"` // the vendor's display name
	OriginCountry  string    `msg:"origin_country" json:"origin_country"`               // ISO 3166-1 alpha-2
	Lists          []string  `msg:"lists" json:"lists"`                                 // list memberships, e.g. "fcc-covered"
	USB            USB       `msg:"usb" json:"usb"`
	Network        Network   `msg:"network" json:"network"`
	Findings       []Finding `msg:"findings" json:"findings"`
	Verdict        string    `msg:"verdict" json:"verdict"`         // "allow", "alert", "deny" or "" without a policy
	Enforcement    string    `msg:"enforcement" json:"enforcement"` // "none", "quarantined", "blocked-data", ...
}

// USB is where the module sits on the bus: ids as lowercase hex
// ("2c7c", "0125"), the AT port's bInterfaceNumber (-1 when unknown).
type USB struct {
	VID       string `msg:"vid" json:"vid"`
	PID       string `msg:"pid" json:"pid"`
	Interface int    `msg:"interface" json:"interface"`
}

// Network is the module's view of the cellular network.
type Network struct {
	Operator   string `msg:"operator" json:"operator"` // alphanumeric name, when the module gives one
	PLMN       string `msg:"plmn" json:"plmn"`         // MCC+MNC of the serving network
	RAT        string `msg:"rat" json:"rat"`           // gsm, umts, lte, lte-m, nb-iot, nr5g-sa, nr5g-nsa
	Registered bool   `msg:"registered" json:"registered"`
	Roaming    bool   `msg:"roaming" json:"roaming"`
	State      string `msg:"state" json:"state"` // home, roaming, searching, denied, not-registered, unknown
	APN        string `msg:"apn" json:"apn"`
	Signal     *int   `msg:"signal" json:"signal"` // RSSI in dBm; nil when unknown
}

// Finding is one observation that matters for the verdict.
type Finding struct {
	ID       string `msg:"id" json:"id"`
	Severity string `msg:"severity" json:"severity"` // "info", "low", "medium", "high"
	Detail   string `msg:"detail" json:"detail"`
}

// Event is something that happened since the previous report: an AT
// firewall decision, a module swap, reports dropped from a full outbox, ...
// Kinds are lowercase words joined by dashes; the optional fields are left
// out of the encoding when empty.
type Event struct {
	TimeMS  int64  `msg:"time_ms" json:"time_ms"`
	Kind    string `msg:"kind" json:"kind"` // e.g. "at-firewall", "module-swapped", "outbox-dropped"
	Detail  string `msg:"detail" json:"detail"`
	Subject string `msg:"subject,omitempty" json:"subject,omitempty"` // what it is about: an AT command line, an IMEI, ...
	Action  string `msg:"action,omitempty" json:"action,omitempty"`   // the decision taken: "allow", "deny", "quarantine", ...
	Rule    string `msg:"rule,omitempty" json:"rule,omitempty"`       // the policy rule id that decided
	Count   uint64 `msg:"count,omitempty" json:"count,omitempty"`     // for aggregated events: how many times
}

// Event kinds the agent's own parts emit.
const (
	EventATFirewall    = "at-firewall"
	EventOutboxDropped = "outbox-dropped"
)

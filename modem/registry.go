package modem

import (
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

//go:embed vendors.yaml
var embeddedVendors []byte

// Registry is the vendor registry: canonical vendor ids, the names modules
// report, USB VIDs, headquarters country and public list memberships. It is
// read-only once built and safe for concurrent use.
type Registry struct {
	Version     int               `yaml:"version"`
	Updated     string            `yaml:"updated"`
	Lists       map[string]List   `yaml:"lists"`
	Vendors     []Vendor          `yaml:"vendors"`
	ChipsetVIDs map[string]string `yaml:"chipset_vids"`
}

// List describes one public list.
type List struct {
	Name   string `yaml:"name" json:"name"`
	Source string `yaml:"source" json:"source"`
}

// Vendor is one module maker.
type Vendor struct {
	ID      string       `yaml:"id" json:"id"`
	Name    string       `yaml:"name" json:"name"`
	Aliases []string     `yaml:"aliases" json:"aliases"`
	USBVIDs []string     `yaml:"usb_vids" json:"usb_vids"`
	Country string       `yaml:"country" json:"country"` // ISO 3166-1 alpha-2
	Parent  string       `yaml:"parent" json:"parent,omitempty"`
	Lists   []Membership `yaml:"lists" json:"lists"`
	Sources []string     `yaml:"sources" json:"sources"`
}

// Membership is a vendor's entry on a list.
type Membership struct {
	List   string `yaml:"list" json:"list"`
	Since  string `yaml:"since" json:"since,omitempty"`
	AsOf   string `yaml:"as_of" json:"as_of,omitempty"`
	Source string `yaml:"source" json:"source"`
}

// ListIDs returns the ids of the lists the vendor is on, sorted.
func (v *Vendor) ListIDs() []string {
	ids := make([]string, 0, len(v.Lists))
	for _, m := range v.Lists {
		ids = append(ids, m.List)
	}
	sort.Strings(ids)
	return ids
}

// DefaultRegistry returns the registry built into the binary. Callers
// share it and must not modify it.
var DefaultRegistry = sync.OnceValue(func() *Registry {
	r, err := ParseRegistry("vendors.yaml (embedded)", embeddedVendors)
	if err != nil {
		panic(err) // the embedded file is checked by TestEmbeddedRegistry
	}
	return r
})

// LoadRegistry reads an operator's registry file and lays it over base:
// a vendor with an id base has replaces it, a new id is added, lists and
// chipset VIDs are merged.
func LoadRegistry(base *Registry, path string) (*Registry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("modem: vendor registry: %w", err)
	}
	over, err := ParseRegistry(path, b)
	if err != nil {
		return nil, err
	}
	out := &Registry{Version: over.Version, Updated: over.Updated, Lists: map[string]List{}, ChipsetVIDs: map[string]string{}}
	for k, v := range base.Lists {
		out.Lists[k] = v
	}
	for k, v := range over.Lists {
		out.Lists[k] = v
	}
	for k, v := range base.ChipsetVIDs {
		out.ChipsetVIDs[k] = v
	}
	for k, v := range over.ChipsetVIDs {
		out.ChipsetVIDs[k] = v
	}
	seen := map[string]bool{}
	for _, v := range over.Vendors {
		seen[v.ID] = true
	}
	for _, v := range base.Vendors {
		if !seen[v.ID] {
			out.Vendors = append(out.Vendors, v)
		}
	}
	out.Vendors = append(out.Vendors, over.Vendors...)
	return out, out.validate(path)
}

var (
	vendorIDRe = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	countryRe  = regexp.MustCompile(`^[A-Z]{2}$`)
	vidRe      = regexp.MustCompile(`^[0-9a-f]{4}$`)
	dateRe     = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
)

// ParseRegistry parses and validates a registry file; name is used in
// errors, which carry the line number.
func ParseRegistry(name string, data []byte) (*Registry, error) {
	var r Registry
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("modem: %s: %w", name, err)
	}
	if r.Version != 1 {
		return nil, fmt.Errorf("modem: %s: version %d is not supported (want version: 1)", name, r.Version)
	}
	return &r, r.validate(name)
}

func (r *Registry) validate(name string) error {
	var errs []string
	ids := map[string]bool{}
	for i, v := range r.Vendors {
		where := fmt.Sprintf("vendors[%d] (%s)", i, v.ID)
		if !vendorIDRe.MatchString(v.ID) {
			errs = append(errs, where+": id must be lowercase words joined by '-'")
		}
		if ids[v.ID] {
			errs = append(errs, where+": duplicate id")
		}
		ids[v.ID] = true
		if !countryRe.MatchString(v.Country) {
			errs = append(errs, where+": country must be an ISO 3166-1 alpha-2 code such as CN")
		}
		if len(v.Aliases) == 0 {
			errs = append(errs, where+": needs at least one alias (a name modules report)")
		}
		for _, vid := range v.USBVIDs {
			if !vidRe.MatchString(vid) {
				errs = append(errs, fmt.Sprintf("%s: usb_vid %q must be 4 lowercase hex digits", where, vid))
			}
		}
		if len(v.Sources) == 0 {
			errs = append(errs, where+": cite at least one source")
		}
		for _, m := range v.Lists {
			if _, ok := r.Lists[m.List]; !ok {
				errs = append(errs, fmt.Sprintf("%s: list %q is not defined under lists:", where, m.List))
			}
			if m.Source == "" {
				errs = append(errs, fmt.Sprintf("%s: list %q needs a source", where, m.List))
			}
			for _, d := range []string{m.Since, m.AsOf} {
				if d != "" && !dateRe.MatchString(d) {
					errs = append(errs, fmt.Sprintf("%s: list %q: date %q must be YYYY-MM-DD", where, m.List, d))
				}
			}
			if m.Since == "" && m.AsOf == "" {
				errs = append(errs, fmt.Sprintf("%s: list %q needs since or as_of", where, m.List))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("modem: %s: %s", name, strings.Join(errs, "; "))
	}
	return nil
}

// Vendor returns the vendor with id.
func (r *Registry) Vendor(id string) (*Vendor, bool) {
	for i := range r.Vendors {
		if r.Vendors[i].ID == id {
			return &r.Vendors[i], true
		}
	}
	return nil, false
}

// Match finds the vendor a reported manufacturer string names ("SIMCOM
// INCORPORATED", "Huawei Technologies Co., Ltd.", "Quectel_Ltd"): the
// longest alias that appears in it as a whole word, case-insensitively.
// An unknown name returns false: never guessed.
func (r *Registry) Match(manufacturer string) (*Vendor, bool) {
	s := " " + normalizeName(manufacturer) + " "
	var best *Vendor
	bestLen := 0
	for i := range r.Vendors {
		for _, a := range r.Vendors[i].Aliases {
			a = normalizeName(a)
			if len(a) > bestLen && strings.Contains(s, " "+a+" ") {
				best, bestLen = &r.Vendors[i], len(a)
			}
		}
	}
	return best, best != nil
}

// ByVID returns the vendors that use a USB vendor ID.
func (r *Registry) ByVID(vid string) []*Vendor {
	vid = strings.ToLower(vid)
	var out []*Vendor
	for i := range r.Vendors {
		for _, v := range r.Vendors[i].USBVIDs {
			if v == vid {
				out = append(out, &r.Vendors[i])
			}
		}
	}
	return out
}

// normalizeName lowercases s and turns punctuation other than '-' into
// spaces, so "Quectel_Ltd" and "SIMCOM,INC" split into words.
func normalizeName(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = ' '
		}
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

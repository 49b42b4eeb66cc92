package authn

import "strings"

// maxUsernameLen caps the MQTT username we parse. Real ones are host (≤255) +
// ids (≤128 each) + a product-info string; 4 KiB is generous.
const maxUsernameLen = 4096

// MQTTUsername is the parsed MQTT CONNECT user name of a device or module
// (reference §3.1):
//
//	{host}/{deviceId}[/{moduleId}]/?api-version=...&DeviceClientType=...[&model-id=...]
//
// Unknown parameters are ignored, as edgeHub does; the struct carries the ones
// hubgate knows.
type MQTTUsername struct {
	Host       string
	DeviceID   string
	ModuleID   string // empty for a device
	APIVersion string // mandatory, value not pinned
	ClientType string // DeviceClientType, decoded
	ModelID    string // model-id (IoT Plug and Play), decoded
	AuthChain  string // auth-chain (nested edge), decoded
}

var (
	errUsernameTooLong  = refine(ErrMalformedUsername, "username too long")
	errUsernameShape    = refine(ErrMalformedUsername, "not {host}/{device}[/{module}]/[?]{properties}")
	errUsernameHost     = refine(ErrMalformedUsername, "empty host")
	errUsernameDevice   = refine(ErrMalformedUsername, "empty device id")
	errUsernameModule   = refine(ErrMalformedUsername, "empty module id")
	errUsernameAPIVer   = refine(ErrMalformedUsername, "missing or empty api-version")
	errUsernameNoParams = refine(ErrMalformedUsername, "last segment has no api-version property")
)

// ParseMQTTUsername parses a username with edgeHub's rules
// [edgeHub: Mqtt/MqttUsernameParser.cs]: split on '/'; when the last segment
// starts with '?', 3 segments name a device and 4 a module and the properties
// follow the '?'; otherwise the last segment must contain "api-version=" and
// is the property bag itself. Properties are '&'-separated name=value pairs
// split at the first '='; names are case-sensitive, the first occurrence
// wins, values are percent-decoded leniently (an invalid escape is kept
// verbatim, like .NET Uri.UnescapeDataString), since a product-info string
// must not cost a device its connection. api-version is mandatory but its
// value is not checked. Host and ids are taken verbatim: device ids may
// contain '%', so they are not decoded. edgeHub's special case for one old
// Azure ML client (6 segments) is not copied.
func ParseMQTTUsername(u string) (MQTTUsername, error) {
	var m MQTTUsername
	if len(u) > maxUsernameLen {
		return m, errUsernameTooLong
	}
	nseg := strings.Count(u, "/") + 1
	if nseg != 3 && nseg != 4 {
		return m, errUsernameShape
	}
	var rest string
	m.Host, rest, _ = strings.Cut(u, "/")
	m.DeviceID, rest, _ = strings.Cut(rest, "/")
	if nseg == 4 {
		m.ModuleID, rest, _ = strings.Cut(rest, "/")
		if strings.TrimSpace(m.ModuleID) == "" {
			return MQTTUsername{}, errUsernameModule
		}
	}
	props, ok := strings.CutPrefix(rest, "?")
	if !ok && !strings.Contains(rest, "api-version=") {
		return MQTTUsername{}, errUsernameNoParams
	}
	if strings.TrimSpace(m.Host) == "" {
		return MQTTUsername{}, errUsernameHost
	}
	if strings.TrimSpace(m.DeviceID) == "" {
		return MQTTUsername{}, errUsernameDevice
	}
	var seenAPI, seenType, seenModel, seenChain bool
	for props != "" {
		var kv string
		kv, props, _ = strings.Cut(props, "&")
		name, value, _ := strings.Cut(kv, "=")
		var dst *string
		var seen *bool
		switch name {
		case "api-version":
			dst, seen = &m.APIVersion, &seenAPI
		case "DeviceClientType":
			dst, seen = &m.ClientType, &seenType
		case "model-id":
			dst, seen = &m.ModelID, &seenModel
		case "auth-chain":
			dst, seen = &m.AuthChain, &seenChain
		default:
			continue
		}
		if !*seen {
			*seen = true
			*dst = pctDecodeLenient(value)
		}
	}
	if strings.TrimSpace(m.APIVersion) == "" {
		return MQTTUsername{}, errUsernameAPIVer
	}
	return m, nil
}

// pctDecodeLenient decodes valid %XX escapes and keeps anything else as is.
func pctDecodeLenient(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b.WriteByte(hi<<4 | lo)
				i += 2
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

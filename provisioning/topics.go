package provisioning

import (
	"errors"
	"net/url"
	"strings"
)

// DPS MQTT names (reference §6.1).
const (
	topicRegister     = "$dps/registrations/PUT/iotdps-register/"
	topicStatus       = "$dps/registrations/GET/iotdps-get-operationstatus/"
	topicResponses    = "$dps/registrations/res/"
	topicResponsesAll = "$dps/registrations/res/#"
	maxUsernameLen    = 1024
	maxTopicLen       = 1024
)

var (
	errUsername = errors.New("provisioning: MQTT username is not {idScope}/registrations/{registrationId}/api-version=...")
	errTopic    = errors.New("provisioning: not a DPS request topic")
)

// Username is a parsed DPS MQTT username.
type Username struct {
	IDScope        string
	RegistrationID string
	APIVersion     string
}

// ParseUsername parses "{idScope}/registrations/{registrationId}/api-version=V&ClientVersion=C".
// Node sends no '?' before the query (the C SDK neither); one is tolerated.
// api-version must be present, its value is not pinned (reference §0).
func ParseUsername(u string) (Username, error) {
	if len(u) > maxUsernameLen {
		return Username{}, errUsername
	}
	scope, rest, ok := strings.Cut(u, "/registrations/")
	if !ok || scope == "" || strings.Contains(scope, "/") {
		return Username{}, errUsername
	}
	reg, query, ok := strings.Cut(rest, "/")
	if !ok || reg == "" {
		return Username{}, errUsername
	}
	query = strings.TrimPrefix(query, "?")
	vals, err := url.ParseQuery(query)
	if err != nil {
		return Username{}, errUsername
	}
	v := vals.Get("api-version")
	if v == "" {
		return Username{}, errUsername
	}
	return Username{IDScope: scope, RegistrationID: reg, APIVersion: v}, nil
}

// Request kinds of the DPS MQTT topics.
const (
	RequestRegister = 1
	RequestStatus   = 2
)

// Request is a parsed DPS request topic.
type Request struct {
	Kind        int
	RID         string
	OperationID string
}

// ParseTopic parses "$dps/registrations/PUT/iotdps-register/?$rid=R" and
// "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=R&operationId=O".
// $rid is required (responses echo it); a status request needs operationId.
func ParseTopic(t string) (Request, error) {
	if len(t) > maxTopicLen {
		return Request{}, errTopic
	}
	var r Request
	var q string
	switch {
	case strings.HasPrefix(t, topicRegister+"?"):
		r.Kind, q = RequestRegister, t[len(topicRegister)+1:]
	case strings.HasPrefix(t, topicStatus+"?"):
		r.Kind, q = RequestStatus, t[len(topicStatus)+1:]
	default:
		return Request{}, errTopic
	}
	vals, err := url.ParseQuery(q)
	if err != nil {
		return Request{}, errTopic
	}
	r.RID = vals.Get("$rid")
	r.OperationID = vals.Get("operationId")
	if r.RID == "" || strings.ContainsAny(r.RID, "&#+/") || (r.Kind == RequestStatus && r.OperationID == "") {
		return Request{}, errTopic
	}
	return r, nil
}

// responseTopic is "$dps/registrations/res/{status}/?$rid={rid}[&retry-after={s}]".
func responseTopic(status int, rid string, retryAfter int) string {
	var b strings.Builder
	b.WriteString(topicResponses)
	b.WriteString(itoa(status))
	b.WriteString("/?$rid=")
	b.WriteString(url.QueryEscape(rid))
	if retryAfter > 0 {
		b.WriteString("&retry-after=")
		b.WriteString(itoa(retryAfter))
	}
	return b.String()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var buf [20]byte
	i := len(buf)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		buf[i] = '-'
	}
	return string(buf[i:])
}

package wire

import (
	"fmt"
)

// describedType is a composite with a numeric descriptor encoded as a
// described list (§1.4).
type describedType interface {
	descriptor() uint64
	fields() []any
}

// Performative is an AMQP frame body (§2.7) or a SASL frame body (§5.3.3).
type Performative interface {
	describedType
	performative()
}

// Descriptor codes (§2.7, §2.8.14, §3.4, §3.5, §5.3.3).
const (
	descOpen        = 0x10
	descBegin       = 0x11
	descAttach      = 0x12
	descFlow        = 0x13
	descTransfer    = 0x14
	descDisposition = 0x15
	descDetach      = 0x16
	descEnd         = 0x17
	descClose       = 0x18
	descError       = 0x1d
	descReceived    = 0x23
	descAccepted    = 0x24
	descRejected    = 0x25
	descReleased    = 0x26
	descModified    = 0x27
	descSource      = 0x28
	descTarget      = 0x29
	descSASLMechs   = 0x40
	descSASLInit    = 0x41
	descSASLChall   = 0x42
	descSASLResp    = 0x43
	descSASLOutcome = 0x44
)

// symbolic descriptors (§1.4 "amqp:open:list" form) map to codes.
var symbolic = map[Symbol]uint64{
	"amqp:open:list": descOpen, "amqp:begin:list": descBegin, "amqp:attach:list": descAttach,
	"amqp:flow:list": descFlow, "amqp:transfer:list": descTransfer, "amqp:disposition:list": descDisposition,
	"amqp:detach:list": descDetach, "amqp:end:list": descEnd, "amqp:close:list": descClose,
	"amqp:error:list": descError, "amqp:received:list": descReceived, "amqp:accepted:list": descAccepted,
	"amqp:rejected:list": descRejected, "amqp:released:list": descReleased, "amqp:modified:list": descModified,
	"amqp:source:list": descSource, "amqp:target:list": descTarget,
	"amqp:sasl-mechanisms:list": descSASLMechs, "amqp:sasl-init:list": descSASLInit,
	"amqp:sasl-challenge:list": descSASLChall, "amqp:sasl-response:list": descSASLResp,
	"amqp:sasl-outcome:list": descSASLOutcome,
}

// Role of a link endpoint (§2.8.1): false sender, true receiver.
type Role bool

const (
	RoleSender   Role = false
	RoleReceiver Role = true
)

// Settlement modes (§2.8.2, §2.8.3).
const (
	SndUnsettled uint8 = 0
	SndSettled   uint8 = 1
	SndMixed     uint8 = 2
	RcvFirst     uint8 = 0
	RcvSecond    uint8 = 1
)

// Open is §2.7.1. Absent max-frame-size, channel-max and handle-max decode
// to their spec defaults; they are always encoded.
type Open struct {
	ContainerID         string
	Hostname            string
	MaxFrameSize        uint32 // default 4294967295
	ChannelMax          uint16 // default 65535
	IdleTimeOut         uint32 // milliseconds, 0 = none
	OutgoingLocales     []Symbol
	IncomingLocales     []Symbol
	OfferedCapabilities []Symbol
	DesiredCapabilities []Symbol
	Properties          Map
}

// Begin is §2.7.2.
type Begin struct {
	RemoteChannel       *uint16
	NextOutgoingID      uint32
	IncomingWindow      uint32
	OutgoingWindow      uint32
	HandleMax           uint32 // default 4294967295
	OfferedCapabilities []Symbol
	DesiredCapabilities []Symbol
	Properties          Map
}

// Attach is §2.7.3.
type Attach struct {
	Name                 string
	Handle               uint32
	Role                 Role
	SndSettleMode        uint8 // default mixed
	RcvSettleMode        uint8 // default first
	Source               *Source
	Target               *Target
	Unsettled            Map
	IncompleteUnsettled  bool
	InitialDeliveryCount *uint32
	MaxMessageSize       uint64 // 0 = no limit
	OfferedCapabilities  []Symbol
	DesiredCapabilities  []Symbol
	Properties           Map
}

// Flow is §2.7.4.
type Flow struct {
	NextIncomingID *uint32
	IncomingWindow uint32
	NextOutgoingID uint32
	OutgoingWindow uint32
	Handle         *uint32
	DeliveryCount  *uint32
	LinkCredit     *uint32
	Available      *uint32
	Drain          bool
	Echo           bool
	Properties     Map
}

// Transfer is §2.7.5; Payload is the frame's payload after the performative.
type Transfer struct {
	Handle        uint32
	DeliveryID    *uint32
	DeliveryTag   []byte
	MessageFormat *uint32
	Settled       bool
	More          bool
	RcvSettleMode *uint8
	State         DeliveryState
	Resume        bool
	Aborted       bool
	Batchable     bool

	Payload []byte
}

// Disposition is §2.7.6.
type Disposition struct {
	Role      Role
	First     uint32
	Last      *uint32
	Settled   bool
	State     DeliveryState
	Batchable bool
}

// Detach is §2.7.7.
type Detach struct {
	Handle uint32
	Closed bool
	Error  *Error
}

// End is §2.7.8.
type End struct{ Error *Error }

// Close is §2.7.9.
type Close struct{ Error *Error }

// Error is §2.8.14.
type Error struct {
	Condition   Symbol
	Description string
	Info        Map
}

func (e *Error) Error() string {
	if e.Description == "" {
		return string(e.Condition)
	}
	return string(e.Condition) + ": " + e.Description
}

// Error conditions (§2.8.15–§2.8.18) and the Microsoft ones Node knows
// (reference §4.6).
const (
	ErrInternal           Symbol = "amqp:internal-error"
	ErrNotFound           Symbol = "amqp:not-found"
	ErrUnauthorized       Symbol = "amqp:unauthorized-access"
	ErrDecodeError        Symbol = "amqp:decode-error"
	ErrResourceLimit      Symbol = "amqp:resource-limit-exceeded"
	ErrNotAllowed         Symbol = "amqp:not-allowed"
	ErrInvalidField       Symbol = "amqp:invalid-field"
	ErrNotImplemented     Symbol = "amqp:not-implemented"
	ErrFramingError       Symbol = "amqp:connection:framing-error"
	ErrConnectionForced   Symbol = "amqp:connection:forced"
	ErrUnattachedHandle   Symbol = "amqp:session:unattached-handle"
	ErrHandleInUse        Symbol = "amqp:session:handle-in-use"
	ErrWindowViolation    Symbol = "amqp:session:window-violation"
	ErrDetachForced       Symbol = "amqp:link:detach-forced"
	ErrTransferLimit      Symbol = "amqp:link:transfer-limit-exceeded"
	ErrMessageSizeExceeds Symbol = "amqp:link:message-size-exceeded"
)

// Source is §3.5.3.
type Source struct {
	Address               string
	Durable               uint32
	ExpiryPolicy          Symbol
	Timeout               uint32
	Dynamic               bool
	DynamicNodeProperties Map
	DistributionMode      Symbol
	Filter                Map
	DefaultOutcome        any
	Outcomes              []Symbol
	Capabilities          []Symbol
}

// Target is §3.5.4.
type Target struct {
	Address               string
	Durable               uint32
	ExpiryPolicy          Symbol
	Timeout               uint32
	Dynamic               bool
	DynamicNodeProperties Map
	Capabilities          []Symbol
}

// DeliveryState is one of Received, Accepted, Rejected, Released, Modified (§3.4).
type DeliveryState interface {
	describedType
	deliveryState()
}

type (
	Received struct {
		SectionNumber uint32
		SectionOffset uint64
	}
	Accepted struct{}
	Rejected struct{ Error *Error }
	Released struct{}
	Modified struct {
		DeliveryFailed     bool
		UndeliverableHere  bool
		MessageAnnotations Map
	}
)

// SASL frame bodies (§5.3.3).
type (
	SASLMechanisms struct{ Mechanisms []Symbol }
	SASLInit       struct {
		Mechanism       Symbol
		InitialResponse []byte
		Hostname        string
	}
	SASLChallenge struct{ Challenge []byte }
	SASLResponse  struct{ Response []byte }
	SASLOutcome   struct {
		Code           uint8
		AdditionalData []byte
	}
)

// SASL outcome codes (§5.3.3.6).
const (
	SASLOK      uint8 = 0
	SASLAuth    uint8 = 1
	SASLSys     uint8 = 2
	SASLSysPerm uint8 = 3
	SASLSysTemp uint8 = 4
)

// --- encoding: field lists in spec order ---

func optU16(p *uint16) any {
	if p == nil {
		return nil
	}
	return *p
}

func optU32(p *uint32) any {
	if p == nil {
		return nil
	}
	return *p
}

func optU8(p *uint8) any {
	if p == nil {
		return nil
	}
	return *p
}

func optBool(b bool) any {
	if !b {
		return nil
	}
	return true
}

func optStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func optSym(s Symbol) any {
	if s == "" {
		return nil
	}
	return s
}

func optZero32(v uint32) any {
	if v == 0 {
		return nil
	}
	return v
}

func optErr(e *Error) any {
	if e == nil {
		return nil
	}
	return e
}

func optState(s DeliveryState) any {
	if s == nil {
		return nil
	}
	return s
}

func (*Open) descriptor() uint64 { return descOpen }
func (o *Open) fields() []any {
	return []any{o.ContainerID, optStr(o.Hostname), o.MaxFrameSize, o.ChannelMax, optZero32(o.IdleTimeOut),
		o.OutgoingLocales, o.IncomingLocales, o.OfferedCapabilities, o.DesiredCapabilities, o.Properties}
}

func (*Begin) descriptor() uint64 { return descBegin }
func (b *Begin) fields() []any {
	return []any{optU16(b.RemoteChannel), b.NextOutgoingID, b.IncomingWindow, b.OutgoingWindow, b.HandleMax,
		b.OfferedCapabilities, b.DesiredCapabilities, b.Properties}
}

func (*Attach) descriptor() uint64 { return descAttach }
func (a *Attach) fields() []any {
	var src, tgt any
	if a.Source != nil {
		src = a.Source
	}
	if a.Target != nil {
		tgt = a.Target
	}
	var mms any
	if a.MaxMessageSize != 0 {
		mms = a.MaxMessageSize
	}
	return []any{a.Name, a.Handle, bool(a.Role), a.SndSettleMode, a.RcvSettleMode, src, tgt, a.Unsettled,
		optBool(a.IncompleteUnsettled), optU32(a.InitialDeliveryCount), mms,
		a.OfferedCapabilities, a.DesiredCapabilities, a.Properties}
}

func (*Flow) descriptor() uint64 { return descFlow }
func (f *Flow) fields() []any {
	return []any{optU32(f.NextIncomingID), f.IncomingWindow, f.NextOutgoingID, f.OutgoingWindow,
		optU32(f.Handle), optU32(f.DeliveryCount), optU32(f.LinkCredit), optU32(f.Available),
		optBool(f.Drain), optBool(f.Echo), f.Properties}
}

func (*Transfer) descriptor() uint64 { return descTransfer }
func (t *Transfer) fields() []any {
	var tag any
	if t.DeliveryTag != nil {
		tag = t.DeliveryTag
	}
	return []any{t.Handle, optU32(t.DeliveryID), tag, optU32(t.MessageFormat), optBool(t.Settled),
		optBool(t.More), optU8(t.RcvSettleMode), optState(t.State), optBool(t.Resume), optBool(t.Aborted),
		optBool(t.Batchable)}
}

func (*Disposition) descriptor() uint64 { return descDisposition }
func (d *Disposition) fields() []any {
	return []any{bool(d.Role), d.First, optU32(d.Last), optBool(d.Settled), optState(d.State), optBool(d.Batchable)}
}

func (*Detach) descriptor() uint64 { return descDetach }
func (d *Detach) fields() []any    { return []any{d.Handle, optBool(d.Closed), optErr(d.Error)} }

func (*End) descriptor() uint64   { return descEnd }
func (e *End) fields() []any      { return []any{optErr(e.Error)} }
func (*Close) descriptor() uint64 { return descClose }
func (c *Close) fields() []any    { return []any{optErr(c.Error)} }

func (*Error) descriptor() uint64 { return descError }
func (e *Error) fields() []any {
	return []any{e.Condition, optStr(e.Description), e.Info}
}

func (*Source) descriptor() uint64 { return descSource }
func (s *Source) fields() []any {
	return []any{optStr(s.Address), optZero32(s.Durable), optSym(s.ExpiryPolicy), optZero32(s.Timeout),
		optBool(s.Dynamic), s.DynamicNodeProperties, optSym(s.DistributionMode), s.Filter, s.DefaultOutcome,
		s.Outcomes, s.Capabilities}
}

func (*Target) descriptor() uint64 { return descTarget }
func (t *Target) fields() []any {
	return []any{optStr(t.Address), optZero32(t.Durable), optSym(t.ExpiryPolicy), optZero32(t.Timeout),
		optBool(t.Dynamic), t.DynamicNodeProperties, t.Capabilities}
}

func (*Received) descriptor() uint64 { return descReceived }
func (r *Received) fields() []any    { return []any{r.SectionNumber, r.SectionOffset} }
func (*Accepted) descriptor() uint64 { return descAccepted }
func (*Accepted) fields() []any      { return nil }
func (*Rejected) descriptor() uint64 { return descRejected }
func (r *Rejected) fields() []any    { return []any{optErr(r.Error)} }
func (*Released) descriptor() uint64 { return descReleased }
func (*Released) fields() []any      { return nil }
func (*Modified) descriptor() uint64 { return descModified }
func (m *Modified) fields() []any {
	return []any{optBool(m.DeliveryFailed), optBool(m.UndeliverableHere), m.MessageAnnotations}
}

func (*Received) deliveryState() {}
func (*Accepted) deliveryState() {}
func (*Rejected) deliveryState() {}
func (*Released) deliveryState() {}
func (*Modified) deliveryState() {}

func (*SASLMechanisms) descriptor() uint64 { return descSASLMechs }
func (m *SASLMechanisms) fields() []any    { return []any{m.Mechanisms} }
func (*SASLInit) descriptor() uint64       { return descSASLInit }
func (i *SASLInit) fields() []any {
	var r any
	if i.InitialResponse != nil {
		r = i.InitialResponse
	}
	return []any{i.Mechanism, r, optStr(i.Hostname)}
}
func (*SASLChallenge) descriptor() uint64 { return descSASLChall }
func (c *SASLChallenge) fields() []any    { return []any{c.Challenge} }
func (*SASLResponse) descriptor() uint64  { return descSASLResp }
func (r *SASLResponse) fields() []any     { return []any{r.Response} }
func (*SASLOutcome) descriptor() uint64   { return descSASLOutcome }
func (o *SASLOutcome) fields() []any {
	var d any
	if o.AdditionalData != nil {
		d = o.AdditionalData
	}
	return []any{o.Code, d}
}

func (*Open) performative()           {}
func (*Begin) performative()          {}
func (*Attach) performative()         {}
func (*Flow) performative()           {}
func (*Transfer) performative()       {}
func (*Disposition) performative()    {}
func (*Detach) performative()         {}
func (*End) performative()            {}
func (*Close) performative()          {}
func (*SASLMechanisms) performative() {}
func (*SASLInit) performative()       {}
func (*SASLChallenge) performative()  {}
func (*SASLResponse) performative()   {}
func (*SASLOutcome) performative()    {}

// --- decoding ---

// fields reads a composite's list with type checks; the first mismatch is
// kept in err and every later read returns zero values.
type fields struct {
	f    []any
	name string
	err  error
}

func (r *fields) get(i int) any {
	if r.err != nil || i >= len(r.f) {
		return nil
	}
	return r.f[i]
}

func (r *fields) fail(i int, want string) {
	if r.err == nil {
		r.err = decodeErr("%s field %d: want %s, got %T", r.name, i, want, r.f[i])
	}
}

func (r *fields) mandatory(i int) bool {
	if r.get(i) == nil {
		if r.err == nil {
			r.err = decodeErr("%s field %d is mandatory", r.name, i)
		}
		return false
	}
	return true
}

func (r *fields) str(i int) string {
	switch v := r.get(i).(type) {
	case nil:
		return ""
	case string:
		return v
	case Symbol: // tolerated for addresses and names
		return string(v)
	}
	r.fail(i, "string")
	return ""
}

func (r *fields) sym(i int) Symbol {
	switch v := r.get(i).(type) {
	case nil:
		return ""
	case Symbol:
		return v
	}
	r.fail(i, "symbol")
	return ""
}

// syms reads a "multiple" symbol field: an array or a single symbol (§1.3).
func (r *fields) syms(i int) []Symbol {
	switch v := r.get(i).(type) {
	case nil:
		return nil
	case Symbol:
		return []Symbol{v}
	case []Symbol:
		return v
	case Array:
		if len(v) == 0 {
			return []Symbol{}
		}
	}
	r.fail(i, "symbol array")
	return nil
}

func (r *fields) boolean(i int) bool {
	switch v := r.get(i).(type) {
	case nil:
		return false
	case bool:
		return v
	}
	r.fail(i, "boolean")
	return false
}

func (r *fields) u8(i int, def uint8) uint8 {
	switch v := r.get(i).(type) {
	case nil:
		return def
	case uint8:
		return v
	}
	r.fail(i, "ubyte")
	return def
}

func (r *fields) u16(i int, def uint16) uint16 {
	switch v := r.get(i).(type) {
	case nil:
		return def
	case uint16:
		return v
	}
	r.fail(i, "ushort")
	return def
}

func (r *fields) u32(i int, def uint32) uint32 {
	switch v := r.get(i).(type) {
	case nil:
		return def
	case uint32:
		return v
	}
	r.fail(i, "uint")
	return def
}

func (r *fields) optU32(i int) *uint32 {
	if r.get(i) == nil {
		return nil
	}
	v := r.u32(i, 0)
	return &v
}

func (r *fields) u64(i int) uint64 {
	switch v := r.get(i).(type) {
	case nil:
		return 0
	case uint64:
		return v
	}
	r.fail(i, "ulong")
	return 0
}

func (r *fields) bin(i int) []byte {
	switch v := r.get(i).(type) {
	case nil:
		return nil
	case []byte:
		return v
	}
	r.fail(i, "binary")
	return nil
}

func (r *fields) mapv(i int) Map {
	switch v := r.get(i).(type) {
	case nil:
		return nil
	case Map:
		return v
	}
	r.fail(i, "map")
	return nil
}

func (r *fields) error(i int) *Error {
	v := r.get(i)
	if v == nil {
		return nil
	}
	d, ok := v.(Described)
	if !ok {
		r.fail(i, "error")
		return nil
	}
	e, err := decodeError(d)
	if err != nil && r.err == nil {
		r.err = err
	}
	return e
}

func (r *fields) state(i int) DeliveryState {
	v := r.get(i)
	if v == nil {
		return nil
	}
	d, ok := v.(Described)
	if !ok {
		r.fail(i, "delivery-state")
		return nil
	}
	s, err := decodeState(d)
	if err != nil && r.err == nil {
		r.err = err
	}
	return s
}

// composite checks a described list and returns its code and fields.
func composite(v any) (uint64, []any, error) {
	d, ok := v.(Described)
	if !ok {
		return 0, nil, decodeErr("want a described list, got %T", v)
	}
	var code uint64
	switch x := d.Descriptor.(type) {
	case uint64:
		code = x
	case Symbol:
		c, ok := symbolic[x]
		if !ok {
			return 0, nil, decodeErr("unknown descriptor %q", x)
		}
		code = c
	}
	list, ok := d.Value.([]any)
	if !ok {
		return 0, nil, decodeErr("descriptor 0x%x: value is %T, not a list", code, d.Value)
	}
	return code, list, nil
}

func decodeError(d Described) (*Error, error) {
	code, list, err := composite(d)
	if err != nil {
		return nil, err
	}
	if code != descError {
		return nil, decodeErr("want error, got descriptor 0x%x", code)
	}
	r := fields{f: list, name: "error"}
	r.mandatory(0)
	e := &Error{Condition: r.sym(0), Description: r.str(1), Info: r.mapv(2)}
	return e, r.err
}

func decodeState(d Described) (DeliveryState, error) {
	code, list, err := composite(d)
	if err != nil {
		return nil, err
	}
	r := fields{f: list, name: "delivery-state"}
	var s DeliveryState
	switch code {
	case descReceived:
		r.mandatory(0)
		r.mandatory(1)
		s = &Received{SectionNumber: r.u32(0, 0), SectionOffset: r.u64(1)}
	case descAccepted:
		s = &Accepted{}
	case descRejected:
		s = &Rejected{Error: r.error(0)}
	case descReleased:
		s = &Released{}
	case descModified:
		s = &Modified{DeliveryFailed: r.boolean(0), UndeliverableHere: r.boolean(1), MessageAnnotations: r.mapv(2)}
	default:
		// Transactional states (§4.5.5) are not supported: the engine
		// offers no coordinator.
		return nil, decodeErr("unsupported delivery state 0x%x", code)
	}
	return s, r.err
}

func decodeSource(v any) (*Source, error) {
	if v == nil {
		return nil, nil
	}
	code, list, err := composite(v)
	if err != nil {
		return nil, err
	}
	if code != descSource {
		return nil, decodeErr("want source, got descriptor 0x%x", code)
	}
	r := fields{f: list, name: "source"}
	s := &Source{
		Address: r.str(0), Durable: r.u32(1, 0), ExpiryPolicy: r.sym(2), Timeout: r.u32(3, 0),
		Dynamic: r.boolean(4), DynamicNodeProperties: r.mapv(5), DistributionMode: r.sym(6),
		Filter: r.mapv(7), DefaultOutcome: r.get(8), Outcomes: r.syms(9), Capabilities: r.syms(10),
	}
	return s, r.err
}

func decodeTarget(v any) (*Target, error) {
	if v == nil {
		return nil, nil
	}
	code, list, err := composite(v)
	if err != nil {
		return nil, err
	}
	if code != descTarget {
		// Transaction coordinators (§4.5.1) are not supported.
		return nil, decodeErr("want target, got descriptor 0x%x", code)
	}
	r := fields{f: list, name: "target"}
	t := &Target{
		Address: r.str(0), Durable: r.u32(1, 0), ExpiryPolicy: r.sym(2), Timeout: r.u32(3, 0),
		Dynamic: r.boolean(4), DynamicNodeProperties: r.mapv(5), Capabilities: r.syms(6),
	}
	return t, r.err
}

// DecodePerformative decodes a frame body's performative and returns the
// bytes after it (the transfer payload).
func DecodePerformative(b []byte) (Performative, []byte, error) {
	v, n, err := ReadValue(b)
	if err != nil {
		return nil, nil, err
	}
	code, list, err := composite(v)
	if err != nil {
		return nil, nil, err
	}
	rest := b[n:]
	p, err := decodeFields(code, list)
	if err != nil {
		return nil, nil, err
	}
	if t, ok := p.(*Transfer); ok {
		t.Payload = rest
	} else if len(rest) != 0 {
		return nil, nil, decodeErr("%d bytes after a %T", len(rest), p)
	}
	return p, rest, nil
}

func decodeFields(code uint64, list []any) (Performative, error) {
	r := fields{f: list}
	var p Performative
	switch code {
	case descOpen:
		r.name = "open"
		r.mandatory(0)
		p = &Open{
			ContainerID: r.str(0), Hostname: r.str(1), MaxFrameSize: r.u32(2, 4294967295),
			ChannelMax: r.u16(3, 65535), IdleTimeOut: r.u32(4, 0), OutgoingLocales: r.syms(5),
			IncomingLocales: r.syms(6), OfferedCapabilities: r.syms(7), DesiredCapabilities: r.syms(8),
			Properties: r.mapv(9),
		}
	case descBegin:
		r.name = "begin"
		r.mandatory(1)
		r.mandatory(2)
		r.mandatory(3)
		b := &Begin{
			NextOutgoingID: r.u32(1, 0), IncomingWindow: r.u32(2, 0), OutgoingWindow: r.u32(3, 0),
			HandleMax: r.u32(4, 4294967295), OfferedCapabilities: r.syms(5), DesiredCapabilities: r.syms(6),
			Properties: r.mapv(7),
		}
		if r.get(0) != nil {
			ch := r.u16(0, 0)
			b.RemoteChannel = &ch
		}
		p = b
	case descAttach:
		r.name = "attach"
		r.mandatory(0)
		r.mandatory(1)
		r.mandatory(2)
		a := &Attach{
			Name: r.str(0), Handle: r.u32(1, 0), Role: Role(r.boolean(2)), SndSettleMode: r.u8(3, SndMixed),
			RcvSettleMode: r.u8(4, RcvFirst), Unsettled: r.mapv(7), IncompleteUnsettled: r.boolean(8),
			InitialDeliveryCount: r.optU32(9), MaxMessageSize: r.u64(10), OfferedCapabilities: r.syms(11),
			DesiredCapabilities: r.syms(12), Properties: r.mapv(13),
		}
		if r.err == nil {
			var err error
			if a.Source, err = decodeSource(r.get(5)); err != nil {
				return nil, err
			}
			if a.Target, err = decodeTarget(r.get(6)); err != nil {
				return nil, err
			}
		}
		p = a
	case descFlow:
		r.name = "flow"
		r.mandatory(1)
		r.mandatory(2)
		r.mandatory(3)
		p = &Flow{
			NextIncomingID: r.optU32(0), IncomingWindow: r.u32(1, 0), NextOutgoingID: r.u32(2, 0),
			OutgoingWindow: r.u32(3, 0), Handle: r.optU32(4), DeliveryCount: r.optU32(5),
			LinkCredit: r.optU32(6), Available: r.optU32(7), Drain: r.boolean(8), Echo: r.boolean(9),
			Properties: r.mapv(10),
		}
	case descTransfer:
		r.name = "transfer"
		r.mandatory(0)
		t := &Transfer{
			Handle: r.u32(0, 0), DeliveryID: r.optU32(1), DeliveryTag: r.bin(2), MessageFormat: r.optU32(3),
			Settled: r.boolean(4), More: r.boolean(5), State: r.state(7), Resume: r.boolean(8),
			Aborted: r.boolean(9), Batchable: r.boolean(10),
		}
		if r.get(6) != nil {
			m := r.u8(6, 0)
			t.RcvSettleMode = &m
		}
		p = t
	case descDisposition:
		r.name = "disposition"
		r.mandatory(0)
		r.mandatory(1)
		p = &Disposition{
			Role: Role(r.boolean(0)), First: r.u32(1, 0), Last: r.optU32(2), Settled: r.boolean(3),
			State: r.state(4), Batchable: r.boolean(5),
		}
	case descDetach:
		r.name = "detach"
		r.mandatory(0)
		p = &Detach{Handle: r.u32(0, 0), Closed: r.boolean(1), Error: r.error(2)}
	case descEnd:
		r.name = "end"
		p = &End{Error: r.error(0)}
	case descClose:
		r.name = "close"
		p = &Close{Error: r.error(0)}
	case descSASLMechs:
		r.name = "sasl-mechanisms"
		r.mandatory(0)
		p = &SASLMechanisms{Mechanisms: r.syms(0)}
	case descSASLInit:
		r.name = "sasl-init"
		r.mandatory(0)
		p = &SASLInit{Mechanism: r.sym(0), InitialResponse: r.bin(1), Hostname: r.str(2)}
	case descSASLChall:
		r.name = "sasl-challenge"
		r.mandatory(0)
		p = &SASLChallenge{Challenge: r.bin(0)}
	case descSASLResp:
		r.name = "sasl-response"
		r.mandatory(0)
		p = &SASLResponse{Response: r.bin(0)}
	case descSASLOutcome:
		r.name = "sasl-outcome"
		r.mandatory(0)
		p = &SASLOutcome{Code: r.u8(0, 0), AdditionalData: r.bin(1)}
	default:
		return nil, decodeErr("descriptor 0x%x is not a performative", code)
	}
	if r.err != nil {
		return nil, r.err
	}
	return p, nil
}

// String names a performative for logs.
func Name(p Performative) string {
	return fmt.Sprintf("%T", p)[len("*wire."):]
}

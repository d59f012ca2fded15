package storage

import (
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	gridpb "github.com/sutragrid/grid/proto"
)

// Limits on what a client may send. Anything beyond them is refused with
// InvalidArgument naming the field, before it reaches the store.
const (
	MaxIDBytes             = 512
	MaxAttributes          = 64
	MaxAttributeNameBytes  = 128
	MaxAttributeValueBytes = 1024
	MaxTypeBytes           = 128
	MaxBatchConcepts       = 10_000
	MaxBatchAssociations   = 100_000
	DefaultLimit           = 100
	MaxLimit               = 10_000
	MaxFilters             = 16
	MaxFilterValues        = 64
	MaxGroupBy             = 8
	DefaultMaxGroups       = 1000
	MaxMaxGroups           = 100_000
	DefaultPathDepth       = 6
	MaxPathDepth           = 16
	MaxSearchQueryBytes    = 1024
	DefaultSearchLimit     = 10
	MaxSearchLimit         = 1000
	DefaultMaxContentBytes = 1 << 20
)

// Concept and association times must lie in [minStoredTime, maxStoredTime): wide
// enough for any event, narrow enough that time arithmetic cannot overflow.
var (
	minStoredTime = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	maxStoredTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
)

// Buckets are the time buckets Aggregate accepts.
var Buckets = map[string]time.Duration{
	"1m": time.Minute, "5m": 5 * time.Minute, "10m": 10 * time.Minute,
	"15m": 15 * time.Minute, "30m": 30 * time.Minute, "1h": time.Hour,
	"3h": 3 * time.Hour, "6h": 6 * time.Hour, "12h": 12 * time.Hour,
	"1d": 24 * time.Hour, "7d": 7 * 24 * time.Hour,
}

// FieldError is a request that is wrong in one field.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// validator checks requests and turns them into the store's types.
type validator struct {
	maxContentBytes int
	now             func() time.Time
}

func (v *validator) id(field, id string) error {
	return v.idAt(fieldPath{}, field, id)
}

func (v *validator) idAt(field fieldPath, name, id string) error {
	switch {
	case id == "":
		return fieldErr(field.name(name), "must not be empty")
	case len(id) > MaxIDBytes:
		return fieldErr(field.name(name), "is %d bytes, more than the limit of %d", len(id), MaxIDBytes)
	case !utf8.ValidString(id):
		return fieldErr(field.name(name), "must be UTF-8")
	}
	return nil
}

// wireTime is a google.protobuf.Timestamp as it came: set says whether it did.
type wireTime struct {
	set     bool
	seconds int64
	nanos   int32
}

func wireTimeOf(ts *timestamppb.Timestamp) wireTime {
	if ts == nil {
		return wireTime{}
	}
	return wireTime{set: true, seconds: ts.GetSeconds(), nanos: ts.GetNanos()}
}

// The range of a valid Timestamp (years 1 to 9999), and of a stored time, in seconds.
const (
	minTimestampSeconds = -62135596800
	maxTimestampSeconds = 253402300800
)

var (
	minStoredSeconds = minStoredTime / int64(time.Second)
	maxStoredSeconds = maxStoredTime / int64(time.Second)
)

func (v *validator) storedTime(field fieldPath, name string, ts wireTime) (int64, error) {
	if !ts.set {
		return v.now().UnixNano(), nil
	}
	if ts.seconds < minTimestampSeconds || ts.seconds >= maxTimestampSeconds || ts.nanos < 0 || ts.nanos >= 1e9 {
		pb := &timestamppb.Timestamp{Seconds: ts.seconds, Nanos: ts.nanos}
		return 0, fieldErr(field.name(name), "invalid: %v", pb.CheckValid())
	}
	if ts.seconds < minStoredSeconds || ts.seconds >= maxStoredSeconds {
		t := time.Unix(ts.seconds, int64(ts.nanos)).UTC()
		return 0, fieldErr(field.name(name), "%s is outside the years 1900 to 2199", t.Format(time.RFC3339))
	}
	return ts.seconds*int64(time.Second) + int64(ts.nanos), nil
}

// fieldPath names the fields of one request message: top-level, or element i of a
// repeated field. Names are made only for errors.
type fieldPath struct {
	list string
	i    int
}

func (p fieldPath) name(field string) string {
	if p.list == "" {
		return field
	}
	return p.list + "[" + strconv.Itoa(p.i) + "]." + field
}

// listField is element i of the repeated field list.
func listField(list string, i int) fieldPath { return fieldPath{list: list, i: i} }

// self names the element itself, for an element that must be set and is not.
func (p fieldPath) self() string {
	if p.list == "" {
		return ""
	}
	return p.list + "[" + strconv.Itoa(p.i) + "]."
}

func finite(field fieldPath, name string, f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fieldErr(field.name(name), "must be a finite number")
	}
	return nil
}

func (v *validator) concept(field fieldPath, in *gridpb.Concept) (Concept, error) {
	if in == nil {
		return Concept{}, fieldErr(field.self(), "must be set")
	}
	return v.conceptFields(field, in.GetId(), in.GetContent(), in.GetAttributes(), nil,
		wireTimeOf(in.GetTimestamp()), in.GetStrength(), in.GetConfidence())
}

// conceptFields checks a concept's fields; its attributes are attrs or, if that is
// nil, pairs (sorted by name, without duplicates).
func (v *validator) conceptFields(field fieldPath, id string, content []byte, attrs map[string]string,
	pairs []attrPair, ts wireTime, strength, confidence float64) (Concept, error) {
	var c Concept
	if err := v.idAt(field, "id", id); err != nil {
		return c, err
	}
	if len(content) > v.maxContentBytes {
		return c, fieldErr(field.name("content"), "is %d bytes, more than the limit of %d", len(content), v.maxContentBytes)
	}
	n := len(attrs)
	if attrs == nil {
		n = len(pairs)
	}
	if n > MaxAttributes {
		return c, fieldErr(field.name("attributes"), "has %d attributes, more than the limit of %d", n, MaxAttributes)
	}
	for name, val := range attrs {
		if err := attribute(field, name, val); err != nil {
			return c, err
		}
	}
	for _, a := range pairs {
		if err := attribute(field, a.name, a.value); err != nil {
			return c, err
		}
	}
	t, err := v.storedTime(field, "timestamp", ts)
	if err != nil {
		return c, err
	}
	if err := finite(field, "strength", strength); err != nil {
		return c, err
	}
	if err := finite(field, "confidence", confidence); err != nil {
		return c, err
	}
	c = Concept{ID: id, Content: content, Attributes: attrs, Time: t,
		Strength: strength, Confidence: confidence}
	if attrs == nil {
		c.pairs = pairs
	}
	return c, nil
}

func attribute(field fieldPath, n, val string) error {
	switch {
	case n == "":
		return fieldErr(field.name("attributes"), "an attribute name is empty")
	case len(n) > MaxAttributeNameBytes:
		return fieldErr(field.name("attributes"), "name %.32q... is longer than %d bytes", n, MaxAttributeNameBytes)
	case len(val) > MaxAttributeValueBytes:
		return fieldErr(field.name("attributes["+n+"]"), "is longer than %d bytes", MaxAttributeValueBytes)
	case !utf8.ValidString(n) || !utf8.ValidString(val):
		return fieldErr(field.name("attributes"), "must be UTF-8")
	}
	return nil
}

func (v *validator) association(field fieldPath, source, target, typ string, confidence float64,
	ts wireTime) (Association, error) {
	var a Association
	if err := v.idAt(field, "source", source); err != nil {
		return a, err
	}
	if err := v.idAt(field, "target", target); err != nil {
		return a, err
	}
	switch {
	case typ == "":
		return a, fieldErr(field.name("type"), "must not be empty")
	case len(typ) > MaxTypeBytes:
		return a, fieldErr(field.name("type"), "is %d bytes, more than the limit of %d", len(typ), MaxTypeBytes)
	case !utf8.ValidString(typ):
		return a, fieldErr(field.name("type"), "must be UTF-8")
	}
	if err := finite(field, "confidence", confidence); err != nil {
		return a, err
	}
	t, err := v.storedTime(field, "timestamp", ts)
	if err != nil {
		return a, err
	}
	return Association{Source: source, Target: target, Type: typ, Confidence: confidence, Time: t}, nil
}

func batchLimits(concepts, assocs int) error {
	if concepts > MaxBatchConcepts {
		return fieldErr("concepts", "has %d concepts, more than the limit of %d", concepts, MaxBatchConcepts)
	}
	if assocs > MaxBatchAssociations {
		return fieldErr("associations", "has %d associations, more than the limit of %d", assocs, MaxBatchAssociations)
	}
	return nil
}

func (v *validator) batch(in *gridpb.LearnBatchRequest) ([]Concept, []Association, error) {
	if err := batchLimits(len(in.GetConcepts()), len(in.GetAssociations())); err != nil {
		return nil, nil, err
	}
	concepts := make([]Concept, len(in.GetConcepts()))
	for i, c := range in.GetConcepts() {
		var err error
		if concepts[i], err = v.concept(listField("concepts", i), c); err != nil {
			return nil, nil, err
		}
	}
	assocs := make([]Association, len(in.GetAssociations()))
	for i, a := range in.GetAssociations() {
		field := listField("associations", i)
		if a == nil {
			return nil, nil, fieldErr(field.self(), "must be set")
		}
		var err error
		assocs[i], err = v.association(field, a.GetSource(), a.GetTarget(), a.GetType(), a.GetConfidence(), wireTimeOf(a.GetTimestamp()))
		if err != nil {
			return nil, nil, err
		}
	}
	return concepts, assocs, nil
}

// wireBatch validates a LearnBatch that the node decoded itself (see batchcodec.go).
func (v *validator) wireBatch(in *learnBatchWire) ([]Concept, []Association, error) {
	if err := batchLimits(in.nConcepts, in.nAssocs); err != nil {
		return nil, nil, err
	}
	concepts := make([]Concept, len(in.concepts))
	for i := range in.concepts {
		c := &in.concepts[i]
		var err error
		concepts[i], err = v.conceptFields(listField("concepts", i), c.id, c.content, nil, c.attrs,
			c.ts, c.strength, c.confidence)
		if err != nil {
			return nil, nil, err
		}
	}
	assocs := make([]Association, len(in.assocs))
	for i := range in.assocs {
		a := &in.assocs[i]
		var err error
		assocs[i], err = v.association(listField("associations", i), a.source, a.target, a.typ, a.confidence, a.ts)
		if err != nil {
			return nil, nil, err
		}
	}
	return concepts, assocs, nil
}

// rangeTime converts a query bound; times beyond what can be stored are unbounded.
func rangeTime(field string, ts *timestamppb.Timestamp, unbounded int64) (int64, error) {
	if ts == nil {
		return unbounded, nil
	}
	if err := ts.CheckValid(); err != nil {
		return 0, fieldErr(field, "invalid: %v", err)
	}
	t := ts.AsTime()
	switch {
	case t.Year() < 1900:
		return MinTime, nil
	case t.Year() >= 2200:
		return MaxTime, nil
	}
	return t.UnixNano(), nil
}

func limitOf(field string, n uint32, def, max int) (int, error) {
	switch {
	case n == 0:
		return def, nil
	case int64(n) > int64(max):
		return 0, fieldErr(field, "is %d, more than the limit of %d", n, max)
	}
	return int(n), nil
}

func (v *validator) querySpec(start, end *timestamppb.Timestamp, filters []*gridpb.Filter, order gridpb.Order) (QuerySpec, error) {
	var q QuerySpec
	var err error
	if q.Start, err = rangeTime("start", start, MinTime); err != nil {
		return q, err
	}
	if q.End, err = rangeTime("end", end, MaxTime); err != nil {
		return q, err
	}
	if q.Start != MinTime && q.End != MaxTime && q.Start >= q.End {
		return q, fieldErr("end", "must be after start")
	}
	switch order {
	case gridpb.Order_ORDER_ASCENDING:
		q.Order = Ascending
	case gridpb.Order_ORDER_DESCENDING:
		q.Order = Descending
	default:
		return q, fieldErr("order", "unknown order %d", order)
	}
	if len(filters) > MaxFilters {
		return q, fieldErr("filters", "has %d filters, more than the limit of %d", len(filters), MaxFilters)
	}
	for i, f := range filters {
		field := "filters[" + strconv.Itoa(i) + "]"
		switch {
		case f == nil:
			return q, fieldErr(field, "must be set")
		case f.GetAttribute() == "":
			return q, fieldErr(field+".attribute", "must not be empty")
		case len(f.GetAttribute()) > MaxAttributeNameBytes:
			return q, fieldErr(field+".attribute", "is longer than %d bytes", MaxAttributeNameBytes)
		case len(f.GetValues()) == 0:
			return q, fieldErr(field+".values", "must not be empty")
		case len(f.GetValues()) > MaxFilterValues:
			return q, fieldErr(field+".values", "has %d values, more than the limit of %d", len(f.GetValues()), MaxFilterValues)
		}
		for _, val := range f.GetValues() {
			if len(val) > MaxAttributeValueBytes {
				return q, fieldErr(field+".values", "a value is longer than %d bytes", MaxAttributeValueBytes)
			}
		}
		q.Filters = append(q.Filters, Filter{Attribute: f.GetAttribute(), Values: f.GetValues()})
	}
	return q, nil
}

func (v *validator) aggregateSpec(in *gridpb.AggregateRequest) (AggregateSpec, error) {
	var a AggregateSpec
	var err error
	if a.QuerySpec, err = v.querySpec(in.GetStart(), in.GetEnd(), in.GetFilters(), gridpb.Order_ORDER_ASCENDING); err != nil {
		return a, err
	}
	if len(in.GetGroupBy()) > MaxGroupBy {
		return a, fieldErr("group_by", "has %d attributes, more than the limit of %d", len(in.GetGroupBy()), MaxGroupBy)
	}
	for i, g := range in.GetGroupBy() {
		if g == "" || len(g) > MaxAttributeNameBytes {
			return a, fieldErr("group_by["+strconv.Itoa(i)+"]", "must be an attribute name of 1 to %d bytes", MaxAttributeNameBytes)
		}
	}
	a.GroupBy = in.GetGroupBy()
	if b := in.GetBucket(); b != "" {
		d, ok := Buckets[b]
		if !ok {
			return a, fieldErr("bucket", "unknown bucket %q (use 1m, 5m, 10m, 15m, 30m, 1h, 3h, 6h, 12h, 1d or 7d)", b)
		}
		a.Bucket = int64(d)
	}
	if a.MaxGroups, err = limitOf("max_groups", in.GetMaxGroups(), DefaultMaxGroups, MaxMaxGroups); err != nil {
		return a, err
	}
	return a, nil
}

func direction(field string, d gridpb.Direction) (Direction, error) {
	switch d {
	case gridpb.Direction_DIRECTION_BOTH:
		return Both, nil
	case gridpb.Direction_DIRECTION_OUT:
		return Out, nil
	case gridpb.Direction_DIRECTION_IN:
		return In, nil
	}
	return 0, fieldErr(field, "unknown direction %d", d)
}

func types(field string, ts []string) error {
	if len(ts) > MaxFilterValues {
		return fieldErr(field, "has %d types, more than the limit of %d", len(ts), MaxFilterValues)
	}
	for _, t := range ts {
		if t == "" || len(t) > MaxTypeBytes {
			return fieldErr(field, "a type must be 1 to %d bytes", MaxTypeBytes)
		}
	}
	return nil
}

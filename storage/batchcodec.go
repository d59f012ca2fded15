package storage

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	gridpb "github.com/sutragrid/grid/proto"
)

// The node decodes LearnBatch requests itself, straight from the wire format of
// proto/storage.proto into what validation and the store take: generic protobuf
// decoding of a batch of 1,000 concepts builds some 10,000 objects (a message per
// concept, association and timestamp, a map per concept, a string per field), which
// cost more CPU than storing the batch's text index. This decoder makes two copies
// of the message (one of bytes for contents, one string that every string field
// is a part of) and one slice each of concepts, associations and attributes.
//
// It follows protobuf's rules: fields may come in any order; a repeated scalar or
// string field keeps its last value, a repeated message field (a timestamp) is
// merged; a map keeps the last value of a key; unknown fields, and known fields of an
// unexpected wire type, are skipped. Strings are not checked for UTF-8 here:
// validation does that, field by field.

// learnBatchWire is a decoded LearnBatchRequest.
type learnBatchWire struct {
	concepts []wireConcept
	assocs   []wireAssociation
	// how many the request has: beyond the limits (MaxBatchConcepts,
	// MaxBatchAssociations), they are counted and not kept, for validation to refuse
	nConcepts, nAssocs int
}

type wireConcept struct {
	id                   string
	content              []byte
	attrs                []attrPair // sorted by name, without duplicates
	ts                   wireTime
	strength, confidence float64
}

type wireAssociation struct {
	source, target, typ string
	confidence          float64
	ts                  wireTime
}

// Field numbers of proto/storage.proto and google/protobuf/timestamp.proto.
const (
	fieldBatchConcepts     = 1
	fieldBatchAssociations = 2

	fieldConceptID         = 1
	fieldConceptContent    = 2
	fieldConceptAttributes = 3
	fieldConceptTimestamp  = 4
	fieldConceptStrength   = 5
	fieldConceptConfidence = 6

	fieldAssocSource     = 1
	fieldAssocTarget     = 2
	fieldAssocType       = 3
	fieldAssocConfidence = 4
	fieldAssocTimestamp  = 5

	fieldMapKey   = 1
	fieldMapValue = 2

	fieldTimestampSeconds = 1
	fieldTimestampNanos   = 2
)

var errWireTruncated = errors.New("malformed LearnBatchRequest")

// wireDecoder reads a message from b; str is the same bytes as a string, whose parts
// the string fields become.
type wireDecoder struct {
	b   []byte
	str string
}

// field reads a field's tag at b[i:]: its number, wire type and where its value
// starts.
func (d *wireDecoder) field(i int) (protowire.Number, protowire.Type, int, error) {
	num, typ, n := protowire.ConsumeTag(d.b[i:])
	if n < 0 {
		return 0, 0, 0, protowire.ParseError(n)
	}
	return num, typ, i + n, nil
}

// bytes reads a length-delimited value at b[i:], returning its bounds.
func (d *wireDecoder) bytes(i int) (start, end int, err error) {
	v, n := protowire.ConsumeVarint(d.b[i:])
	if n < 0 {
		return 0, 0, protowire.ParseError(n)
	}
	start = i + n
	if v > uint64(len(d.b)-start) {
		return 0, 0, errWireTruncated
	}
	return start, start + int(v), nil
}

func (d *wireDecoder) varint(i int) (uint64, int, error) {
	v, n := protowire.ConsumeVarint(d.b[i:])
	if n < 0 {
		return 0, 0, protowire.ParseError(n)
	}
	return v, i + n, nil
}

func (d *wireDecoder) double(i int) (float64, int, error) {
	v, n := protowire.ConsumeFixed64(d.b[i:])
	if n < 0 {
		return 0, 0, protowire.ParseError(n)
	}
	return math.Float64frombits(v), i + n, nil
}

// skip skips the value of a field of number num and type typ at b[i:].
func (d *wireDecoder) skip(num protowire.Number, typ protowire.Type, i int) (int, error) {
	n := protowire.ConsumeFieldValue(num, typ, d.b[i:])
	if n < 0 {
		return 0, protowire.ParseError(n)
	}
	return i + n, nil
}

// decode decodes a LearnBatchRequest from b, which it keeps (contents are parts of
// it).
func (w *learnBatchWire) decode(b []byte) error {
	d := wireDecoder{b: b, str: string(b)}
	// A guess at the counts, from event-shaped batches, saves regrowing the slices.
	w.concepts = make([]wireConcept, 0, min(len(b)/400+1, MaxBatchConcepts))
	w.assocs = make([]wireAssociation, 0, min(len(b)/200+1, MaxBatchAssociations))
	attrs := make([]attrPair, 0, 4*cap(w.concepts)) // events have four each
	for i := 0; i < len(b); {
		num, typ, j, err := d.field(i)
		if err != nil {
			return err
		}
		if typ != protowire.BytesType || (num != fieldBatchConcepts && num != fieldBatchAssociations) {
			if i, err = d.skip(num, typ, j); err != nil {
				return err
			}
			continue
		}
		start, end, err := d.bytes(j)
		if err != nil {
			return err
		}
		if num == fieldBatchConcepts {
			var c wireConcept
			if attrs, err = d.concept(start, end, &c, attrs); err != nil {
				return err
			}
			if w.nConcepts++; w.nConcepts <= MaxBatchConcepts {
				w.concepts = append(w.concepts, c)
			} else {
				attrs = attrs[:len(attrs)-len(c.attrs)]
			}
		} else {
			var a wireAssociation
			if err := d.association(start, end, &a); err != nil {
				return err
			}
			if w.nAssocs++; w.nAssocs <= MaxBatchAssociations {
				w.assocs = append(w.assocs, a)
			}
		}
		i = end
	}
	return nil
}

// sub returns a decoder of b[:end], for a nested message.
func (d *wireDecoder) sub(end int) wireDecoder {
	return wireDecoder{b: d.b[:end], str: d.str[:end]}
}

// concept decodes the Concept in b[start:end] into c, its attributes appended to
// attrs (one slice for all the batch's attributes).
func (d *wireDecoder) concept(start, end int, c *wireConcept, attrs []attrPair) ([]attrPair, error) {
	m := d.sub(end)
	first := len(attrs)
	for i := start; i < end; {
		num, typ, j, err := m.field(i)
		if err != nil {
			return attrs, err
		}
		switch {
		case typ == protowire.BytesType && (num == fieldConceptID || num == fieldConceptContent ||
			num == fieldConceptAttributes || num == fieldConceptTimestamp):
			s, e, err := m.bytes(j)
			if err != nil {
				return attrs, err
			}
			switch num {
			case fieldConceptID:
				c.id = m.str[s:e]
			case fieldConceptContent:
				c.content = m.b[s:e:e]
			case fieldConceptAttributes:
				var a attrPair
				if err := m.mapEntry(s, e, &a); err != nil {
					return attrs, err
				}
				attrs = append(attrs, a)
			case fieldConceptTimestamp:
				if err := m.timestamp(s, e, &c.ts); err != nil {
					return attrs, err
				}
			}
			i = e
		case typ == protowire.Fixed64Type && (num == fieldConceptStrength || num == fieldConceptConfidence):
			f, e, err := m.double(j)
			if err != nil {
				return attrs, err
			}
			if num == fieldConceptStrength {
				c.strength = f
			} else {
				c.confidence = f
			}
			i = e
		default:
			if i, err = m.skip(num, typ, j); err != nil {
				return attrs, err
			}
		}
	}
	if len(attrs) > first {
		c.attrs = dedupAttributes(attrs[first:len(attrs):len(attrs)])
		attrs = attrs[:first+len(c.attrs)]
	}
	return attrs, nil
}

// dedupAttributes sorts attrs by name and keeps the last of each name, as a map
// would.
func dedupAttributes(attrs []attrPair) []attrPair {
	slices.SortStableFunc(attrs, func(a, b attrPair) int { return strings.Compare(a.name, b.name) })
	out := attrs[:0]
	for i := range attrs {
		if i+1 < len(attrs) && attrs[i+1].name == attrs[i].name {
			continue
		}
		out = append(out, attrs[i])
	}
	return out
}

// mapEntry decodes a map<string, string> entry.
func (d *wireDecoder) mapEntry(start, end int, a *attrPair) error {
	m := d.sub(end)
	for i := start; i < end; {
		num, typ, j, err := m.field(i)
		if err != nil {
			return err
		}
		if typ != protowire.BytesType || (num != fieldMapKey && num != fieldMapValue) {
			if i, err = m.skip(num, typ, j); err != nil {
				return err
			}
			continue
		}
		s, e, err := m.bytes(j)
		if err != nil {
			return err
		}
		if num == fieldMapKey {
			a.name = m.str[s:e]
		} else {
			a.value = m.str[s:e]
		}
		i = e
	}
	return nil
}

// timestamp merges the Timestamp in b[start:end] into ts.
func (d *wireDecoder) timestamp(start, end int, ts *wireTime) error {
	m := d.sub(end)
	ts.set = true
	for i := start; i < end; {
		num, typ, j, err := m.field(i)
		if err != nil {
			return err
		}
		if typ != protowire.VarintType || (num != fieldTimestampSeconds && num != fieldTimestampNanos) {
			if i, err = m.skip(num, typ, j); err != nil {
				return err
			}
			continue
		}
		v, e, err := m.varint(j)
		if err != nil {
			return err
		}
		if num == fieldTimestampSeconds {
			ts.seconds = int64(v)
		} else {
			ts.nanos = int32(v)
		}
		i = e
	}
	return nil
}

// association decodes the Association in b[start:end] into a.
func (d *wireDecoder) association(start, end int, a *wireAssociation) error {
	m := d.sub(end)
	for i := start; i < end; {
		num, typ, j, err := m.field(i)
		if err != nil {
			return err
		}
		switch {
		case typ == protowire.BytesType && num >= fieldAssocSource && num <= fieldAssocType:
			s, e, err := m.bytes(j)
			if err != nil {
				return err
			}
			switch num {
			case fieldAssocSource:
				a.source = m.str[s:e]
			case fieldAssocTarget:
				a.target = m.str[s:e]
			default:
				a.typ = m.str[s:e]
			}
			i = e
		case typ == protowire.BytesType && num == fieldAssocTimestamp:
			s, e, err := m.bytes(j)
			if err != nil {
				return err
			}
			if err := m.timestamp(s, e, &a.ts); err != nil {
				return err
			}
			i = e
		case typ == protowire.Fixed64Type && num == fieldAssocConfidence:
			f, e, err := m.double(j)
			if err != nil {
				return err
			}
			a.confidence = f
			i = e
		default:
			if i, err = m.skip(num, typ, j); err != nil {
				return err
			}
		}
	}
	return nil
}

// serverCodec is gRPC's protobuf codec, except that it decodes a learnBatchWire
// itself.
type serverCodec struct{ proto encoding.CodecV2 }

func newServerCodec() serverCodec { return serverCodec{proto: encoding.GetCodecV2("proto")} }

func (c serverCodec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c serverCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if w, ok := v.(*learnBatchWire); ok {
		// Materialize copies: data is freed when Unmarshal returns.
		return w.decode(data.Materialize())
	}
	return c.proto.Unmarshal(data, v)
}

func (c serverCodec) Name() string { return c.proto.Name() }

// storageServiceDesc is gridpb.Storage_ServiceDesc with LearnBatch decoded by
// serverCodec.
func storageServiceDesc() *grpc.ServiceDesc {
	desc := gridpb.Storage_ServiceDesc
	desc.Methods = slices.Clone(desc.Methods)
	for i := range desc.Methods {
		if desc.Methods[i].MethodName == "LearnBatch" {
			desc.Methods[i].Handler = learnBatchHandler
		}
	}
	return &desc
}

func learnBatchHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	svc := srv.(*service)
	// The turn is taken before decoding: the decoded copies are most of what a batch
	// costs (limits.go).
	if svc.batches != nil {
		if err := svc.batches.acquire(ctx); err != nil {
			return nil, svc.toStatus("LearnBatch", err)
		}
		defer svc.batches.release()
	}
	in := new(learnBatchWire)
	if err := dec(in); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return svc.learnBatchWire(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: gridpb.Storage_LearnBatch_FullMethodName}
	return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
		return svc.learnBatchWire(ctx, req.(*learnBatchWire))
	})
}

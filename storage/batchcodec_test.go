package storage

import (
	"math"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	gridpb "github.com/sutragrid/grid/proto"
)

// decodeBoth validates data as LearnBatch did with generic protobuf decoding, and as
// the node's own decoder does. protoOK is false if protobuf refuses data.
func decodeBoth(t *testing.T, data []byte) (protoOK bool) {
	t.Helper()
	v := validator{maxContentBytes: 1 << 20, now: func() time.Time { return time.Unix(0, 42) }}
	var m gridpb.LearnBatchRequest
	if err := proto.Unmarshal(data, &m); err != nil {
		return false
	}
	wantC, wantA, wantErr := v.batch(&m)
	var w learnBatchWire
	if err := w.decode(append([]byte(nil), data...)); err != nil {
		t.Fatalf("protobuf decodes %x, the node's decoder does not: %v", data, err)
	}
	gotC, gotA, gotErr := v.wireBatch(&w)
	if (wantErr == nil) != (gotErr == nil) || (wantErr != nil && wantErr.Error() != gotErr.Error()) {
		t.Fatalf("%x: error %v, want %v", data, gotErr, wantErr)
	}
	if wantErr != nil {
		return true
	}
	norm := func(cs []Concept) []Concept {
		out := make([]Concept, len(cs))
		for i, c := range cs {
			var attrs []attrPair
			if c.Attributes != nil {
				attrs = sortedAttributes(nil, c.Attributes)
			} else {
				attrs = c.pairs
			}
			c.Attributes, c.pairs = nil, nil
			if len(attrs) > 0 {
				c.pairs = attrs
			}
			if len(c.Content) == 0 {
				c.Content = nil
			}
			out[i] = c
		}
		return out
	}
	if !reflect.DeepEqual(norm(gotC), norm(wantC)) {
		t.Fatalf("%x: concepts\n%+v\nwant\n%+v", data, norm(gotC), norm(wantC))
	}
	if len(gotA) != len(wantA) || (len(gotA) > 0 && !reflect.DeepEqual(gotA, wantA)) {
		t.Fatalf("%x: associations\n%+v\nwant\n%+v", data, gotA, wantA)
	}
	return true
}

func batchDecoderSeeds(t testing.TB) [][]byte {
	cs, as := eventBatch(0, 20, time.Millisecond)
	events := toProtoBatch(cs, as)
	msgs := []*gridpb.LearnBatchRequest{
		{},
		events,
		{Concepts: []*gridpb.Concept{{}}, Associations: []*gridpb.Association{{}}},
		{Concepts: []*gridpb.Concept{{Id: "a", Strength: math.Inf(1)}}},
		{Concepts: []*gridpb.Concept{{Id: "a", Attributes: map[string]string{"": "x"}}}},
		{Concepts: []*gridpb.Concept{{Id: "a", Timestamp: &timestamppb.Timestamp{Seconds: -1 << 40}}}},
		{Concepts: []*gridpb.Concept{{Id: "a", Timestamp: &timestamppb.Timestamp{Seconds: 1, Nanos: -1}}}},
		{Concepts: []*gridpb.Concept{{Id: "a", Timestamp: &timestamppb.Timestamp{Seconds: 8e9}}}},
		{Concepts: []*gridpb.Concept{{Id: "a", Timestamp: &timestamppb.Timestamp{Seconds: -2208988801}}}},
		{Associations: []*gridpb.Association{{Source: "a", Target: "b", Type: "t", Confidence: math.NaN()}}},
		{Associations: []*gridpb.Association{{Source: "a", Target: "b"}}},
	}
	var out [][]byte
	for _, m := range msgs {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}

	// Hand-made: repeated fields (last wins), a repeated map key (last wins), a
	// timestamp in two parts (merged), unknown fields, a known field of another wire
	// type (skipped).
	var c []byte
	c = protowire.AppendTag(c, fieldConceptID, protowire.BytesType)
	c = protowire.AppendString(c, "first")
	c = protowire.AppendTag(c, fieldConceptID, protowire.BytesType)
	c = protowire.AppendString(c, "second")
	entry := func(k, v string) []byte {
		var e []byte
		e = protowire.AppendTag(e, fieldMapValue, protowire.BytesType)
		e = protowire.AppendString(e, v)
		e = protowire.AppendTag(e, 9, protowire.VarintType)
		e = protowire.AppendVarint(e, 7)
		e = protowire.AppendTag(e, fieldMapKey, protowire.BytesType)
		return protowire.AppendString(e, k)
	}
	for _, kv := range [][2]string{{"b", "1"}, {"a", "2"}, {"b", "3"}, {"c", ""}} {
		c = protowire.AppendTag(c, fieldConceptAttributes, protowire.BytesType)
		c = protowire.AppendBytes(c, entry(kv[0], kv[1]))
	}
	var ts1, ts2 []byte
	ts1 = protowire.AppendTag(ts1, fieldTimestampSeconds, protowire.VarintType)
	ts1 = protowire.AppendVarint(ts1, uint64(epoch/1e9))
	ts2 = protowire.AppendTag(ts2, fieldTimestampNanos, protowire.VarintType)
	ts2 = protowire.AppendVarint(ts2, 5)
	c = protowire.AppendTag(c, fieldConceptTimestamp, protowire.BytesType)
	c = protowire.AppendBytes(c, ts1)
	c = protowire.AppendTag(c, fieldConceptTimestamp, protowire.BytesType)
	c = protowire.AppendBytes(c, ts2)
	c = protowire.AppendTag(c, fieldConceptStrength, protowire.VarintType)
	c = protowire.AppendVarint(c, 3)
	c = protowire.AppendTag(c, 99, protowire.Fixed32Type)
	c = protowire.AppendFixed32(c, 1)
	c = protowire.AppendTag(c, fieldConceptConfidence, protowire.Fixed64Type)
	c = protowire.AppendFixed64(c, math.Float64bits(0.25))
	var a []byte
	a = protowire.AppendTag(a, fieldAssocType, protowire.BytesType)
	a = protowire.AppendString(a, "t")
	a = protowire.AppendTag(a, fieldAssocSource, protowire.BytesType)
	a = protowire.AppendString(a, "second")
	a = protowire.AppendTag(a, fieldAssocTarget, protowire.BytesType)
	a = protowire.AppendString(a, "x")
	a = protowire.AppendTag(a, fieldAssocTimestamp, protowire.BytesType)
	a = protowire.AppendBytes(a, ts1)
	var m []byte
	m = protowire.AppendTag(m, fieldBatchAssociations, protowire.BytesType)
	m = protowire.AppendBytes(m, a)
	m = protowire.AppendTag(m, 7, protowire.BytesType)
	m = protowire.AppendString(m, "unknown")
	m = protowire.AppendTag(m, fieldBatchConcepts, protowire.BytesType)
	m = protowire.AppendBytes(m, c)
	m = protowire.AppendTag(m, fieldBatchConcepts, protowire.VarintType)
	m = protowire.AppendVarint(m, 1)
	return append(out, m)
}

func TestBatchDecoderMatchesProtobuf(t *testing.T) {
	for _, b := range batchDecoderSeeds(t) {
		if !decodeBoth(t, b) {
			t.Fatalf("protobuf refuses seed %x", b)
		}
	}
	// Beyond the limits.
	var many gridpb.LearnBatchRequest
	for i := 0; i <= MaxBatchConcepts; i++ {
		many.Concepts = append(many.Concepts, &gridpb.Concept{Id: "a", Attributes: map[string]string{"k": "v"}})
	}
	for i := 0; i <= MaxBatchAssociations; i++ {
		many.Associations = append(many.Associations, &gridpb.Association{Source: "a", Target: "b", Type: "t"})
	}
	for _, m := range []*gridpb.LearnBatchRequest{{Concepts: many.Concepts}, {Associations: many.Associations}} {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		decodeBoth(t, b)
	}
	// Truncations of a valid message: whatever protobuf accepts, the decoder must
	// decode the same.
	seeds := batchDecoderSeeds(t)
	last := seeds[len(seeds)-1]
	for n := range last {
		decodeBoth(t, last[:n])
	}
}

func FuzzBatchDecoder(f *testing.F) {
	for _, b := range batchDecoderSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeBoth(t, data)
		var w learnBatchWire
		_ = w.decode(data) // must not panic
	})
}

package storage

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	gridpb "github.com/sutragrid/grid/proto"
)

// service implements gridpb.StorageServer over a Store: it validates, converts and
// maps errors to status codes; the store does the work.
type service struct {
	gridpb.UnimplementedStorageServer

	store     *Store
	v         validator
	logger    hclog.Logger
	nodeID    string
	started   time.Time
	retention time.Duration
	metrics   *nodeMetrics
	// batches bounds the LearnBatch requests in flight, and disk refuses writes at
	// the free-space reserve (limits.go). Nil in a service made without them (the
	// fuzz test's): no bound.
	batches *batchLimiter
	disk    *diskGuard
}

// toStatus maps an error to a gRPC status. Unknown errors are logged here, once, and
// reach the client without details of the store's internals.
func (s *service) toStatus(method string, err error) error {
	var fe *FieldError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fe):
		return status.Error(codes.InvalidArgument, fe.Error())
	case errors.Is(err, ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, ErrTooMuchWork), errors.Is(err, ErrTooManyGroups):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, ErrDiskFull):
		s.metrics.refused("disk_full")
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, ErrBusy):
		s.metrics.refused("busy")
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	s.logger.Error("request failed", "method", method, "error", err)
	return status.Error(codes.Internal, method+" failed: "+err.Error())
}

func timestamp(t int64) *timestamppb.Timestamp {
	return timestamppb.New(time.Unix(0, t))
}

func toProtoConcept(c *Concept) *gridpb.Concept {
	return &gridpb.Concept{
		Id:         c.ID,
		Content:    c.Content,
		Attributes: c.Attributes,
		Timestamp:  timestamp(c.Time),
		Strength:   c.Strength,
		Confidence: c.Confidence,
	}
}

func toProtoAssociation(a *Association) *gridpb.Association {
	return &gridpb.Association{
		Source:     a.Source,
		Target:     a.Target,
		Type:       a.Type,
		Confidence: a.Confidence,
		Timestamp:  timestamp(a.Time),
	}
}

func (s *service) LearnConcept(ctx context.Context, in *gridpb.LearnConceptRequest) (*gridpb.LearnConceptResponse, error) {
	c, err := s.v.conceptFields(fieldPath{}, in.GetId(), in.GetContent(), in.GetAttributes(), nil,
		wireTimeOf(in.GetTimestamp()), in.GetStrength(), in.GetConfidence())
	if err != nil {
		return nil, s.toStatus("LearnConcept", err)
	}
	res, err := s.write([]Concept{c}, nil)
	if err != nil {
		return nil, s.toStatus("LearnConcept", err)
	}
	return &gridpb.LearnConceptResponse{Created: res.ConceptsCreated == 1}, nil
}

func (s *service) LearnAssociation(ctx context.Context, in *gridpb.LearnAssociationRequest) (*gridpb.LearnAssociationResponse, error) {
	a, err := s.v.association(fieldPath{}, in.GetSource(), in.GetTarget(), in.GetType(), in.GetConfidence(), wireTimeOf(in.GetTimestamp()))
	if err != nil {
		return nil, s.toStatus("LearnAssociation", err)
	}
	res, err := s.write(nil, []Association{a})
	if err != nil {
		return nil, s.toStatus("LearnAssociation", err)
	}
	return &gridpb.LearnAssociationResponse{Created: res.AssociationsCreated == 1}, nil
}

func (s *service) LearnBatch(ctx context.Context, in *gridpb.LearnBatchRequest) (*gridpb.LearnBatchResponse, error) {
	concepts, assocs, err := s.v.batch(in)
	return s.learnBatch(concepts, assocs, err)
}

// learnBatchWire is LearnBatch as the node serves it: decoded by the node itself (see
// batchcodec.go).
func (s *service) learnBatchWire(ctx context.Context, in *learnBatchWire) (*gridpb.LearnBatchResponse, error) {
	concepts, assocs, err := s.v.wireBatch(in)
	return s.learnBatch(concepts, assocs, err)
}

func (s *service) learnBatch(concepts []Concept, assocs []Association, err error) (*gridpb.LearnBatchResponse, error) {
	if err != nil {
		return nil, s.toStatus("LearnBatch", err)
	}
	if len(concepts) == 0 && len(assocs) == 0 {
		return &gridpb.LearnBatchResponse{}, nil
	}
	res, err := s.write(concepts, assocs)
	if err != nil {
		return nil, s.toStatus("LearnBatch", err)
	}
	return &gridpb.LearnBatchResponse{
		ConceptsCreated:      uint32(res.ConceptsCreated),
		ConceptsExisting:     uint32(res.ConceptsExisting),
		AssociationsCreated:  uint32(res.AssociationsCreated),
		AssociationsExisting: uint32(res.AssociationsExisting),
	}, nil
}

// write stores, unless the disk is at its reserve.
func (s *service) write(concepts []Concept, assocs []Association) (WriteResult, error) {
	if s.disk != nil {
		if err := s.disk.admit(estimateBatchSize(concepts, assocs)); err != nil {
			return WriteResult{}, err
		}
	}
	return s.metrics.write(s.store, concepts, assocs)
}

func (s *service) GetConcept(ctx context.Context, in *gridpb.GetConceptRequest) (*gridpb.GetConceptResponse, error) {
	if err := s.v.id("id", in.GetId()); err != nil {
		return nil, s.toStatus("GetConcept", err)
	}
	c, err := s.store.Get(in.GetId())
	if errors.Is(err, ErrNotFound) {
		return nil, status.Errorf(codes.NotFound, "concept %q not found", in.GetId())
	}
	if err != nil {
		return nil, s.toStatus("GetConcept", err)
	}
	return &gridpb.GetConceptResponse{Concept: toProtoConcept(c)}, nil
}

func (s *service) Neighbors(ctx context.Context, in *gridpb.NeighborsRequest) (*gridpb.NeighborsResponse, error) {
	if err := s.v.id("id", in.GetId()); err != nil {
		return nil, s.toStatus("Neighbors", err)
	}
	dir, err := direction("direction", in.GetDirection())
	if err != nil {
		return nil, s.toStatus("Neighbors", err)
	}
	if err := types("types", in.GetTypes()); err != nil {
		return nil, s.toStatus("Neighbors", err)
	}
	limit, err := limitOf("limit", in.GetLimit(), DefaultLimit, MaxLimit)
	if err != nil {
		return nil, s.toStatus("Neighbors", err)
	}
	ns, err := s.store.Neighbors(in.GetId(), dir, in.GetTypes(), limit)
	if err != nil {
		return nil, s.toStatus("Neighbors", err)
	}
	out := &gridpb.NeighborsResponse{Neighbors: make([]*gridpb.Neighbor, len(ns))}
	for i := range ns {
		d := gridpb.Direction_DIRECTION_OUT
		if ns[i].Direction == In {
			d = gridpb.Direction_DIRECTION_IN
		}
		out.Neighbors[i] = &gridpb.Neighbor{Id: ns[i].ID, Direction: d, Association: toProtoAssociation(&ns[i].Association)}
	}
	return out, nil
}

func (s *service) FindPath(ctx context.Context, in *gridpb.FindPathRequest) (*gridpb.FindPathResponse, error) {
	if err := s.v.id("source", in.GetSource()); err != nil {
		return nil, s.toStatus("FindPath", err)
	}
	if err := s.v.id("target", in.GetTarget()); err != nil {
		return nil, s.toStatus("FindPath", err)
	}
	dir, err := direction("direction", in.GetDirection())
	if err != nil {
		return nil, s.toStatus("FindPath", err)
	}
	if err := types("types", in.GetTypes()); err != nil {
		return nil, s.toStatus("FindPath", err)
	}
	depth, err := limitOf("max_depth", in.GetMaxDepth(), DefaultPathDepth, MaxPathDepth)
	if err != nil {
		return nil, s.toStatus("FindPath", err)
	}
	path, edges, found, err := s.store.FindPath(in.GetSource(), in.GetTarget(), depth, dir, in.GetTypes())
	if err != nil {
		return nil, s.toStatus("FindPath", err)
	}
	out := &gridpb.FindPathResponse{Found: found, Path: path}
	for i := range edges {
		out.Associations = append(out.Associations, toProtoAssociation(&edges[i]))
	}
	return out, nil
}

func (s *service) Query(ctx context.Context, in *gridpb.QueryRequest) (*gridpb.QueryResponse, error) {
	spec, err := s.v.querySpec(in.GetStart(), in.GetEnd(), in.GetFilters(), in.GetOrder())
	if err != nil {
		return nil, s.toStatus("Query", err)
	}
	limit, err := limitOf("limit", in.GetLimit(), DefaultLimit, MaxLimit)
	if err != nil {
		return nil, s.toStatus("Query", err)
	}
	var after []byte
	if tok := in.GetPageToken(); tok != "" {
		if after, err = decodePageToken(spec, tok); err != nil {
			return nil, s.toStatus("Query", err)
		}
	}
	concepts, next, err := s.store.Query(spec, after, limit)
	if err != nil {
		return nil, s.toStatus("Query", err)
	}
	out := &gridpb.QueryResponse{Concepts: make([]*gridpb.Concept, len(concepts))}
	for i, c := range concepts {
		out.Concepts[i] = toProtoConcept(c)
	}
	if next != nil {
		out.NextPageToken = encodePageToken(spec, next)
	}
	return out, nil
}

func (s *service) Aggregate(ctx context.Context, in *gridpb.AggregateRequest) (*gridpb.AggregateResponse, error) {
	spec, err := s.v.aggregateSpec(in)
	if err != nil {
		return nil, s.toStatus("Aggregate", err)
	}
	res, err := s.store.Aggregate(spec)
	if err != nil {
		return nil, s.toStatus("Aggregate", err)
	}
	out := &gridpb.AggregateResponse{Total: res.Total, Truncated: res.Truncated,
		Groups: make([]*gridpb.Group, len(res.Groups))}
	for i, g := range res.Groups {
		pg := &gridpb.Group{Values: g.Values, Count: g.Count}
		if spec.Bucket > 0 {
			pg.Bucket = timestamp(g.Bucket)
		}
		out.Groups[i] = pg
	}
	return out, nil
}

func (s *service) TextSearch(ctx context.Context, in *gridpb.TextSearchRequest) (*gridpb.TextSearchResponse, error) {
	q := in.GetQuery()
	switch {
	case len(q) > MaxSearchQueryBytes:
		return nil, s.toStatus("TextSearch", fieldErr("query", "is %d bytes, more than the limit of %d", len(q), MaxSearchQueryBytes))
	case len(queryTerms(q)) == 0:
		return nil, s.toStatus("TextSearch", fieldErr("query", "has no words to search for"))
	}
	limit, err := limitOf("limit", in.GetLimit(), DefaultSearchLimit, MaxSearchLimit)
	if err != nil {
		return nil, s.toStatus("TextSearch", err)
	}
	rs, err := s.store.Search(q, limit)
	if err != nil {
		return nil, s.toStatus("TextSearch", err)
	}
	out := &gridpb.TextSearchResponse{Results: make([]*gridpb.TextSearchResult, len(rs))}
	for i, r := range rs {
		out.Results[i] = &gridpb.TextSearchResult{Concept: toProtoConcept(r.Concept), Score: r.Score}
	}
	return out, nil
}

func (s *service) Stats(ctx context.Context, in *gridpb.StatsRequest) (*gridpb.StatsResponse, error) {
	st, err := s.store.Stats()
	if err != nil {
		return nil, s.toStatus("Stats", err)
	}
	out := &gridpb.StatsResponse{
		NodeId:           s.nodeID,
		Concepts:         uint64(max(st.Concepts, 0)),
		Associations:     uint64(max(st.Associations, 0)),
		DiskBytes:        st.DiskBytes,
		RetentionSeconds: int64(s.retention / time.Second),
		Started:          timestamppb.New(s.started),
	}
	if st.Concepts > 0 {
		out.Oldest, out.Newest = timestamp(st.Oldest), timestamp(st.Newest)
	}
	if s.disk != nil {
		// A fresh reading: Stats is how a client learns that writes resume.
		if free, reserve, err := s.disk.reading(true); err == nil {
			out.DiskFreeBytes, out.DiskReserveBytes, out.WritesRefused = free, reserve, free <= reserve
		}
	}
	return out, nil
}

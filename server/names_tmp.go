package server

import "github.com/sutragrid/grid/ask"

// TEMPORARY until the entity branch lands.
func (s *Server) knownNames() (ask.Names, error) {
	st := s.fsm.State()
	var n ask.Names
	as, err := st.Agents()
	if err != nil {
		return n, err
	}
	for _, a := range as {
		n.Agents = append(n.Agents, a.Name)
	}
	ns, err := st.Nodes("")
	if err != nil {
		return n, err
	}
	for _, x := range ns {
		n.Nodes = append(n.Nodes, ask.Node{ID: x.ID, Name: x.DisplayName(), Agent: x.Agent})
	}
	return n, nil
}

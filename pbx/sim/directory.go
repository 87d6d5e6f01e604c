package sim

import "strings"

// userKey is the form users are matched in: lower case, without an
// @tenant suffix.
func userKey(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s = s[:i]
	}
	return s
}

// account finds an employee by login (any case, @tenant ignored), direct
// number or internal number, as makeCall's user may be any of them.
func (p *PBX) account(user string) (Account, bool) {
	k := userKey(user)
	if k == "" {
		return Account{}, false
	}
	for _, a := range p.accounts {
		if userKey(a.Name) == k {
			return a, true
		}
	}
	num := strings.TrimPrefix(k, "+")
	for _, a := range p.accounts {
		if a.Telnum != "" && strings.TrimPrefix(a.Telnum, "+") == num {
			return a, true
		}
	}
	for _, a := range p.accounts {
		if a.Ext != "" && a.Ext == num {
			return a, true
		}
	}
	return Account{}, false
}

// group finds a department by id or name, in any case.
func (p *PBX) group(id string) (Group, bool) {
	id = strings.TrimSpace(id)
	if id == "" {
		return Group{}, false
	}
	for _, g := range p.groups {
		if strings.EqualFold(g.ID, id) {
			return g, true
		}
	}
	for _, g := range p.groups {
		if strings.EqualFold(g.RealName, id) {
			return g, true
		}
	}
	return Group{}, false
}

// isMember reports whether login is one of g's members.
func isMember(g Group, login string) bool {
	for _, m := range g.Members {
		if userKey(m) == userKey(login) {
			return true
		}
	}
	return false
}

// groupsOf lists the groups login is a member of.
func (p *PBX) groupsOf(login string) []Group {
	var gs []Group
	for _, g := range p.groups {
		if isMember(g, login) {
			gs = append(gs, g)
		}
	}
	return gs
}

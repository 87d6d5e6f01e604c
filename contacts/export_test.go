package contacts

// Waiting returns how many callers wait for the look-up of phone now in
// flight (0 when none is).
func (c *CRM) Waiting(phone string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.flights[Normalize(phone)]; f != nil {
		return f.waiters
	}
	return 0
}

// ParseAnswer is parseAnswer, for the fuzz target.
var ParseAnswer = parseAnswer

// InFlight reports whether a look-up of phone is in flight, its cache write
// included.
func (c *CRM) InFlight(phone string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flights[Normalize(phone)] != nil
}

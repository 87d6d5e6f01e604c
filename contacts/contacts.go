// Package contacts answers who is calling: the built-in directory (phone
// numbers mapped to a contact name and a responsible manager, loaded from a
// CSV file), the look-up in the customer's CRM (CRM, with a Cache: in memory,
// or shared through Redis by contacts/rediscache), and Chain, which asks the
// CRM first and falls back to the directory.
package contacts

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"

	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/internal/phone"
)

var _ event.Directory = (*Directory)(nil)

// Normalize reduces a phone number to the form contacts are matched on:
// phone.Key, callpop's one rule.
func Normalize(s string) string { return phone.Key(s) }

// Directory is an in-memory phone directory. The zero value is empty and
// ready; it is read-only after loading, so safe for concurrent use.
type Directory struct {
	byPhone map[string]event.Contact
}

// Len returns the number of phone numbers known.
func (d *Directory) Len() int { return len(d.byPhone) }

// Lookup returns the contact for phone, matched on its normalized form.
func (d *Directory) Lookup(_ context.Context, phone string) (event.Contact, bool, error) {
	c, ok := d.byPhone[Normalize(phone)]
	return c, ok, nil
}

// Load reads a directory from CSV: columns phone, name, responsible; a header
// row naming them is optional; further columns are ignored.
func Load(r io.Reader) (*Directory, error) {
	// A byte order mark goes before the CSV reader sees it: in front of a
	// quoted first field it would be a parse error.
	br := bufio.NewReader(r)
	if b, err := br.Peek(len(bom)); err == nil && string(b) == bom {
		_, _ = br.Discard(len(bom))
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	d := &Directory{byPhone: map[string]event.Contact{}}
	for n := 1; ; n++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return d, nil
		}
		if err != nil {
			return nil, fmt.Errorf("contacts: %w", err)
		}
		line, _ := cr.FieldPos(0) // the file's line: blank lines count
		if n == 1 && len(rec) > 0 && strings.EqualFold(strings.TrimSpace(rec[0]), "phone") {
			continue
		}
		if len(rec) < 2 {
			return nil, fmt.Errorf("contacts: line %d: want phone,name[,responsible]", line)
		}
		phone := Normalize(rec[0])
		if phone == "" || strings.IndexFunc(rec[1], unicode.IsControl) >= 0 {
			return nil, fmt.Errorf("contacts: line %d: bad phone or name", line)
		}
		c := event.Contact{Name: strings.TrimSpace(rec[1])}
		if len(rec) > 2 {
			c.Responsible = strings.TrimSpace(rec[2])
		}
		d.byPhone[phone] = c
	}
}

const bom = "\ufeff"

// LoadFile reads a directory from the CSV file at path.
func LoadFile(path string) (*Directory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("contacts: %w", err)
	}
	defer f.Close()
	return Load(f)
}

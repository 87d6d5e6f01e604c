// Package phone is callpop's one rule for phone numbers: what a person may
// type to be dialled, what the PBX is sent, and the key numbers are matched
// on (docs/pbx-api.md: the PBX sends and takes numbers as digits, Russian
// numbers as 7XXXXXXXXXX).
package phone

import "strings"

// Digit counts a dialable number may have: a two-digit internal extension
// up to an international number with room to spare (E.164 allows 15).
const (
	MinDigits = 2
	MaxDigits = 20
)

// Dialable reduces what a person types — digits with an optional leading +,
// spaces, dashes, dots and brackets — to what the PBX dials: the + (when
// given) and the digits. ok is false for any other character, a + anywhere
// but first, or a digit count outside MinDigits..MaxDigits.
func Dialable(s string) (dial string, ok bool) {
	var b strings.Builder
	n := 0
	for i, c := range s {
		switch {
		case c >= '0' && c <= '9':
			n++
			b.WriteRune(c)
		case c == '+' && strings.TrimLeft(s[:i], " ") == "":
			b.WriteRune(c)
		case c == ' ' || c == '-' || c == '(' || c == ')' || c == '.':
		default:
			return "", false
		}
	}
	if n < MinDigits || n > MaxDigits {
		return "", false
	}
	return b.String(), true
}

// Key is the form numbers are matched on (the contact directory, its
// caches): digits only, with Russian 8XXXXXXXXXX and 10-digit national
// numbers turned into 7XXXXXXXXXX, so 79101234567, 89101234567 and
// +7 (910) 123-45-67 are one number.
func Key(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	d := b.String()
	switch {
	case len(d) == 11 && d[0] == '8':
		return "7" + d[1:]
	case len(d) == 10: // national number without the country code
		return "7" + d
	}
	return d
}

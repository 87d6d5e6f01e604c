package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// flagSet is one command's flags, each with an optional environment twin.
// The environment is read first and a flag on the command line wins. Help
// shows each flag's built-in default, never a value from the environment
// (secrets arrive there), and every error is one line naming the flag and
// its twin: a pod log shows exactly what is wrong and nothing more.
type flagSet struct {
	cmd  string // "serve", "history import"
	fs   *flag.FlagSet
	opts []*option
	// setErr is the last value a flag refused: the flag package flattens
	// it into its own wording, which repeats the value.
	setErr error
}

// option is one flag: value holds the built-in default until the
// environment or the command line sets it.
type option struct {
	name, env, usage string
	value            typedValue
	def              string // the built-in default, as shown in help
}

// typedValue is a flag.Value that names its type for help.
type typedValue interface {
	flag.Value
	typeName() string
}

func newFlagSet(cmd string) *flagSet {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	// The flag package prints errors and the whole usage on its own; we
	// print one line (errors) or our help (-h) instead.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{cmd: cmd, fs: fs}
}

// label names an option in errors: "--webhook-rate (CALLPOP_WEBHOOK_RATE)".
func (o *option) label() string {
	if o.env == "" {
		return "--" + o.name
	}
	return fmt.Sprintf("--%s (%s)", o.name, o.env)
}

// add registers v, which holds the built-in default, under name with the
// environment twin env ("" for none).
func (f *flagSet) add(name, env, usage string, v typedValue) {
	o := &option{name: name, env: env, usage: usage, value: v, def: v.String()}
	f.opts = append(f.opts, o)
	f.fs.Var(setter{o, f}, name, usage)
}

// setter reports a refused value with the option's label and keeps the
// error for parse, which returns it instead of the flag package's wording.
type setter struct {
	o *option
	f *flagSet
}

func (s setter) String() string {
	if s.o == nil {
		return ""
	}
	return s.o.value.String()
}

func (s setter) Set(v string) error {
	if err := s.o.value.Set(v); err != nil {
		s.f.setErr = fmt.Errorf("%s: %w", s.o.label(), err)
		return s.f.setErr
	}
	return nil
}

func (s setter) IsBoolFlag() bool {
	if s.o == nil {
		return false
	}
	_, ok := s.o.value.(*boolValue)
	return ok
}

// String adds a string flag: secrets and URLs too, whose values are never
// repeated in errors.
func (f *flagSet) String(p *string, name, env, def, usage string) {
	*p = def
	f.add(name, env, usage, (*stringValue)(p))
}

// Float adds a number flag that refuses NaN, infinities and negatives.
func (f *flagSet) Float(p *float64, name, env string, def float64, usage string) {
	*p = def
	f.add(name, env, usage, (*floatValue)(p))
}

// Int adds a positive integer flag.
func (f *flagSet) Int(p *int, name, env string, def int, usage string) {
	*p = def
	f.add(name, env, usage, (*intValue)(p))
}

// Duration adds a positive duration flag.
func (f *flagSet) Duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	*p = def
	f.add(name, env, usage, (*durationValue)(p))
}

// Bool adds a switch.
func (f *flagSet) Bool(p *bool, name, usage string) {
	f.add(name, "", usage, (*boolValue)(p))
}

// parse reads the environment, then args. On -h it writes the help to help
// and returns flag.ErrHelp. A bad environment value whose flag is given on
// the command line does not matter and is not reported.
func (f *flagSet) parse(args []string, getenv func(string) string, help io.Writer) error {
	envErrs := map[string]error{}
	for _, o := range f.opts {
		if o.env == "" {
			continue
		}
		if v := getenv(o.env); v != "" {
			if err := o.value.Set(v); err != nil {
				envErrs[o.name] = fmt.Errorf("%s: %w", o.label(), err)
			}
		}
	}
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			f.printHelp(help)
			return err
		}
		if f.setErr != nil {
			return f.setErr
		}
		// The flag package's own wording names the flag, never a value.
		msg := err.Error()
		if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
			msg = "unknown flag --" + name
		}
		return fmt.Errorf("%s (callpop %s -h lists the flags)", msg, f.cmd)
	}
	f.fs.Visit(func(fl *flag.Flag) { delete(envErrs, fl.Name) })
	for _, o := range f.opts { // the first in help order
		if err := envErrs[o.name]; err != nil {
			return err
		}
	}
	if f.fs.NArg() > 0 {
		// Not repeated: a misplaced argument may be a secret.
		return fmt.Errorf("unexpected argument after the flags (callpop %s -h lists the flags)", f.cmd)
	}
	return nil
}

// printHelp lists the flags with their type, environment twin and
// built-in default.
func (f *flagSet) printHelp(w io.Writer) {
	fmt.Fprintf(w, "usage: callpop %s [flags]\n\n", f.cmd)
	for _, o := range f.opts {
		fmt.Fprintf(w, "  --%s", o.name)
		if t := o.value.typeName(); t != "" {
			fmt.Fprintf(w, " %s", t)
		}
		var notes []string
		if o.env != "" {
			notes = append(notes, "env "+o.env)
		}
		if o.def != "" && o.value.typeName() != "" {
			if _, ok := o.value.(*stringValue); ok {
				notes = append(notes, fmt.Sprintf("default %q", o.def))
			} else {
				notes = append(notes, "default "+o.def)
			}
		}
		fmt.Fprintf(w, "\n    \t%s", o.usage)
		if len(notes) > 0 {
			fmt.Fprintf(w, " (%s)", strings.Join(notes, "; "))
		}
		fmt.Fprintln(w)
	}
}

type stringValue string

func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }
func (v *stringValue) String() string     { return string(*v) }
func (*stringValue) typeName() string     { return "string" }

type floatValue float64

func (v *floatValue) Set(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	// NaN would compare false with every limit, and Inf is no rate: both
	// would mean "no limit" by accident.
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return fmt.Errorf("%q is not a non-negative number", s)
	}
	*v = floatValue(f)
	return nil
}
func (v *floatValue) String() string { return strconv.FormatFloat(float64(*v), 'g', -1, 64) }
func (*floatValue) typeName() string { return "float" }

type intValue int

func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return fmt.Errorf("%q is not a positive integer", s)
	}
	*v = intValue(n)
	return nil
}
func (v *intValue) String() string { return strconv.Itoa(int(*v)) }
func (*intValue) typeName() string { return "int" }

type durationValue time.Duration

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("%q is not a positive duration (like 1s, 500ms, 12h)", s)
	}
	*v = durationValue(d)
	return nil
}
func (v *durationValue) String() string { return time.Duration(*v).String() }
func (*durationValue) typeName() string { return "duration" }

type boolValue bool

func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%q is not true or false", s)
	}
	*v = boolValue(b)
	return nil
}
func (v *boolValue) String() string { return strconv.FormatBool(bool(*v)) }
func (*boolValue) typeName() string { return "" } // a switch takes no value

package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// listFlag is a repeatable flag that also accepts comma-separated values.
type listFlag struct {
	vals []string
	set  bool // a later source replaces, not extends, an earlier one
}

func (l *listFlag) String() string { return strings.Join(l.vals, ",") }

func (l *listFlag) Set(s string) error {
	if !l.set {
		l.vals, l.set = nil, true
	}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			l.vals = append(l.vals, v)
		}
	}
	return nil
}

// resetSource makes the next Set start a fresh list (config file, then env,
// then flags: each later source replaces the earlier one).
func (l *listFlag) resetSource() { l.set = false }

// loadSources applies, in order, the config file (--config or HUBGATE_CONFIG;
// a flat JSON object of flag names to values), the environment (HUBGATE_ +
// flag name upper-cased with '-' → '_'), and the command line. Positional
// arguments may sit among the flags. It returns the positional arguments.
func loadSources(fs *flag.FlagSet, args []string) ([]string, error) {
	resetLists := func() {
		fs.VisitAll(func(f *flag.Flag) {
			if l, ok := f.Value.(*listFlag); ok {
				l.resetSource()
			}
		})
	}
	if fs.Lookup("config") != nil {
		path := os.Getenv("HUBGATE_CONFIG")
		for i, a := range args {
			if v, ok := strings.CutPrefix(a, "--config="); ok {
				path = v
			} else if (a == "--config" || a == "-config") && i+1 < len(args) {
				path = args[i+1]
			}
		}
		if path != "" {
			if err := applyConfigFile(fs, path); err != nil {
				return nil, err
			}
		}
	}
	resetLists()
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "HUBGATE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s: %w", name, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	resetLists()
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func applyConfigFile(fs *flag.FlagSet, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("config file %s: not a JSON object of flag names: %w", path, err)
	}
	for k, v := range m {
		if fs.Lookup(k) == nil || k == "config" {
			return fmt.Errorf("config file %s: unknown setting %q", path, k)
		}
		var vals []string
		switch x := v.(type) {
		case string:
			vals = []string{x}
		case bool, float64:
			vals = []string{fmt.Sprint(x)}
		case []any:
			for _, e := range x {
				s, ok := e.(string)
				if !ok {
					return fmt.Errorf("config file %s: %s: list items must be strings", path, k)
				}
				vals = append(vals, s)
			}
		default:
			return errors.New("config file " + path + ": " + k + ": unsupported value")
		}
		for _, s := range vals {
			if err := fs.Set(k, s); err != nil {
				return fmt.Errorf("config file %s: %s: %w", path, k, err)
			}
		}
	}
	return nil
}

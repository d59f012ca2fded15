package command

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
)

// Configuration files (-config) of server, agent and storage. There is no schema of
// their own: the keys are the command's flags, read off its flag set, so that every
// flag has a key and a flag added tomorrow gets one with no code here. A flag's key
// is its name with "_" for "-" (-data-dir: data_dir), and a flag named PREFIX-REST
// may also be written REST inside a block PREFIX (-acl-enabled: acl { enabled = true },
// -autopilot-x: autopilot { x = ... }); the TLS flags, whose names share no prefix,
// make the block tls (tlsBlockKeys). Values are set through the flag set (fs.Set), as
// if given on the command line, so files and flags can never read a value
// differently; flags given on the command line win over the files.

// configFlag is the name of the flag that names the files; it is refused in a file.
const configFlag = "config"

// tlsBlockKeys are the flags that a tls block sets, by their keys in the block.
var tlsBlockKeys = map[string]string{
	"ca_file":             "ca-file",
	"cert_file":           "cert-file",
	"key_file":            "key-file",
	"verify_https_client": "verify-https-client",
	"node_cert_file":      "node-cert-file",
	"node_key_file":       "node-key-file",
	"callers":             "callers",
}

// configKey is the key of a flag at the top level of a file.
func configKey(flagName string) string { return strings.ReplaceAll(flagName, "-", "_") }

// setting is one key of a configuration file, ready to be given to its flag.
type setting struct {
	flag *flag.Flag
	key  string   // as written, with its block: "bind", "tls.ca_file"
	args []string // what fs.Set is given, once each: several for a list flag
	file string
	line int
}

func (s setting) String() string { return fmt.Sprintf("%s:%d: %s", s.file, s.line, s.key) }

// configFiles lists the files that paths name, in the order they are read: each path
// in turn, a directory giving its *.hcl and *.json files in name order.
func configFiles(paths []string) ([]string, error) {
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		entries, err := os.ReadDir(p) // sorted by name
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".hcl" || ext == ".json") {
				files = append(files, filepath.Join(p, e.Name()))
			}
		}
	}
	return files, nil
}

// readConfig reads the files that paths name and returns the settings they make for
// the flags of fs, one per flag: a key in a later file replaces the same key in an
// earlier one, lists included. Nothing is set yet. An error names the file, line and
// key of the first problem.
func readConfig(fs *flag.FlagSet, paths []string) ([]setting, error) {
	files, err := configFiles(paths)
	if err != nil {
		return nil, err
	}
	schema, blocks := configSchema(fs)
	parser := hclparse.NewParser()
	byFlag := map[string]int{} // flag name → index in out
	var out []setting
	for _, file := range files {
		var f *hcl.File
		var diags hcl.Diagnostics
		// A file that is neither .hcl nor .json, named on its own, is read as HCL.
		if filepath.Ext(file) == ".json" {
			f, diags = parser.ParseJSONFile(file)
		} else {
			f, diags = parser.ParseHCLFile(file)
		}
		if diags.HasErrors() {
			return nil, diagError(file, diags)
		}
		got, err := fileSettings(fs, file, f.Body, schema, blocks)
		if err != nil {
			return nil, err
		}
		for _, s := range got {
			if i, ok := byFlag[s.flag.Name]; ok {
				out[i] = s
				continue
			}
			byFlag[s.flag.Name] = len(out)
			out = append(out, s)
		}
	}
	return out, nil
}

// configSchema is the schema of a file for the flags of fs: an attribute for every
// flag, and the blocks; blocks maps each block, and "" the top level, to the flags it
// sets by their keys in it.
func configSchema(fs *flag.FlagSet) (*hcl.BodySchema, map[string]map[string]string) {
	schema := &hcl.BodySchema{}
	top := map[string]string{}
	blocks := map[string]map[string]string{"": top}
	fs.VisitAll(func(f *flag.Flag) {
		schema.Attributes = append(schema.Attributes, hcl.AttributeSchema{Name: configKey(f.Name)})
		top[configKey(f.Name)] = f.Name
		if prefix, rest, ok := strings.Cut(f.Name, "-"); ok {
			if blocks[prefix] == nil {
				blocks[prefix] = map[string]string{}
			}
			blocks[prefix][configKey(rest)] = f.Name
		}
	})
	for key, name := range tlsBlockKeys {
		if fs.Lookup(name) == nil {
			continue
		}
		if blocks["tls"] == nil {
			blocks["tls"] = map[string]string{}
		}
		blocks["tls"][key] = name
	}
	names := make([]string, 0, len(blocks))
	for name := range blocks {
		if name == "" {
			continue
		}
		// A flag named like a block (a -log beside -log-level) keeps the name.
		if _, ok := top[name]; ok {
			delete(blocks, name)
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		schema.Blocks = append(schema.Blocks, hcl.BlockHeaderSchema{Type: name})
	}
	return schema, blocks
}

// fileSettings returns the settings of one file's body, in the order they are written.
func fileSettings(fs *flag.FlagSet, file string, body hcl.Body, schema *hcl.BodySchema, blocks map[string]map[string]string) ([]setting, error) {
	content, diags := body.Content(schema)
	if diags.HasErrors() {
		return nil, diagError(file, diags)
	}
	var out []setting
	add := func(key, flagName string, attr *hcl.Attribute) error {
		f := fs.Lookup(flagName)
		if flagName == configFlag {
			return fmt.Errorf("%s:%d: %s: the files to read are named on the command line only", file, attr.NameRange.Start.Line, key)
		}
		s := setting{flag: f, key: key, file: file, line: attr.NameRange.Start.Line}
		for _, o := range out {
			if o.flag == f {
				return fmt.Errorf("%s: set twice in this file, also as %s at line %d", s, o.key, o.line)
			}
		}
		v, diags := attr.Expr.Value(nil)
		if diags.HasErrors() {
			return diagError(file, diags)
		}
		args, err := flagArgs(f, v)
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
		s.args = args
		out = append(out, s)
		return nil
	}
	for _, attr := range sortedAttributes(content.Attributes) {
		if err := add(attr.Name, blocks[""][attr.Name], attr); err != nil {
			return nil, err
		}
	}
	for _, b := range content.Blocks {
		keys := blocks[b.Type]
		bschema := &hcl.BodySchema{}
		for key := range keys {
			bschema.Attributes = append(bschema.Attributes, hcl.AttributeSchema{Name: key})
		}
		bc, diags := b.Body.Content(bschema)
		if diags.HasErrors() {
			return nil, diagError(file, diags)
		}
		for _, attr := range sortedAttributes(bc.Attributes) {
			if err := add(b.Type+"."+attr.Name, keys[attr.Name], attr); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func sortedAttributes(attrs hcl.Attributes) []*hcl.Attribute {
	out := make([]*hcl.Attribute, 0, len(attrs))
	for _, a := range attrs {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NameRange.Start.Byte < out[j].NameRange.Start.Byte })
	return out
}

// diagError is the first error of diags as one line: file:line: what is wrong.
func diagError(file string, diags hcl.Diagnostics) error {
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		where := file
		if d.Subject != nil {
			where = fmt.Sprintf("%s:%d", d.Subject.Filename, d.Subject.Start.Line)
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		return fmt.Errorf("%s: %s", where, msg)
	}
	return errors.New(diags.Error())
}

// listFlag marks a flag that may be given several times; in a file it takes a list.
type listFlag interface {
	flag.Value
	isList()
}

func (l *stringList) isList() {}

// flagArgs converts a value of a file to the text(s) its flag is set with, refusing
// a value of the wrong type: a flag's text would often take one (a number for a
// duration, a string for a number), but read the way the file's author did not mean.
func flagArgs(f *flag.Flag, v cty.Value) ([]string, error) {
	if v.IsNull() {
		return nil, errors.New("null is not a value")
	}
	want := flagType(f)
	switch want {
	case "bool":
		if v.Type() == cty.Bool {
			return []string{fmt.Sprint(v.True())}, nil
		}
	case "list":
		if v.Type() == cty.String {
			return []string{v.AsString()}, nil
		}
		if v.Type().IsListType() || v.Type().IsTupleType() || v.Type().IsSetType() {
			var args []string
			for it := v.ElementIterator(); it.Next(); {
				_, e := it.Element()
				if e.IsNull() || e.Type() != cty.String {
					return nil, fmt.Errorf("wants a list of strings, and an element is %s", typeName(e))
				}
				args = append(args, e.AsString())
			}
			return args, nil
		}
		want = "list of strings"
	case "whole number", "number":
		if v.Type() == cty.Number {
			bf := v.AsBigFloat()
			if want == "whole number" && !bf.IsInt() {
				return nil, fmt.Errorf("wants a whole number, not %s", bf.Text('g', -1))
			}
			return []string{bf.Text('f', -1)}, nil
		}
	case "duration":
		if v.Type() == cty.String {
			return []string{v.AsString()}, nil
		}
		return nil, fmt.Errorf(`wants a duration such as "30s" or "5m" (a string), not %s`, typeName(v))
	default:
		if v.Type() == cty.String {
			return []string{v.AsString()}, nil
		}
	}
	return nil, fmt.Errorf("wants %s, not %s", article(want), typeName(v))
}

// flagType names the type of value a flag takes, from its Value: the flag package's
// own values tell it through Get.
func flagType(f *flag.Flag) string {
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return "bool"
	}
	if _, ok := f.Value.(listFlag); ok {
		return "list"
	}
	if g, ok := f.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case time.Duration:
			return "duration"
		case int, int64, uint, uint64:
			return "whole number"
		case float64:
			return "number"
		}
	}
	return "string"
}

func article(typ string) string {
	switch typ {
	case "bool":
		return "true or false"
	default:
		return "a " + typ
	}
}

// typeName names the type of a value for an error message.
func typeName(v cty.Value) string {
	switch t := v.Type(); {
	case v.IsNull():
		return "null"
	case t == cty.String:
		return fmt.Sprintf("a string (%q)", v.AsString())
	case t == cty.Number:
		return "a number (" + v.AsBigFloat().Text('g', -1) + ")"
	case t == cty.Bool:
		return fmt.Sprintf("a bool (%v)", v.True())
	case t.IsListType() || t.IsTupleType() || t.IsSetType():
		return "a list"
	case t.IsObjectType() || t.IsMapType():
		return "an object"
	default:
		return t.FriendlyName()
	}
}

// applyConfig sets the flags of fs from the settings, but for the flags that the
// command line set (given).
func applyConfig(fs *flag.FlagSet, settings []setting, given map[string]bool) error {
	for _, s := range settings {
		if given[s.flag.Name] {
			continue
		}
		for _, a := range s.args {
			if err := fs.Set(s.flag.Name, a); err != nil {
				return fmt.Errorf("%s: invalid value %q: %w", s, a, err)
			}
		}
	}
	return nil
}

// flagText is the text a flag would show (its Value's String) once set with args:
// how a value of a file is compared with the value in force, and checked before a
// reload uses it. It sets a new Value of the flag's type, not the flag.
func flagText(f *flag.Flag, args []string) (text string, err error) {
	t := reflect.TypeOf(f.Value)
	if t.Kind() != reflect.Pointer {
		return strings.Join(args, ","), nil
	}
	// A Value whose zero value cannot be set (one holding a pointer or a function,
	// as flag.Func makes) is compared by its text as written.
	defer func() {
		if recover() != nil {
			text, err = strings.Join(args, ","), nil
		}
	}()
	v, ok := reflect.New(t.Elem()).Interface().(flag.Value)
	if !ok {
		return strings.Join(args, ","), nil
	}
	for _, a := range args {
		if err := v.Set(a); err != nil {
			return "", fmt.Errorf("invalid value %q: %w", a, err)
		}
	}
	return v.String(), nil
}

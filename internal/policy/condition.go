package policy

import (
	"encoding/json"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// A condition is one key under one operator: it holds when the key's value
// in the request satisfies the operator against any of the values.
type condition struct {
	op       operator
	set      setOperator
	ifExists bool
	key      Key
	values   []pattern
	prefixes []netip.Prefix // IpAddress, NotIpAddress
	arns     []arnPattern   // the Arn operators
	numbers  []float64      // the Numeric and Date operators
}

// arnPattern matches an ARN the way IAM's Arn operators do: each of the
// six colon-separated parts on its own, each part with * and ? wildcards.
type arnPattern [6]pattern

func compileARN(s string, variables bool) (arnPattern, bool) {
	parts := strings.SplitN(s, ":", 6)
	var p arnPattern
	if len(parts) != 6 {
		return p, false
	}
	for i, part := range parts {
		p[i] = compile(part, variables, true)
	}
	return p, true
}

func (p *arnPattern) match(v string, ctx Context) bool {
	for i := range 5 {
		j := strings.IndexByte(v, ':')
		if j < 0 || !p[i].match(v[:j], ctx) {
			return false
		}
		v = v[j+1:]
	}
	return p[5].match(v, ctx)
}

type operator uint8

const (
	stringEquals operator = iota
	stringNotEquals
	stringEqualsIgnoreCase
	stringNotEqualsIgnoreCase
	stringLike
	stringNotLike
	arnEquals
	arnNotEquals
	arnLike
	arnNotLike
	boolean
	ipAddress
	notIPAddress
	null
	numericEquals
	numericNotEquals
	numericLessThan
	numericLessThanEquals
	numericGreaterThan
	numericGreaterThanEquals
	dateEquals
	dateNotEquals
	dateLessThan
	dateLessThanEquals
	dateGreaterThan
	dateGreaterThanEquals
)

var operators = map[string]operator{
	"StringEquals": stringEquals, "StringNotEquals": stringNotEquals,
	"StringEqualsIgnoreCase": stringEqualsIgnoreCase, "StringNotEqualsIgnoreCase": stringNotEqualsIgnoreCase,
	"StringLike": stringLike, "StringNotLike": stringNotLike,
	"ArnEquals": arnEquals, "ArnNotEquals": arnNotEquals, "ArnLike": arnLike, "ArnNotLike": arnNotLike,
	"Bool": boolean, "IpAddress": ipAddress, "NotIpAddress": notIPAddress, "Null": null,
	"NumericEquals": numericEquals, "NumericNotEquals": numericNotEquals, "NumericLessThan": numericLessThan,
	"NumericLessThanEquals": numericLessThanEquals, "NumericGreaterThan": numericGreaterThan,
	"NumericGreaterThanEquals": numericGreaterThanEquals,
	"DateEquals":               dateEquals, "DateNotEquals": dateNotEquals, "DateLessThan": dateLessThan,
	"DateLessThanEquals": dateLessThanEquals, "DateGreaterThan": dateGreaterThan, "DateGreaterThanEquals": dateGreaterThanEquals,
}

// ordered reports whether o compares numbers or dates, and how: the sign
// of value - policy value it wants (-1, 0, 1), and whether that is
// inclusive of equality.
func (o operator) ordered() (date bool, want int, orEqual, ok bool) {
	switch o {
	case numericEquals, numericNotEquals:
		return false, 0, false, true
	case numericLessThan:
		return false, -1, false, true
	case numericLessThanEquals:
		return false, -1, true, true
	case numericGreaterThan:
		return false, 1, false, true
	case numericGreaterThanEquals:
		return false, 1, true, true
	case dateEquals, dateNotEquals:
		return true, 0, false, true
	case dateLessThan:
		return true, -1, false, true
	case dateLessThanEquals:
		return true, -1, true, true
	case dateGreaterThan:
		return true, 1, false, true
	case dateGreaterThanEquals:
		return true, 1, true, true
	}
	return false, 0, false, false
}

// dateLayouts are the ISO 8601 forms a date condition takes, as IAM reads
// them, besides seconds since the epoch.
var dateLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02"}

// orderedValue reads a number, or a date, as a float64 to compare. NaN and
// the infinities are no numbers here: NaN compares unequal to everything,
// which would make it pass one operator and its negation alike.
func orderedValue(s string, date bool) (float64, bool) {
	if date {
		for _, layout := range dateLayouts {
			if t, err := time.Parse(layout, s); err == nil {
				return float64(t.Unix()) + float64(t.Nanosecond())/1e9, true
			}
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// negated operators hold when the value matches none of the policy's.
func (o operator) negated() bool {
	switch o {
	case stringNotEquals, stringNotEqualsIgnoreCase, stringNotLike, arnNotEquals, arnNotLike, notIPAddress, numericNotEquals, dateNotEquals:
		return true
	}
	return false
}

type setOperator uint8

const (
	single setOperator = iota
	forAllValues
	forAnyValue
)

func parseConditions(raw json.RawMessage, variables bool) ([]condition, error) {
	block, err := object(raw, "Condition")
	if err != nil {
		return nil, err
	}
	var out []condition
	for opName, raw := range block {
		c := condition{}
		name := opName
		if rest, ok := strings.CutPrefix(name, "ForAllValues:"); ok {
			c.set, name = forAllValues, rest
		} else if rest, ok := strings.CutPrefix(name, "ForAnyValue:"); ok {
			c.set, name = forAnyValue, rest
		}
		if rest, ok := strings.CutSuffix(name, "IfExists"); ok && name != "Null" {
			c.ifExists, name = true, rest
		}
		op, ok := operators[name]
		if !ok || (op == null && (c.set != single || c.ifExists)) {
			return nil, malformed("unknown condition operator %q", opName)
		}
		c.op = op
		keys, err := object(raw, "condition operator "+opName)
		if err != nil {
			return nil, err
		}
		for keyName, raw := range keys {
			cc := c
			key, _, known := parseVariable(keyName)
			if !known {
				// An unknown key is never in the request, as at AWS.
				key = Key{Name: keyName}
			}
			cc.key = key
			values, err := conditionValues(raw, opName, keyName)
			if err != nil {
				return nil, err
			}
			for _, v := range values {
				switch op {
				case ipAddress, notIPAddress:
					prefix, err := parsePrefix(v)
					if err != nil {
						return nil, malformed("%s %s: %q is not an IP address or CIDR block", opName, keyName, v)
					}
					cc.prefixes = append(cc.prefixes, prefix)
				case numericEquals, numericNotEquals, numericLessThan, numericLessThanEquals, numericGreaterThan, numericGreaterThanEquals,
					dateEquals, dateNotEquals, dateLessThan, dateLessThanEquals, dateGreaterThan, dateGreaterThanEquals:
					date, _, _, _ := op.ordered()
					f, ok := orderedValue(v, date)
					if !ok {
						return nil, malformed("%s %s: %q is not a %s", opName, keyName, v, map[bool]string{false: "number", true: "date"}[date])
					}
					cc.numbers = append(cc.numbers, f)
				case boolean, null:
					if b := strings.ToLower(v); b != "true" && b != "false" {
						return nil, malformed("%s %s: %q is not true or false", opName, keyName, v)
					}
					cc.values = append(cc.values, pattern{{kind: literal, text: strings.ToLower(v)}})
				case arnEquals, arnNotEquals, arnLike, arnNotLike:
					// A value of fewer than six parts matches no ARN; * any.
					if arn, ok := compileARN(v, variables); ok {
						cc.arns = append(cc.arns, arn)
					} else if v == "*" {
						cc.arns = append(cc.arns, arnPattern{{{kind: anyRun}}, {{kind: anyRun}}, {{kind: anyRun}}, {{kind: anyRun}}, {{kind: anyRun}}, {{kind: anyRun}}})
					}
				case stringLike, stringNotLike:
					cc.values = append(cc.values, compile(v, variables, true))
				default:
					cc.values = append(cc.values, compile(v, variables, false))
				}
			}
			out = append(out, cc)
		}
	}
	return out, nil
}

// conditionValues decodes a condition's value: a string, bool or number, or
// a list of them.
func conditionValues(raw json.RawMessage, op, key string) ([]string, error) {
	var list []any
	if err := json.Unmarshal(raw, &list); err != nil {
		var one any
		if err := json.Unmarshal(raw, &one); err != nil {
			return nil, malformed("%s %s: bad value", op, key)
		}
		list = []any{one}
	}
	if len(list) == 0 {
		return nil, malformed("%s %s: no value", op, key)
	}
	out := make([]string, len(list))
	for i, v := range list {
		switch v := v.(type) {
		case string:
			out[i] = v
		case bool:
			out[i] = strconv.FormatBool(v)
		case float64:
			out[i] = strconv.FormatFloat(v, 'f', -1, 64)
		default:
			return nil, malformed("%s %s: values must be strings, numbers or booleans", op, key)
		}
	}
	return out, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// holds evaluates the condition against the request's context, as IAM
// does: a key absent from the request fails a positive operator and
// passes a negated one (and passes with IfExists); ForAllValues holds when
// every value of the key passes (vacuously for none), ForAnyValue when one
// does.
func (c *condition) holds(ctx Context) bool {
	if c.op == null {
		_, present := c.lookupAny(ctx)
		for _, v := range c.values {
			if present == (v[0].text == "false") {
				return true
			}
		}
		return false
	}
	if c.set == single {
		var value string
		ok := false
		if ctx != nil {
			value, ok = ctx.Value(c.key)
		}
		if !ok {
			return c.ifExists || c.op.negated()
		}
		return c.test(value, ctx)
	}
	var values []string
	ok := false
	if ctx != nil {
		if values, ok = ctx.Values(c.key); !ok {
			// A single-valued key is a set of one, as IAM takes it.
			var v string
			if v, ok = ctx.Value(c.key); ok {
				return c.test(v, ctx)
			}
		}
	}
	if !ok {
		return c.set == forAllValues || c.ifExists
	}
	for _, v := range values {
		t := c.test(v, ctx)
		if c.set == forAnyValue && t {
			return true
		}
		if c.set == forAllValues && !t {
			return false
		}
	}
	return c.set == forAllValues
}

func (c *condition) lookupAny(ctx Context) (string, bool) {
	if ctx == nil {
		return "", false
	}
	if v, ok := ctx.Value(c.key); ok {
		return v, true
	}
	if vs, ok := ctx.Values(c.key); ok && len(vs) > 0 {
		return vs[0], true
	}
	return "", false
}

// test applies the operator to one value of the key.
func (c *condition) test(v string, ctx Context) bool {
	matched := false
	switch c.op {
	case ipAddress, notIPAddress:
		if a, err := netip.ParseAddr(v); err == nil {
			for _, p := range c.prefixes {
				if p.Contains(a.Unmap()) {
					matched = true
					break
				}
			}
		}
	case numericEquals, numericNotEquals, numericLessThan, numericLessThanEquals, numericGreaterThan, numericGreaterThanEquals,
		dateEquals, dateNotEquals, dateLessThan, dateLessThanEquals, dateGreaterThan, dateGreaterThanEquals:
		date, want, orEqual, _ := c.op.ordered()
		x, ok := orderedValue(v, date)
		if !ok {
			// A value that is no number or date satisfies no comparison,
			// the negated ones included.
			return false
		}
		for _, n := range c.numbers {
			cmp := 0
			if x < n {
				cmp = -1
			} else if x > n {
				cmp = 1
			}
			if cmp == want || orEqual && cmp == 0 {
				matched = true
				break
			}
		}
	case boolean:
		for _, p := range c.values {
			if strings.EqualFold(v, p[0].text) {
				matched = true
				break
			}
		}
	case arnEquals, arnNotEquals, arnLike, arnNotLike:
		for _, parts := range c.arns {
			if parts.match(v, ctx) {
				matched = true
				break
			}
		}
	default:
		fold := c.op == stringEqualsIgnoreCase || c.op == stringNotEqualsIgnoreCase
		like := c.op == stringLike || c.op == stringNotLike || c.op == arnLike || c.op == arnNotLike
		for _, p := range c.values {
			if like && p.match(v, ctx) || !like && p.equal(v, ctx, fold) {
				matched = true
				break
			}
		}
	}
	return matched != c.op.negated()
}

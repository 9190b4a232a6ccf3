package imagecrypt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// object is a JSON object that keeps its keys in their original order and
// its values byte for byte, so that rewriting one field of a manifest
// leaves the rest as it was, and decrypting an encrypted image gives back
// the very manifests it started from.
type object struct {
	keys   []string
	values map[string]json.RawMessage
}

func parseObject(data []byte) (*object, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	o := &object{values: map[string]json.RawMessage{}}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, fmt.Errorf("field %q: %w", key, err)
		}
		if _, dup := o.values[key]; !dup {
			o.keys = append(o.keys, key)
		}
		o.values[key] = value
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return o, nil
}

// has reports whether the object has key.
func (o *object) has(key string) bool {
	_, ok := o.values[key]
	return ok
}

// decode unmarshals the value of key into v; a missing key leaves v alone.
func (o *object) decode(key string, v any) error {
	if raw, ok := o.values[key]; ok {
		if err := json.Unmarshal(raw, v); err != nil {
			return fmt.Errorf("field %q: %w", key, err)
		}
	}
	return nil
}

// set replaces key's value, or appends key; a nil value removes it.
func (o *object) set(key string, v any) {
	if v == nil {
		if o.has(key) {
			delete(o.values, key)
			for i, k := range o.keys {
				if k == key {
					o.keys = append(o.keys[:i], o.keys[i+1:]...)
					break
				}
			}
		}
		return
	}
	if !o.has(key) {
		o.keys = append(o.keys, key)
	}
	o.values[key] = marshal(v)
}

// MarshalJSON writes the object compactly, keys in order.
func (o *object) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(marshal(k))
		buf.WriteByte(':')
		buf.Write(o.values[k])
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// marshal encodes without HTML escaping, so annotations keep their bytes.
func marshal(v any) json.RawMessage {
	if raw, ok := v.(json.RawMessage); ok {
		return raw
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("imagecrypt: encoding JSON: %v", err)) // only plain data is encoded here
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

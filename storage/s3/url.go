package s3

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// credentialWords are substrings of query keys that look like an attempt to
// put credentials in the URL; ParseURL refuses them with a pointed message.
var credentialWords = []string{"key", "secret", "token", "password", "credential", "session"}

// ParseURL parses "s3://BUCKET/PRE/FIX?endpoint=URL&region=R&path-style=B".
// The path is the key prefix. The query keys are endpoint, region,
// path-style, part-size (bytes, or a number of MiB or GiB such as 16MiB) and
// uniform-parts (true for R2 and Garage, which want every part but the last
// of one size); any other is an error. An endpoint turns on path-style
// addressing unless path-style=false. Credentials are refused in the URL, and no error
// repeats the URL, so that a secret put there by mistake stays out of logs.
func ParseURL(raw string) (Config, error) {
	var c Config
	u, err := url.Parse(raw)
	if err != nil {
		return c, fmt.Errorf("%w: malformed s3:// URL", ErrInvalidConfig)
	}
	if u.User != nil {
		return c, fmt.Errorf("%w: credentials are not accepted in the URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", ErrInvalidConfig)
	}
	if u.Scheme != "s3" {
		return c, fmt.Errorf("%w: scheme %s, want s3://BUCKET/PREFIX", ErrInvalidConfig, quote(u.Scheme))
	}
	if u.Opaque != "" || u.Fragment != "" || u.RawFragment != "" {
		return c, fmt.Errorf("%w: want s3://BUCKET/PREFIX?QUERY", ErrInvalidConfig)
	}
	c.Bucket = u.Host
	if err := checkBucket(c.Bucket); err != nil {
		return c, err
	}
	c.Prefix = strings.TrimPrefix(u.Path, "/")
	c.Prefix = strings.TrimSuffix(c.Prefix, "/")
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return c, fmt.Errorf("%w: malformed query in the s3:// URL", ErrInvalidConfig)
	}
	pathStyle := ""
	for k, vs := range q {
		if len(vs) != 1 {
			return c, fmt.Errorf("%w: query key %s given %d times", ErrInvalidConfig, quote(k), len(vs))
		}
		switch v := vs[0]; k {
		case "endpoint":
			c.Endpoint = v
		case "region":
			c.Region = v
		case "path-style":
			pathStyle = v
		case "part-size":
			if c.PartSize, err = parseSize(v); err != nil {
				return c, err
			}
		case "uniform-parts":
			if c.UniformParts, err = strconv.ParseBool(v); err != nil {
				return c, fmt.Errorf("%w: uniform-parts=%s, want true or false", ErrInvalidConfig, quote(v))
			}
		default:
			for _, w := range credentialWords {
				if strings.Contains(strings.ToLower(k), w) {
					return c, fmt.Errorf("%w: query key %s: credentials are not accepted in the URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", ErrInvalidConfig, quote(k))
				}
			}
			return c, fmt.Errorf("%w: unknown query key %s (want endpoint, region, path-style, part-size, uniform-parts)", ErrInvalidConfig, quote(k))
		}
	}
	c.PathStyle = c.Endpoint != ""
	if pathStyle != "" {
		if c.PathStyle, err = strconv.ParseBool(pathStyle); err != nil {
			return c, fmt.Errorf("%w: path-style=%s, want true or false", ErrInvalidConfig, quote(pathStyle))
		}
	}
	if c.Region != "" && !validRegion(c.Region) {
		return c, fmt.Errorf("%w: region %s", ErrInvalidConfig, quote(c.Region))
	}
	if err := c.withDefaults().validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// checkBucket accepts S3 bucket names: 3 to 63 lower-case letters, digits,
// dots and hyphens, starting and ending with a letter or digit.
func checkBucket(b string) error {
	ok := len(b) >= 3 && len(b) <= 63
	for i := 0; ok && i < len(b); i++ {
		c := b[i]
		alnum := 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
		ok = alnum || (c == '.' || c == '-') && i > 0 && i < len(b)-1
	}
	if !ok {
		return fmt.Errorf("%w: bucket name %s, want 3 to 63 of [a-z0-9.-]", ErrInvalidConfig, quote(b))
	}
	return nil
}

// checkEndpoint accepts an http or https URL of a host, without credentials,
// path, query or fragment. Its errors do not repeat the endpoint.
func checkEndpoint(e string) error {
	u, err := url.Parse(e)
	switch {
	case err != nil:
		return fmt.Errorf("%w: malformed endpoint", ErrInvalidConfig)
	case u.User != nil:
		return fmt.Errorf("%w: credentials are not accepted in the endpoint; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", ErrInvalidConfig)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%w: endpoint scheme %s, want http or https", ErrInvalidConfig, quote(u.Scheme))
	case u.Host == "" || u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return fmt.Errorf("%w: endpoint must be SCHEME://HOST[:PORT] only", ErrInvalidConfig)
	}
	return nil
}

// validRegion accepts region names such as us-east-1, auto or garage.
func validRegion(r string) bool {
	if len(r) > 64 {
		return false
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// parseSize parses a byte count: digits, optionally followed by MiB or GiB.
func parseSize(v string) (int64, error) {
	num, unit := v, int64(1)
	if n, ok := strings.CutSuffix(v, "MiB"); ok {
		num, unit = n, 1<<20
	} else if n, ok := strings.CutSuffix(v, "GiB"); ok {
		num, unit = n, 1<<30
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > maxPartSize/unit {
		return 0, fmt.Errorf("%w: part-size=%s, want a size such as 16MiB", ErrInvalidConfig, quote(v))
	}
	return n * unit, nil
}

// quote returns s quoted for an error message if it is short and made of
// name characters only, and a placeholder otherwise, so that errors cannot
// carry a secret pasted into the URL by mistake.
func quote(s string) string {
	if len(s) > 32 {
		return "(a long value, omitted)"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return "(a value with unexpected characters, omitted)"
		}
	}
	return strconv.Quote(s)
}

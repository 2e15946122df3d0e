package s3

import (
	"errors"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		raw  string
		want Config
	}{
		{"s3://bucket", Config{Bucket: "bucket"}},
		{"s3://bucket/", Config{Bucket: "bucket"}},
		{"s3://bucket/cache", Config{Bucket: "bucket", Prefix: "cache"}},
		{"s3://bucket/pre/fix/", Config{Bucket: "bucket", Prefix: "pre/fix"}},
		{"s3://my.bucket-1/a_b=c", Config{Bucket: "my.bucket-1", Prefix: "a_b=c"}},
		{"s3://bucket?region=eu-west-3", Config{Bucket: "bucket", Region: "eu-west-3"}},
		// An endpoint means path-style, unless turned off.
		{"s3://bucket/p?endpoint=http://127.0.0.1:9000&region=us-east-1",
			Config{Bucket: "bucket", Prefix: "p", Endpoint: "http://127.0.0.1:9000", Region: "us-east-1", PathStyle: true}},
		{"s3://bucket?endpoint=https%3A%2F%2Fs3.example.com",
			Config{Bucket: "bucket", Endpoint: "https://s3.example.com", PathStyle: true}},
		{"s3://bucket?endpoint=https://acct.r2.cloudflarestorage.com/&path-style=false&region=auto",
			Config{Bucket: "bucket", Endpoint: "https://acct.r2.cloudflarestorage.com/", Region: "auto"}},
		{"s3://bucket?path-style=true", Config{Bucket: "bucket", PathStyle: true}},
		{"s3://bucket?path-style=false", Config{Bucket: "bucket"}},
		{"s3://bucket?part-size=16MiB&uniform-parts=true", Config{Bucket: "bucket", PartSize: 16 << 20, UniformParts: true}},
		{"s3://bucket?part-size=1GiB", Config{Bucket: "bucket", PartSize: 1 << 30}},
		{"s3://bucket?part-size=5242880", Config{Bucket: "bucket", PartSize: 5 << 20}},
	}
	for _, tt := range tests {
		got, err := ParseURL(tt.raw)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tt.raw, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseURL(%q) = %+v\nwant %+v", tt.raw, got, tt.want)
		}
	}
}

func TestParseURLRefuses(t *testing.T) {
	const secret = "wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLEKEY"
	tests := []struct {
		raw, why string
	}{
		{"", "no scheme"},
		{"bucket/prefix", "no scheme"},
		{"http://bucket/prefix", "wrong scheme"},
		{"file:///var/cache", "wrong scheme"},
		{"s3:bucket", "opaque"},
		{"s3:///prefix", "no bucket"},
		{"s3://bucket:9000/p", "port in the bucket"},
		{"s3://Bucket", "upper case bucket"},
		{"s3://ab", "short bucket"},
		{"s3://-bucket", "bucket starting with a hyphen"},
		{"s3://bucket/a//b", "empty prefix segment"},
		{"s3://bucket/.uploads", "dot segment in the prefix"},
		{"s3://bucket/a/../b", "dot-dot in the prefix"},
		{"s3://bucket/a%20b", "space in the prefix"},
		{"s3://bucket#frag", "fragment"},
		{"s3://bucket?endpoint=ftp://host", "endpoint scheme"},
		{"s3://bucket?endpoint=http://host/path", "endpoint path"},
		{"s3://bucket?endpoint=http://host?x=1", "endpoint query"},
		{"s3://bucket?endpoint=127.0.0.1:9000", "endpoint without scheme"},
		{"s3://bucket?path-style=maybe", "bad bool"},
		{"s3://bucket?uniform-parts=yes", "bad bool"},
		{"s3://bucket?part-size=4MiB", "part too small"},
		{"s3://bucket?part-size=6GiB", "part too large"},
		{"s3://bucket?part-size=-1", "negative part"},
		{"s3://bucket?part-size=8MB", "unknown unit"},
		{"s3://bucket?region=us-east-1&region=eu-west-1", "repeated key"},
		{"s3://bucket?region=US%20East", "bad region"},
		{"s3://bucket?compression=zstd", "unknown key"},
		{"s3://bucket?Endpoint=http://host", "keys are case-sensitive"},
		{"s3://bucket?%zz=1", "malformed query"},
		// Credentials, in every place one might try.
		{"s3://AKIAEXAMPLE:" + secret + "@bucket/p", "credentials in the user info"},
		{"s3://AKIAEXAMPLE@bucket/p", "access key in the user info"},
		{"s3://bucket?access-key=AKIAEXAMPLE&secret-key=" + secret, "credential query keys"},
		{"s3://bucket?aws_secret_access_key=" + secret, "credential query keys"},
		{"s3://bucket?session-token=" + secret, "credential query keys"},
		{"s3://bucket?endpoint=http://AKIAEXAMPLE:" + secret + "@127.0.0.1:9000", "credentials in the endpoint"},
		{"s3://AKIA:" + secret + "@bucket/%zz", "credentials in a malformed URL"},
	}
	for _, tt := range tests {
		_, err := ParseURL(tt.raw)
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("ParseURL(%q) = %v, want ErrInvalidConfig (%s)", tt.raw, err, tt.why)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("ParseURL(%q): the error repeats the secret: %v", tt.raw, err)
		}
	}
}

// TestNewRefuses checks that New validates what ParseURL cannot see.
func TestNewRefuses(t *testing.T) {
	tests := []Config{
		{},
		{Bucket: "bucket", PartSize: minPartSize - 1},
		{Bucket: "bucket", PartSize: maxPartSize + 1},
		{Bucket: "bucket", Prefix: "/lead"},
		{Bucket: "bucket", Prefix: "trail/"},
		{Bucket: "bucket", Prefix: strings.Repeat("p", 600)},
		{Bucket: "bucket", Endpoint: "http://user:pass@host"},
		{Bucket: "bucket", MaxAttempts: -1},
		{Bucket: "bucket", ResponseTimeout: -1},
	}
	for _, cfg := range tests {
		if s, err := New(t.Context(), cfg); !errors.Is(err, ErrInvalidConfig) {
			if err == nil {
				s.Close()
			}
			t.Errorf("New(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
}

// FuzzParseURL checks that ParseURL never panics, that what it accepts New
// accepts too, and that no error repeats a password given in the URL.
func FuzzParseURL(f *testing.F) {
	for _, seed := range []string{
		"s3://bucket", "s3://bucket/pre/fix?endpoint=http://127.0.0.1:9000&region=us-east-1",
		"s3://bucket?endpoint=https://acct.r2.cloudflarestorage.com&path-style=false&region=auto&uniform-parts=true&part-size=16MiB",
		"s3://AKIA:secretsecret@bucket/p", "s3://bucket?endpoint=http://u:secretsecret@host", "s3://b/a//b", "s3:bucket",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		cfg, err := ParseURL(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("ParseURL(%q) = %v, not ErrInvalidConfig", raw, err)
			}
			for _, secret := range passwords(raw) {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("ParseURL(%q): the error repeats the password %q: %v", raw, secret, err)
				}
			}
			return
		}
		if err := cfg.withDefaults().validate(); err != nil {
			t.Fatalf("ParseURL(%q) accepted %+v, which New refuses: %v", raw, cfg, err)
		}
	})
}

// passwords returns the long-enough text after a colon and before an @ in
// raw: what would be the password of a user-info part, even in a URL that
// does not parse.
func passwords(raw string) []string {
	var out []string
	for i := 0; i < len(raw); i++ {
		if raw[i] != ':' {
			continue
		}
		if j := strings.IndexByte(raw[i+1:], '@'); j >= 8 && !strings.ContainsAny(raw[i+1:i+1+j], "/?#") {
			out = append(out, raw[i+1:i+1+j])
		}
	}
	return out
}

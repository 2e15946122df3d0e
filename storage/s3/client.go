package s3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// newClient builds the S3 client for cfg, and a per-call option that
// switches a call to an HTTP client with CopyTimeout for its response
// timeouts. Nothing here contacts S3 or the credential sources: the SDK
// resolves credentials lazily, at the first request.
func newClient(ctx context.Context, cfg Config) (*awss3.Client, func(*awss3.Options), error) {
	hc := awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = cfg.DialTimeout }).
		WithTransportOptions(func(tr *http.Transport) {
			tr.TLSHandshakeTimeout = cfg.DialTimeout
			tr.ResponseHeaderTimeout = cfg.ResponseTimeout
			tr.MaxIdleConnsPerHost = 64
		}).
		WithReadTimeout(cfg.ReadTimeout)
	awsCfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(cfg.Region),
		config.WithHTTPClient(hc),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = cfg.MaxAttempts
				o.MaxBackoff = cfg.MaxBackoff
				o.Retryables = append(o.Retryables, retry.RetryableHTTPStatusCode{
					Codes: map[int]struct{}{http.StatusTooManyRequests: {}},
				})
			})
		}),
	)
	if err != nil {
		// The shared configuration's errors name files and profiles,
		// never secrets.
		return nil, nil, fmt.Errorf("s3: loading the AWS configuration: %w", err)
	}
	slowHTTP := awsCfg.HTTPClient
	if b, ok := awsCfg.HTTPClient.(*awshttp.BuildableClient); ok {
		slowHTTP = b.WithTransportOptions(func(tr *http.Transport) {
			tr.ResponseHeaderTimeout = cfg.CopyTimeout
		}).WithReadTimeout(cfg.CopyTimeout)
	}
	client := awss3.NewFromConfig(awsCfg, func(o *awss3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	slow := func(o *awss3.Options) { o.HTTPClient = slowHTTP }
	return client, slow, nil
}

// httpStatus returns the HTTP status of a failed S3 call, or 0 when err
// carries none (a network error, a cancelled context).
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// errorCode returns the S3 error code of a failed call, such as NoSuchKey.
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// isNotFound reports whether err says that an object, or a multipart
// upload, does not exist: a 404 that is not about the bucket. Anything else
// (network errors, 5xx, 403, a missing bucket) means "could not tell".
func isNotFound(err error) bool {
	return httpStatus(err) == http.StatusNotFound && errorCode(err) != "NoSuchBucket"
}
